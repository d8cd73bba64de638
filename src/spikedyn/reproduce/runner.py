"""Run a table's plan: train the unfinished cells as ordinary training runs.

Finished cells are never rerun and unfinished ones resume from their checkpoint, so running the
same plan again continues where it stopped.  Cells run in this process or in parallel spawned
processes, on one device or several in turn; a failing cell is recorded and the others go on.
"""

from __future__ import annotations

import concurrent.futures as cf
import io
import json
import multiprocessing
import os
import socket
import time
import traceback
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm
from ..progress import bar_disabled

from .cells import LOCK_NAME, Cell, CellState
from .plan import Plan, split_devices

_STOP = None  # multiprocessing Event in worker processes: set when the parent was interrupted


def _init_worker(threads: int, stop, keep_memory: bool) -> None:
    global _STOP
    import torch

    torch.set_num_threads(threads)
    _STOP = stop
    if keep_memory:
        from ..perf import keep_freed_memory

        keep_freed_memory()


def run_cell_job(config: dict, resume: bool) -> dict:
    """Train one cell (in this process); returns its outcome instead of raising on failure.

    ``KeyboardInterrupt`` is not caught: the caller stops.
    """
    if _STOP is not None and _STOP.is_set():
        return {"status": "cancelled"}
    from ..train import TrainConfig, Trainer

    start = time.perf_counter()
    lock = Path(config["out"]) / LOCK_NAME
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}) + "\n")
        with redirect_stdout(io.StringIO()):  # the trainer's "resumed from" line; the runner reports itself
            history = Trainer(TrainConfig(**config)).fit(resume=resume)
    except Exception as exc:  # noqa: BLE001 - a failing cell must not stop the others
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    finally:
        lock.unlink(missing_ok=True)
    if not history:
        return {"status": "failed", "error": "training produced no epochs", "traceback": ""}
    last = history[-1]
    return {
        "status": "finished", "final": last["test_accuracy"], "best": max(h["test_accuracy"] for h in history),
        "epochs": len(history), "metric": last.get("metric"), "seconds": time.perf_counter() - start,
    }


@dataclass
class RunSummary:
    """Outcome of :func:`run_plan`."""

    already_finished: list[Cell] = field(default_factory=list)
    finished: list[Cell] = field(default_factory=list)
    failed: list[tuple[Cell, str]] = field(default_factory=list)
    skipped: list[tuple[Cell, str]] = field(default_factory=list)  # conflicts: never touched
    interrupted: bool = False
    not_run: list[Cell] = field(default_factory=list)  # left over by an interruption


def _record_failure(cell: Cell, outcome: dict) -> None:
    cell.run_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "error": outcome.get("error"), "traceback": outcome.get("traceback", ""), "neuron": cell.neuron,
        "seed": cell.seed, "dataset": cell.dataset, "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    (cell.run_dir / "error.json").write_text(json.dumps(payload, indent=2) + "\n")


def _line(cell: Cell, outcome: dict, done: int, total: int) -> str:
    metric = f" ({outcome['metric']})" if outcome.get("metric") and outcome["metric"] != "accuracy" else ""
    return (
        f"[{done}/{total}] {cell.label}: final {100 * outcome['final']:.2f} %, best {100 * outcome['best']:.2f} %"
        f"{metric} after {outcome['epochs']} epochs ({outcome['seconds'] / 60:.1f} min)"
    )


