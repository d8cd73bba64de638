"""The plan of a table: per row the data set to use (or why none), and the cells to run.

See :mod:`spikedyn.reproduce.cells` for the run-directory layout.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterable, Sequence

from tqdm.auto import tqdm
from ..progress import bar_disabled

from .cells import DEFAULT_OUT_ROOT, Cell, CellState, _read_json, cell_dir, cell_state, seed_list
from .tables import RUNNER_FIELDS, RowSpec, TableSpec

#: ``build_plan(epochs=TABLE_DEFAULT)``: the table's own default (``TableSpec.epochs`` / ``lr_step``)
TABLE_DEFAULT = "table"


@dataclass
class RowPlan:
    """A row of the plan: the data set chosen for it (or why none) and its cells."""

    row: RowSpec
    dataset: str | None = None
    data_options: dict = field(default_factory=dict)
    folder: str | None = None
    note: str = ""  # the stand-in's note when one is used
    data: dict | None = None  # sizes and source of the data set (probe or data.json)
    missing: list[dict] = field(default_factory=list)  # {"dataset", "error"} per data set without usable files
    problem: str | None = None  # the row cannot run with this version (e.g. an unknown training option)
    cells: list[Cell] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.problem:
            return "unsupported"
        return "no data" if self.dataset is None else "ok"


@dataclass
class Plan:
    """Cells of a table: the schedule, the rows (with their data) and their cells."""

    table: TableSpec
    out_root: Path
    neurons: list[str]
    seeds: list[int] | None
    epochs: int | None
    lr_step: int | None
    data_root: str | None
    overrides: dict
    rows: list[RowPlan]

    @property
    def cells(self) -> list[Cell]:
        return [c for r in self.rows for c in r.cells]

    def expected(self, cell: Cell) -> dict:
        """Config values a cell's existing run directory must match to be continued.

        ``lr_step`` is left out where it changes nothing: a constant learning rate (``lr_gamma``
        1) or the cosine schedule.
        """
        values = {"dataset": cell.dataset, "data_options": cell.data_options, "seed": cell.seed}
        values.update(cell.train_options)
        values = with_overrides(values, self.overrides)
        if self.lr_step is not None and uses_lr_step(values):
            values["lr_step"] = self.lr_step
        return values

    def state(self, cell: Cell) -> CellState:
        return cell_state(cell.run_dir, self.epochs, self.expected(cell))

    def config_for(self, cell: Cell, device: str = "auto") -> dict:
        """Keyword arguments of the cell's :class:`~spikedyn.train.TrainConfig`."""
        if self.epochs is None or self.lr_step is None:
            raise ValueError("a plan built without epochs / lr_step can be reported but not run")
        return with_overrides({
            "dataset": cell.dataset, "data_root": self.data_root, "data_options": dict(cell.data_options),
            "neuron": cell.neuron, "seed": cell.seed, "epochs": self.epochs, "lr_step": self.lr_step,
            "out": str(cell.run_dir), "device": device, "progress": False,
            **cell.train_options,
        }, self.overrides)


def constant_lr(options: dict) -> bool:
    """Whether training options ask for a constant learning rate (StepLR with ``lr_gamma`` 1)."""
    return options.get("schedule", "step") == "step" and options.get("lr_gamma") == 1.0


def uses_lr_step(options: dict) -> bool:
    """Whether ``lr_step`` matters to a run with these options (StepLR that decays)."""
    return options.get("schedule", "step") == "step" and not constant_lr(options)


#: how a report and ``--dry-run`` name a schedule that takes no lr step (see :func:`lr_schedule_kind`)
LR_SCHEDULE_TEXT = {"constant": "constant learning rate", "cosine": "cosine learning-rate schedule"}


def lr_schedule_kind(plan: "Plan") -> str:
    """``"constant"``, ``"cosine"`` or ``"step"``: the learning-rate schedule every row of ``plan`` runs
    (``"step"`` unless all rows share a constant rate or all a cosine schedule)."""
    options = [with_overrides(plan.table.row_options(rp.row), plan.overrides) for rp in plan.rows]
    if options and all(constant_lr(o) for o in options):
        return "constant"
    if options and all(o.get("schedule") == "cosine" for o in options):
        return "cosine"
    return "step"


