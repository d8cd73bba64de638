"""Cells of a reproduction table and what their run directories hold.

A *cell* is (table, row, data set actually used, neuron, seed).  Its run directory is::

    <out_root>/<table>/<row folder>/<neuron folder>/seed<seed>

where the row folder is the data set's name (plus ``-<variant>`` for rows that share a data
set, e.g. ``mnist-brp`` and ``mnist-bptt`` for two learning rules) and the neuron folder is the kind (a presets-file kind ``dir/file.json:NAME`` becomes
``file-NAME``).  A cell is an ordinary ``spikedyn train`` run: ``config.json``,
``metrics.jsonl`` and ``checkpoint.pt`` are the trainer's; a cell is *finished* when
``metrics.jsonl`` holds at least ``epochs`` records, and an unfinished cell resumes from its
checkpoint.  Runs started by hand with ``spikedyn train --out`` in that layout count as cells.

The runner adds files of its own: ``error.json`` in a cell whose last attempt failed (removed
when it succeeds), ``.running`` while it trains a cell, and ``data.json`` in a row folder (the
data set's sizes and source).
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..runfiles import read_metrics
from .tables import AUTHORS_SEED

#: where cells live unless ``out_root`` says otherwise
DEFAULT_OUT_ROOT = Path("runs") / "reproduce"


def seed_list(n: int, first: int = AUTHORS_SEED) -> list[int]:
    """``n`` seeds: ``first`` (by default the MDN authors' 3154), then ``first + 1``, ..."""
    if n < 1:
        raise ValueError(f"--seeds must be at least 1, got {n}")
    return [first + i for i in range(n)]


def neuron_folder(kind: str) -> str:
    """A file-system-safe folder name of a neuron kind (``dir/presets.json:FS`` -> ``presets-FS``)."""
    if ":" in kind:
        path, _, name = kind.rpartition(":")
        text = f"{Path(path).stem}-{name}"
    else:
        text = kind.lower()
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    if not safe:
        raise ValueError(f"neuron kind {kind!r} gives no usable folder name")
    return safe


def cell_dir(out_root: str | os.PathLike, table: str, folder: str, neuron: str, seed: int) -> Path:
    """``<out_root>/<table>/<folder>/<neuron folder>/seed<seed>``."""
    return Path(out_root) / table / folder / neuron_folder(neuron) / f"seed{seed}"


@dataclass(frozen=True, eq=False)
class Cell:
    """One training run of a table: a row on one data set, one neuron, one seed."""

    table: str
    row: str
    dataset: str
    neuron: str
    seed: int
    run_dir: Path
    data_options: dict = field(default_factory=dict)
    train_options: dict = field(default_factory=dict)
    planned: bool = True  # False: found on disk but not asked for (another seed or neuron); reported, not run

    @property
    def label(self) -> str:
        return f"{self.row} [{self.dataset}] {self.neuron} seed {self.seed}"


@dataclass
class CellState:
    """What a cell's run directory holds."""

    status: str  # "new" | "partial" | "finished" | "failed" | "conflict" | "running"
    epochs_done: int = 0
    target: int | None = None  # epochs that make it finished (None: unknown, not started)
    config: dict | None = None
    history: list[dict] = field(default_factory=list)
    error: str | None = None
    has_checkpoint: bool = False
    running: str | None = None  # who trains it now, when another process does

    @property
    def runnable(self) -> bool:
        return self.status in ("new", "partial", "failed")


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def cell_state(run_dir: Path, epochs: int | None = None, expected: dict | None = None) -> CellState:
    """State of a run directory.

    ``epochs``: the epochs that make the cell finished (None: the epochs of its own
    ``config.json``).  ``expected``: config values the cell must have been run with; a
    difference (e.g. another ``lr_step``) makes it a ``"conflict"``, which the runner never
    touches.
    """
    run_dir = Path(run_dir)
    config = _read_json(run_dir / "config.json")
    has_ckpt = (run_dir / "checkpoint.pt").exists()
    target = epochs if epochs is not None else (config or {}).get("epochs")
    try:
        history = read_metrics(run_dir, missing_ok=True)
    except ValueError as err:  # damaged metrics.jsonl: the runner must not train over it
        return CellState("conflict", 0, target, config, [], f"{err}; delete the folder to rerun the cell", has_ckpt)
    state = CellState("new", len(history), target, config, history, None, has_ckpt)
    if config is not None and expected:
        diffs = [f"{k}={config.get(k)!r} (asked: {v!r})" for k, v in expected.items() if k in config and config[k] != v]
        if diffs:
            state.status = "conflict"
            state.error = (
                f"{run_dir} was run with {', '.join(diffs)}; pass the same settings to continue it, "
                f"or another --out to start afresh"
            )
            return state
    if target is not None and history and len(history) >= target:
        state.status = "finished"
        return state
    state.running = running_elsewhere(run_dir)
    if state.running:
        state.status = "running"
        return state
    if history and not has_ckpt:
        state.status = "conflict"
        state.error = f"{run_dir} has metrics.jsonl but no checkpoint.pt to resume from; delete the folder to rerun it"
        return state
    error = _read_json(run_dir / "error.json")
    if error is not None:
        state.status = "failed"
        state.error = error.get("error", "unknown error")
    elif history or has_ckpt:
        state.status = "partial"
    return state


LOCK_NAME = ".running"
_PROC_CACHE: dict = {"time": -1.0, "outs": {}}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _training_processes() -> dict[Path, int]:
    """Run folders named by ``--out`` on the command line of this machine's other processes
    (Linux ``/proc``; elsewhere nothing), cached for two seconds."""
    now = time.monotonic()
    if now - _PROC_CACHE["time"] < 2.0:
        return _PROC_CACHE["outs"]
    outs: dict[Path, int] = {}
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                args = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
                cwd = Path(os.readlink(entry / "cwd"))
            except OSError:
                continue
            if "train" not in args:
                continue
            for i, arg in enumerate(args[:-1]):
                if arg == "--out":
                    outs[(cwd / args[i + 1]).resolve()] = int(entry.name)
    _PROC_CACHE.update(time=now, outs=outs)
    return outs


def running_elsewhere(run_dir: Path) -> str | None:
    """Who is training ``run_dir`` now, if another process is: a runner's lock file naming a
    live process of this machine, or a ``spikedyn train --out run_dir`` process."""
    lock = _read_json(Path(run_dir) / LOCK_NAME)
    if lock and lock.get("host") == socket.gethostname() and lock.get("pid") != os.getpid() and _alive(int(lock["pid"])):
        return f"process {lock['pid']} (spikedyn reproduce) trains it"
    pid = _training_processes().get(Path(run_dir).resolve())
    if pid:
        return f"process {pid} (a train command with --out this folder) trains it"
    return None