def run_plan(
    plan: Plan,
    *,
    jobs: int = 1,
    device: str = "auto",
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    keep_freed_memory: bool = False,
) -> RunSummary:
    """Train the plan's unfinished cells (finished cells are never rerun; partial ones resume).

    ``jobs`` > 1 runs cells in that many processes (spawned; each with ``cpu_count // jobs``
    torch threads); ``device`` may list several devices (``cuda:0,cuda:1``), given to the cells
    in turn.  A failing cell is recorded (``error.json``) and the others go on.  On Ctrl-C the
    runner stops, marks ``interrupted`` and returns: the same call continues later.
    ``keep_freed_memory``: glibc keeps freed memory (faster CPU training, as ``spikedyn train``).
    """
    echo = echo or tqdm.write
    summary = RunSummary()
    todo: list[tuple[Cell, CellState]] = []
    for row in plan.rows:
        if row.status != "ok":
            continue
        if row.data is not None:
            path = plan.out_root / plan.table.name / row.folder / "data.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(row.data, indent=2) + "\n")
        for cell in row.cells:
            if not cell.planned:
                continue  # found on disk but not asked for (another seed or neuron): reported, not run
            state = plan.state(cell)
            if state.status == "finished":
                summary.already_finished.append(cell)
            elif state.status == "conflict":
                summary.skipped.append((cell, state.error or "conflict"))
                echo(f"skipping {cell.label}: {state.error}")
            elif state.status == "running":
                summary.skipped.append((cell, f"{state.running}; run again once it stopped"))
                echo(f"skipping {cell.label}: {state.running}")
            else:
                todo.append((cell, state))
    devices = split_devices(device)
    total = len(todo)
    if not total:
        return summary
    jobs = max(1, min(jobs, total))
    configs = [plan.config_for(cell, devices[i % len(devices)]) for i, (cell, _) in enumerate(todo)]
    resumes = [state.has_checkpoint for _, state in todo]
    for (cell, state), resume in zip(todo, resumes):
        if resume:
            echo(f"resuming {cell.label} after epoch {state.epochs_done}")
    bar = tqdm(total=total, desc=f"{plan.table.name} cells", unit="cell", disable=bar_disabled(progress), dynamic_ncols=True)
    done = 0

    def finish(cell: Cell, outcome: dict) -> None:
        nonlocal done
        done += 1
        bar.update(1)
        if outcome["status"] == "finished":
            summary.finished.append(cell)
            (cell.run_dir / "error.json").unlink(missing_ok=True)
            echo(_line(cell, outcome, done, total))
        elif outcome["status"] == "failed":
            summary.failed.append((cell, outcome["error"]))
            _record_failure(cell, outcome)
            echo(f"[{done}/{total}] {cell.label}: FAILED: {outcome['error']}")
        else:
            summary.not_run.append(cell)

    if keep_freed_memory and jobs == 1:
        from ..perf import keep_freed_memory as keep

        keep()
    try:
        if jobs == 1:
            for i, (cell, _) in enumerate(todo):
                bar.set_postfix_str(cell.label, refresh=True)
                try:
                    outcome = run_cell_job(configs[i], resumes[i])
                except KeyboardInterrupt:
                    summary.interrupted = True
                    summary.not_run.extend(c for c, _ in todo[i:])
                    break
                finish(cell, outcome)
        else:
            _run_parallel(todo, configs, resumes, jobs, summary, finish, keep_freed_memory)
    finally:
        bar.close()
    return summary


def _run_parallel(todo, configs, resumes, jobs: int, summary: RunSummary, finish, keep_memory: bool) -> None:
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    threads = max(1, (os.cpu_count() or 1) // jobs)
    pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker, initargs=(threads, stop, keep_memory))
    futures = {pool.submit(run_cell_job, configs[i], resumes[i]): cell for i, (cell, _) in enumerate(todo)}
    pending = set(futures)
    try:
        for future in cf.as_completed(futures):
            pending.discard(future)
            cell = futures[future]
            exc = future.exception()
            if isinstance(exc, KeyboardInterrupt):
                raise KeyboardInterrupt
            if exc is not None:  # the worker process died (e.g. killed for memory)
                finish(cell, {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": ""})
            else:
                finish(cell, future.result())
    except KeyboardInterrupt:
        summary.interrupted = True
        stop.set()
        summary.not_run.extend(futures[f] for f in pending)
        _stop_pool(pool)
    else:
        pool.shutdown(wait=True)


def _stop_pool(pool: cf.ProcessPoolExecutor, grace_s: float = 10.0) -> None:
    """Cancel queued cells and end the workers (checkpoints are written atomically, so a cell
    stopped mid-epoch resumes from its last finished epoch)."""
    processes = list(getattr(pool, "_processes", {}).values())  # no public handle on the workers
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + grace_s
    for proc in processes:  # workers got the same Ctrl-C; give them a moment to stop by themselves
        proc.join(timeout=max(0.0, deadline - time.monotonic()))
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5)