def _train_config_fields() -> set[str]:
    from ..train import TrainConfig

    return {f.name for f in fields(TrainConfig)}


def with_overrides(options: dict, overrides: dict) -> dict:
    """``options`` with ``overrides`` applied (a copy): a plain key replaces the option, a dotted key
    ``model_options.input_scale`` sets one entry of a dict-valued option, keeping its other entries."""
    out = dict(options)
    for key, value in overrides.items():
        field_name, dot, entry = key.partition(".")
        if dot:
            out[field_name] = {**(out.get(field_name) or {}), entry: value}
        else:
            out[key] = value
    return out


#: TrainConfig fields holding a dict, whose entries ``--set NAME.KEY=VALUE`` may set one by one
DICT_FIELDS = ("data_options", "model_options")


def check_overrides(overrides: dict | None) -> dict:
    """Validate extra :class:`~spikedyn.train.TrainConfig` values (e.g. ``{"hidden": 8}``, or
    ``{"model_options.input_scale": 39}`` for one entry of a dict-valued option)."""
    overrides = dict(overrides or {})
    known = _train_config_fields()
    dotted = sorted(k for k in overrides if "." in k and k.partition(".")[0] not in DICT_FIELDS)
    if dotted:
        raise ValueError(
            f"{', '.join(dotted)}: only the entries of {' and '.join(DICT_FIELDS)} can be set one by one "
            f"(NAME.KEY=VALUE); set other options whole (KEY=VALUE)"
        )
    unknown = sorted({k.partition(".")[0] for k in overrides} - known)
    if unknown:
        raise ValueError(f"unknown training option(s) {', '.join(unknown)}; options: {', '.join(sorted(known - set(RUNNER_FIELDS)))}")
    reserved = sorted(set(overrides) & set(RUNNER_FIELDS))
    if reserved:
        raise ValueError(f"{', '.join(reserved)} cannot be overridden this way; the runner sets them (see its own options)")
    return overrides


def select_rows(table: TableSpec, tasks: Sequence[str] | None) -> list[RowSpec]:
    """Rows whose label, task, data set, stand-in or folder matches one of ``tasks`` (case-insensitive)."""
    if not tasks:
        return list(table.rows)
    names = {t.lower() for t in tasks}
    keys = {}
    for row in table.rows:
        keys[row.label] = {row.label.lower(), row.group.lower()} | {d.lower() for d, _, _ in row.candidates()} | {
            row.folder(d).lower() for d, _, _ in row.candidates()
        }
    unknown = sorted(n for n in names if not any(n in k for k in keys.values()))
    if unknown:
        accepted = sorted(set().union(*keys.values()))
        raise ValueError(f"table {table.name} has no task {', '.join(unknown)}; tasks: {', '.join(accepted)}")
    return [row for row in table.rows if keys[row.label] & names]


def select_neurons(table: TableSpec, neurons: Sequence[str] | None) -> list[str]:
    """The table's neurons, replaced by ``neurons`` or extended by its ``+kind`` entries."""
    if not neurons:
        return list(table.neurons)
    extend = [n[1:] for n in neurons if n.startswith("+")]
    replace = [n for n in neurons if not n.startswith("+")]
    chosen = list(replace) if replace else list(table.neurons)
    chosen += extend
    try:
        from ..neurons import check_neuron_kind
    except ImportError:  # an older neurons module: accept the kinds as written
        def check_neuron_kind(kind: str) -> str:
            return kind
    out: list[str] = []
    for kind in chosen:
        kind = check_neuron_kind(kind)
        if kind not in out:
            out.append(kind)
    return out


