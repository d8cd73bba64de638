"""One table of many training runs: the settings that tell them apart, and how far each got.

Each run is a directory written by ``spikedyn train`` (``config.json`` and ``metrics.jsonl``), or a
kept copy of its ``metrics.jsonl`` under any ``*.jsonl`` name (its settings are then unknown).  A
folder that is not a run itself stands for every run and kept log below it (a ``reproduce`` or
``sweep`` root, a folder of logs).  Per run the table gives

* the settings whose values differ between the runs (dict-valued ones such as ``model_options``
  flattened to ``model_options.dropout``; paths, logging and device choices left out), or the
  ones asked for with ``columns``;
* the epochs recorded (of the epochs planned, marked "training" while a process of this machine
  trains the run), the last and the best test score with the epoch of the best, the last training
  score and the training time;
* with a validation split: the test score at the epoch of the best validation score (the
  number to report, since the best test epoch is picked on the test set).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..reproduce.markdown import duration_text
from ..runfiles import read_metrics
from .runs import run_name

# settings that say where or how a run was kept, not what was trained
IGNORED_SETTINGS = frozenset({
    "out", "data_root", "progress", "log", "device", "eval_batch_size", "checkpoint_minutes", "allocator",
})
# shown when no setting differs (one run, or runs that differ only by what is ignored)
DEFAULT_SETTINGS = ("dataset", "model", "neuron", "rule")
SORT_KEYS = ("given", "name", "best", "last")
FORMATS = ("markdown", "csv", "json")


@dataclass
class RunRow:
    """One run's line of the table (scores as fractions, as ``metrics.jsonl`` holds them)."""

    name: str
    path: Path
    settings: dict[str, object] | None  # flattened config.json; None for a bare metrics.jsonl
    epochs: int
    planned: int | None
    metric: str
    last: float | None
    best: float | None
    best_epoch: int | None
    train_last: float | None
    seconds: float
    test_at_best_val: float | None = None
    best_val_epoch: int | None = None
    training: str | None = None  # who trains it now, when a process of this machine does


def flatten_settings(config: dict, prefix: str = "") -> dict[str, object]:
    """``{"model_options": {"dropout": 0.2}}`` -> ``{"model_options.dropout": 0.2}``; lists as they are."""
    flat: dict[str, object] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_settings(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def find_runs(paths: Iterable[str | Path]) -> list[Path]:
    """The runs named by ``paths``: a run folder, a metrics file, or a folder holding runs below it.

    Raises ``FileNotFoundError`` for a path that does not exist or holds no run, naming it.
    """
    runs: list[Path] = []
    for item in paths:
        path = Path(item)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: pass run directories of `spikedyn train` or their metrics.jsonl")
        if path.is_file() or (path / "metrics.jsonl").exists():
            found = [path]
        else:  # run folders below it, and kept logs (metrics files under other names)
            found = sorted(p.parent if p.name == "metrics.jsonl" else p for p in path.rglob("*.jsonl"))
            if not found:
                raise FileNotFoundError(
                    f"{path} holds no run: no metrics.jsonl (or kept *.jsonl log) in it or below it "
                    f"(a run writes one after its first epoch)"
                )
        runs.extend(p for p in found if p not in runs)
    return runs


def _name(path: Path, roots: Sequence[Path]) -> str:
    """A run's name: its path below the folder it was found in, else :func:`~spikedyn.analysis.runs.run_name`."""
    for root in roots:
        if root.is_dir() and path != root and root in path.parents:
            relative = path.relative_to(root)
            return str(relative.with_suffix("") if path.is_file() else relative)
    return run_name(path)


def read_run(path: Path, name: str | None = None) -> RunRow:
    """Read one run's ``config.json`` (when it has one) and ``metrics.jsonl`` into a :class:`RunRow`."""
    records = read_metrics(path)
    config = None
    if path.is_dir() and (path / "config.json").exists():
        try:
            config = json.loads((path / "config.json").read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path / 'config.json'} is not valid JSON ({err.msg}): the run folder is damaged") from None
    settings = None if config is None else flatten_settings(config)
    tests = [(r["epoch"], r["test_accuracy"]) for r in records if r.get("test_accuracy") is not None]
    best_epoch, best = max(tests, key=lambda t: t[1]) if tests else (None, None)
    row = RunRow(
        name=name or run_name(path),
        path=path,
        settings=settings,
        epochs=len(records),
        planned=None if settings is None else settings.get("epochs"),
        metric=records[-1].get("metric", "accuracy") if records else "accuracy",
        last=tests[-1][1] if tests else None,
        best=best,
        best_epoch=best_epoch,
        train_last=records[-1].get("train_accuracy") if records else None,
        seconds=sum(float(r.get("seconds", 0.0)) for r in records),
    )
    if path.is_dir():
        from ..reproduce.cells import running_elsewhere

        row.training = running_elsewhere(path)
    vals = [r for r in records if r.get("val_accuracy") is not None]
    if vals:
        chosen = max(vals, key=lambda r: r["val_accuracy"])  # the first of equal ones: the earliest epoch
        row.test_at_best_val, row.best_val_epoch = chosen.get("test_accuracy"), chosen["epoch"]
    return row


def differing_settings(rows: Sequence[RunRow]) -> list[str]:
    """The settings whose values are not the same in every run that has settings (in config order)."""
    known = [r.settings for r in rows if r.settings is not None]
    keys: list[str] = []
    for settings in known:
        keys.extend(k for k in settings if k not in keys and k not in IGNORED_SETTINGS)
    return [k for k in keys if len({json.dumps(s[k], default=str) if k in s else "<unset>" for s in known}) > 1]


def run_table(
    paths: Iterable[str | Path], columns: Sequence[str] | None = None, sort: str = "given",
    labels: Sequence[str] | None = None,
) -> tuple[list[RunRow], list[str]]:
    """Read the runs named by ``paths`` and pick the setting columns; returns ``(rows, columns)``.

    ``columns``: settings to show (flattened names such as ``model_options.dropout``); default:
    those that differ between the runs, or :data:`DEFAULT_SETTINGS` when none does.  ``sort``:
    ``given`` (the order found), ``name``, ``best`` or ``last`` (highest score first).
    """
    if sort not in SORT_KEYS:
        raise ValueError(f"sort must be one of {', '.join(SORT_KEYS)}, got {sort!r}")
    roots = [Path(p) for p in paths]
    found = find_runs(roots)
    if labels is not None and len(labels) != len(found):
        raise ValueError(f"{len(labels)} label(s) for {len(found)} run(s): give one label per run, or none")
    rows = [read_run(p, labels[i] if labels else _name(p, roots)) for i, p in enumerate(found)]
    if columns is None:
        columns = differing_settings(rows) or [
            k for k in DEFAULT_SETTINGS if any(r.settings and k in r.settings for r in rows)
        ]
    else:
        known = {k for r in rows if r.settings for k in r.settings}
        unknown = [c for c in columns if c not in known]
        if known and unknown:
            raise ValueError(
                f"no run has the setting(s) {', '.join(unknown)}; settings are the keys of config.json, "
                f"dict-valued ones as model_options.KEY (these runs have: {', '.join(sorted(known))})"
            )
    if sort == "name":
        rows.sort(key=lambda r: r.name)
    elif sort in ("best", "last"):
        rows.sort(key=lambda r: -1.0 if getattr(r, sort) is None else getattr(r, sort), reverse=True)
    return rows, list(columns)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _setting(row: RunRow, key: str) -> str:
    if row.settings is None or key not in row.settings:
        return "-"
    value = row.settings[key]
    return json.dumps(value) if isinstance(value, (list, bool)) or value is None else str(value)


def table_records(rows: Sequence[RunRow], columns: Sequence[str]) -> list[dict[str, object]]:
    """The table as plain records (the JSON and CSV forms): settings, then the numbers."""
    has_val = any(r.best_val_epoch is not None for r in rows)
    out = []
    for r in rows:
        record: dict[str, object] = {"run": r.name}
        record.update({c: (r.settings or {}).get(c) for c in columns})
        record.update(
            epochs=r.epochs, planned_epochs=r.planned, metric=r.metric, test_last=r.last, test_best=r.best,
            best_epoch=r.best_epoch, train_last=r.train_last, seconds=round(r.seconds, 3), training=r.training,
        )
        if has_val:
            record.update(test_at_best_val=r.test_at_best_val, best_val_epoch=r.best_val_epoch)
        record["path"] = str(r.path)
        out.append(record)
    return out


def render_table(rows: Sequence[RunRow], columns: Sequence[str], fmt: str = "markdown") -> str:
    """The table as Markdown (scores in %, with a ``metric`` column where one is not plain accuracy), CSV or JSON."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "json":
        return json.dumps(table_records(rows, columns), indent=2) + "\n"
    if fmt == "csv":
        records = table_records(rows, columns)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(records[0]) if records else ["run"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return buffer.getvalue()
    has_val = any(r.best_val_epoch is not None for r in rows)
    has_metric = any(r.metric != "accuracy" for r in rows)
    header = ["run", *columns, "epochs", "test % (last)", "best (epoch)", "train % (last)", "time"]
    if has_val:
        header.insert(-1, "test at best val (epoch)")
    if has_metric:
        header.insert(1 + len(columns), "metric")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        done = f"{r.epochs}" if r.planned is None or r.planned == r.epochs else f"{r.epochs} of {r.planned}"
        done += " (training)" if r.training else ""
        best = "-" if r.best is None else f"{_percent(r.best)} ({r.best_epoch})"
        cells = [r.name, *(_setting(r, c) for c in columns), done, _percent(r.last), best, _percent(r.train_last),
                 duration_text(r.seconds)]
        if has_val:
            at_val = "-" if r.best_val_epoch is None else f"{_percent(r.test_at_best_val)} ({r.best_val_epoch})"
            cells.insert(-1, at_val)
        if has_metric:
            cells.insert(1 + len(columns), r.metric)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


__all__ = [
    "RunRow", "IGNORED_SETTINGS", "DEFAULT_SETTINGS", "SORT_KEYS", "FORMATS", "flatten_settings", "find_runs",
    "read_run", "differing_settings", "run_table", "table_records", "render_table",
]