def probe_data(dataset: str, options: dict, data_root: str | None) -> tuple[dict | None, str | None]:
    """Load a data set to see whether its files are there: ``(summary, None)`` or ``(None, message)``.

    The message of a missing file says where to get the data and where to put it.
    """
    from ..data import load_dataset

    try:
        ds = load_dataset(dataset, data_root, progress=False, **options)
    except FileNotFoundError as exc:  # DataFileError included
        return None, str(exc)
    except (ValueError, OSError, RuntimeError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    notes = {k: v for k, v in ds.notes.items() if isinstance(v, (str, int, float, bool, list, dict, type(None)))}
    summary = {
        "dataset": dataset, "data_options": options, "source": ds.source, "kind": ds.kind,
        "train": len(ds.train), "test": len(ds.test), "classes": ds.num_classes, "notes": notes,
    }
    metric = getattr(ds, "metric", None)
    if metric and metric != "accuracy":
        summary["metric"] = metric
    return summary, None


def _discover(out_root: Path, table: str, folder: str) -> list[tuple[str, int, Path]]:
    """``(neuron, seed, run_dir)`` of every cell folder found under a row folder."""
    found = []
    base = out_root / table / folder
    if not base.is_dir():
        return found
    for neuron_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for run_dir in sorted(p for p in neuron_dir.iterdir() if p.is_dir()):
            match = re.fullmatch(r"seed(\d+)", run_dir.name)
            if match is None:
                continue
            info = _read_json(run_dir / "config.json") or _read_json(run_dir / "error.json") or {}
            if not info and not (run_dir / "metrics.jsonl").exists():
                continue
            found.append((info.get("neuron", neuron_dir.name), int(match.group(1)), run_dir))
    return found


def _all_finished(plan: Plan, cells: list[Cell]) -> bool:
    return bool(cells) and all(plan.state(c).status == "finished" for c in cells)


def build_plan(
    table: TableSpec,
    *,
    out_root: str | os.PathLike = DEFAULT_OUT_ROOT,
    seeds: int | Sequence[int] | None = 5,
    epochs: int | str | None = TABLE_DEFAULT,
    lr_step: int | str | None = TABLE_DEFAULT,
    tasks: Sequence[str] | None = None,
    neurons: Sequence[str] | None = None,
    data_root: str | None = None,
    overrides: dict | None = None,
    load_data: bool = True,
    progress: bool = False,
) -> Plan:
    """The cells of ``table`` and, per row, the data set to use.

    Per row the data sets are tried in order (the row's own, then its stand-ins).  One is taken
    without loading when all its planned cells are finished, or (``load_data=False``, for
    reports) when any of its cells exists; otherwise it is loaded once to see whether its files
    are there.  Rows with none are kept, with the loaders' messages (where to get the data).

    ``seeds``: a count (the table's first seed, e.g. 3154, then 3155, ...), a list, or None (only
    the cells found on disk).  ``epochs`` / ``lr_step``: ``"table"`` (default) takes the table's
    (``TableSpec.epochs`` / ``lr_step``); None leaves them open (reports only: a cell is then
    finished when it reached the epochs of its own ``config.json``).
    """
    out_root = Path(out_root)
    if epochs == TABLE_DEFAULT:
        epochs = table.epochs
    if lr_step == TABLE_DEFAULT:
        lr_step = table.lr_step
    if isinstance(seeds, int):
        seed_values = seed_list(seeds, table.first_seed)
    else:
        seed_values = list(seeds) if seeds is not None else None
    overrides = check_overrides(overrides)
    known = _train_config_fields()
    plan = Plan(table, out_root, select_neurons(table, neurons), seed_values, epochs, lr_step, data_root, overrides, [])
    rows = select_rows(table, tasks)
    probed: dict[str, tuple[dict | None, str | None]] = {}  # rows sharing a data set load it once
    for row in tqdm(rows, desc="checking data", disable=bar_disabled(progress), leave=False):
        rp = RowPlan(row)
        plan.rows.append(rp)
        train_options = table.row_options(row)
        bad = sorted(set(train_options) - known)
        if bad:
            rp.problem = (
                f"needs the training option(s) {', '.join(bad)}, which this version's TrainConfig lacks; "
                f"update spikedyn"
            )
        for dataset, options, note in row.candidates():
            folder = row.folder(dataset)
            planned = [
                Cell(table.name, row.label, dataset, n, s, cell_dir(out_root, table.name, folder, n, s), options,
                     dict(train_options))
                for n in plan.neurons for s in (seed_values or [])
            ]
            found = _discover(out_root, table.name, folder)
            summary = _read_json(out_root / table.name / folder / "data.json")
            if rp.problem is not None:
                if not found:
                    continue  # a row that cannot run: only show runs that exist; never load its data
                planned = []
            elif not (_all_finished(plan, planned) or (not load_data and found)):
                key = json.dumps([dataset, options], sort_keys=True, default=str)
                if key not in probed:
                    probed[key] = probe_data(dataset, options, data_root)
                summary, error = probed[key]
                if error is not None:
                    rp.missing.append({"dataset": dataset, "data_options": options, "error": error})
                    continue
            rp.dataset, rp.data_options, rp.folder, rp.note, rp.data = dataset, options, folder, note, summary
            asked = {c.run_dir.resolve() for c in planned}
            rp.cells = planned + [
                Cell(table.name, row.label, dataset, n, s, d, options, dict(train_options), planned=False)
                for n, s, d in found if d.resolve() not in asked
            ]
            break
    return plan


def split_devices(device: str) -> list[str]:
    """``"cuda:0,cuda:1"`` -> ``["cuda:0", "cuda:1"]``; ``auto``, ``cpu``, ``cuda`` stay one."""
    devices = [d.strip() for d in device.split(",") if d.strip()]
    if not devices:
        raise ValueError("--device is empty; use auto, cpu, cuda or a list like cuda:0,cuda:1")
    return devices


def options_text(options: dict) -> str:
    """``key=value`` pairs of training options, nested dicts flattened (``topology=mnist``)."""
    parts = []
    for key, value in options.items():
        if isinstance(value, dict):
            parts += [f"{k}={v}" for k, v in value.items()]
        else:
            parts.append(f"{key}={value}")
    return ", ".join(parts)


def describe_plan(plan: Plan) -> Iterable[str]:
    """Lines of text for ``--dry-run``: rows, data, and each cell's state."""
    t = plan.table
    seeds = ", ".join(map(str, plan.seeds)) if plan.seeds else "the ones found"
    yield f"{t.name}: {t.title}"
    yield f"  paper: {t.source}"
    if t.paper_schedule:
        yield f"  paper's schedule: {t.paper_schedule}"
    if t.train_options:
        yield f"  every row: {options_text(t.train_options)}"
    options = [with_overrides(t.row_options(rp.row), plan.overrides) for rp in plan.rows]
    gammas = sorted({o.get("lr_gamma", 0.1) for o in options}) or [0.1]
    lr = LR_SCHEDULE_TEXT.get(lr_schedule_kind(plan),
                              f"lr step {plan.lr_step} (gamma {', '.join(f'{g:g}' for g in gammas)})")
    yield f"  our schedule: {plan.epochs} epochs, {lr}; seeds {seeds}; neurons {', '.join(plan.neurons)}"
    if t.columns:
        yield f"  columns: {', '.join(t.columns)} (each row is one task in one column)"
    if plan.overrides:
        yield f"  overrides: {plan.overrides}"
    yield f"  run folders under {plan.out_root / t.name}"
    counts: dict[str, int] = {}
    for rp in plan.rows:
        yield ""
        own = with_overrides(rp.row.train_options, plan.overrides)  # as the cells will train (--set applied)
        if rp.status == "unsupported":
            yield f"{rp.row.label}: cannot run: {rp.problem}"
            continue
        if rp.status == "no data":
            yield f"{rp.row.label}: NO DATA" + (f" (would train {options_text(own)})" if own else "")
            for miss in rp.missing:
                yield f"  {miss['dataset']}: " + miss["error"].replace("\n", "\n    ")
            continue
        used = rp.dataset + (f" [{options_text(rp.data_options)}]" if rp.data_options else "")
        used += f" ({rp.note})" if rp.note else ""
        yield f"{rp.row.label}: data {used}" + (
            f", {rp.data['train']} train / {rp.data['test']} test" if rp.data and "train" in rp.data else ""
        )
        if own:
            yield f"  trains with {options_text(own)}"
        for miss in rp.missing:
            yield f"  ({miss['dataset']} not available: {miss['error'].splitlines()[0]})"
        for cell in rp.cells:
            state = plan.state(cell)
            counts[state.status] = counts.get(state.status, 0) + 1
            done = f"{state.epochs_done}/{state.target}" if state.target else str(state.epochs_done)
            extra = {"partial": " (resumes)", "failed": f" (last error: {state.error})", "conflict": f": {state.error}",
                     "running": f": {state.running}; left alone"}.get(state.status, "")
            yield f"  {cell.run_dir}  {state.status} {done}{extra}"
    yield ""
    yield "cells: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none")
