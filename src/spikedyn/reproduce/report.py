"""Paper-vs-ours report of a table: ``<table>.md`` and ``<table>.json`` (and its figures).

Everything is read back from the cells' run directories (``config.json``, ``metrics.jsonl``,
``error.json``), so the report can be written at any time, also while cells are running.
"Ours" is each finished seed's test score of the **final** epoch (or, where the table or row
says so, of the best epoch, or of the epoch with the best validation score: ``tables.SCORES``),
as mean ± **sample** standard deviation (n - 1) over the finished seeds, plus the mean over
seeds of each seed's best epoch.
Scores are in percent, like the paper's.

The main table has one line per task and one column per neuron, or per the table's own
``columns`` (rules, time steps; :mod:`spikedyn.reproduce.tables`).  Tables may ask for figures:
``curves`` (per task, the mean test curve of every column, one PNG per task, and the first
epoch at which each curve reaches a fraction of its final score) and ``sweep`` (the score of
each task against a swept setting, one PNG).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from pathlib import Path
from typing import Sequence

from ..analysis.capability import Capability, capability
from .cells import Cell
from .plan import Plan, RowPlan, constant_lr, with_overrides
from .runner import RunSummary
from .tables import SCORES, CheckSpec, RowSpec, TableSpec

STD_NOTE = "sample standard deviation (n - 1) over the finished seeds"
#: a mean test curve counts as settled when it moves less than this (percentage points) over its last tenth
SETTLED_POINTS = 1.0
SCHEDULE_KEYS = ("epochs", "lr_step", "lr_gamma", "schedule", "steps", "batch_size", "hidden", "lr", "lr_dynamics",
                 "encoder", "alpha", "input_view", "model", "model_options", "rule")


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def cell_record(plan: Plan, cell: Cell, now: float | None = None) -> dict:
    """What the report knows of one cell (scores in percent)."""
    state = plan.state(cell)
    rec = {
        "row": cell.row, "dataset": cell.dataset, "neuron": cell.neuron, "seed": cell.seed,
        "run_dir": str(cell.run_dir), "status": state.status, "epochs_done": state.epochs_done,
        "epochs": state.target, "asked": cell.planned,
    }
    history = state.history
    if state.target is not None and len(history) > state.target:
        # a run trained past the epochs asked (extended, or still running): scored after the epochs asked,
        # so that every cell of the table is compared after the same training
        history = history[: state.target]
    if state.config:
        rec["schedule"] = {k: state.config.get(k) for k in SCHEDULE_KEYS if k in state.config}
        if state.status == "finished" and len(history) != state.config.get("epochs"):
            rec["schedule"]["epochs_scored"] = len(history)
    if history:
        rec["epochs_scored"] = len(history)
        scores = [100 * h["test_accuracy"] for h in history]
        rec.update(final=round(scores[-1], 6), best=round(max(scores), 6), best_epoch=1 + scores.index(max(scores)))
        val = [h.get("val_accuracy") for h in history]
        if all(v is not None for v in val):  # accuracy-B: the test score where validation peaks (first such epoch)
            pick = val.index(max(val))
            rec.update(selected=round(scores[pick], 6), selected_epoch=pick + 1)
        metric = history[-1].get("metric")
        if metric:
            rec["metric"] = metric
        metrics = cell.run_dir / "metrics.jsonl"
        age = (now or time.time()) - metrics.stat().st_mtime
        rec["last_update_s"] = round(age)
    if state.error:
        rec["error"] = state.error
    if state.running:
        rec["running"] = state.running
    return rec


def _row_results(table: TableSpec, rp: RowPlan, records: list[dict], neurons: list[str]) -> dict:
    ours = {}
    score = table.score_of(rp.row)
    for neuron in neurons:
        mine = [r for r in records if r["neuron"] == neuron]
        done = [r for r in mine if r["status"] == "finished" and score in r]
        score_mean, score_std = _mean_std([r[score] for r in done])
        best_mean, _ = _mean_std([r["best"] for r in done])
        schedules = []
        for r in mine:
            if r.get("schedule") and r["schedule"] not in schedules:
                schedules.append(r["schedule"])
        ours[neuron] = {
            "score_mean": score_mean, "score_std": score_std, "best_mean": best_mean,
            "seeds_finished": len(done), "cells": len(mine),
            "seeds": sorted(r["seed"] for r in done), "schedules": schedules,
            "per_seed": {str(r["seed"]): {"final": r["final"], "best": r["best"], "epochs": r["epochs_scored"]} for r in done},
        }
    measured = [(n, v["score_mean"]) for n, v in ours.items() if v["score_mean"] is not None]
    best = max(measured, key=lambda nv: nv[1]) if measured else None
    metrics = sorted({r["metric"] for r in records if r.get("metric")})
    row: RowSpec = rp.row
    paper_of = {n: table.paper_of(row, n) for n in neurons}
    return {
        "label": row.label, "task": row.group, "column": row.column, "kind": row.kind, "status": rp.status,
        "score": score,
        "problem": rp.problem,
        "dataset_requested": row.dataset, "dataset_used": rp.dataset, "data_options": rp.data_options,
        "folder": rp.folder, "stand_in_note": rp.note, "data": rp.data, "missing": rp.missing,
        "paper_samples": row.paper_samples, "paper_schedule": row.paper_schedule, "train_options": row.train_options,
        "paper_by_neuron": {n: list(v) for n, v in paper_of.items() if v is not None},
        "metric": metrics[0] if len(metrics) == 1 else (metrics or (rp.data or {}).get("metric")),
        "paper": {n: list(v) for n, v in row.paper.items()},
        "paper_best": list(row.paper_best) if row.paper_best else None, "paper_best_note": row.paper_best_note,
        "ours": ours, "best_ours": {"neuron": best[0], "score_mean": best[1]} if best else None,
    }


def evaluate_check(check: CheckSpec, scores: dict[str, dict[str, float | None]]) -> dict:
    """A qualitative claim on ``scores`` (row -> neuron -> score): holds / does not hold / not measurable."""
    per_row = {}
    for label in check.rows:
        row = scores.get(label, {})
        win = [row.get(n) for n in check.winners]
        lose = [row.get(n) for n in check.losers]
        if any(v is None for v in win + lose):
            per_row[label] = "not measurable"
            continue
        ok = min(win) > max(lose) if check.strict else min(win) >= max(lose)
        per_row[label] = "holds" if ok else "does not hold"
    measured = [r for r, v in per_row.items() if v != "not measurable"]
    if not measured:
        result = "not measurable"
    elif any(per_row[r] == "does not hold" for r in measured):
        result = "does not hold"
    elif len(measured) < len(per_row):
        result = "holds where measurable"
    else:
        result = "holds"
    return {"text": check.text, "result": result, "per_row": per_row}


def _capabilities(table: TableSpec, rows: list[dict]) -> dict | None:
    if not table.capability:
        return None
    neurons = list(table.neurons)
    kinds = {r.label: r.kind for r in table.rows}
    paper_acc = {r.label: {n: v[0] for n, v in r.paper.items()} for r in table.rows}
    ours_acc = {r["label"]: {n: r["ours"].get(n, {}).get("score_mean") for n in neurons} for r in rows}
    ours = capability(ours_acc, kinds, neurons)
    paper = capability(paper_acc, kinds, neurons)
    used = set(ours.tasks["spatial"]) | set(ours.tasks["temporal"])
    paper_same = capability({t: a for t, a in paper_acc.items() if t in used}, kinds, neurons) if used else None
    return {
        "normalize": "population standard deviation per task (z-score); spatial / temporal = mean over the tasks used",
        "paper": paper.as_dict(), "paper_same_tasks": paper_same.as_dict() if paper_same else None, "ours": ours.as_dict(),
    }


def _column_label(table: TableSpec, column: str, neuron: str, neurons: list[str]) -> str:
    return column if len(neurons) == 1 else f"{column} / {neuron}"


def _grid(table: TableSpec, rows: list[dict], neurons: list[str]) -> tuple[list[str], list[dict]]:
    """The main table's columns and lines: per line (task) and column, the row and neuron behind it."""
    if not table.columns:
        grid = [
            {"task": r["label"], "rows": [r["label"]], "cells": {n: {"row": r["label"], "neuron": n} for n in neurons},
             "paper_best": r["paper_best"], "paper_best_note": r["paper_best_note"]}
            for r in rows
        ]
        return list(neurons), grid
    columns = [_column_label(table, c, n, neurons) for c in table.columns for n in neurons]
    grid: list[dict] = []
    by_task: dict[str, dict] = {}
    for r in rows:
        line = by_task.get(r["task"])
        if line is None:
            line = by_task[r["task"]] = {"task": r["task"], "rows": [], "cells": {}, "paper_best": None,
                                         "paper_best_note": ""}
            grid.append(line)
        line["rows"].append(r["label"])
        for n in neurons:
            line["cells"][_column_label(table, r["column"], n, neurons)] = {"row": r["label"], "neuron": n}
        if line["paper_best"] is None and r["paper_best"]:
            line["paper_best"], line["paper_best_note"] = r["paper_best"], r["paper_best_note"]
    used = {c for line in grid for c in line["cells"]}
    return [c for c in columns if c in used], grid


def mean_curve(curves: Sequence[Sequence[float]]) -> dict | None:
    """Mean (and sample std) per epoch over seeds' test curves, cut to the shortest; None if none."""
    curves = [list(c) for c in curves if c]
    if not curves:
        return None
    n = min(len(c) for c in curves)
    mean, std = [], []
    for i in range(n):
        m, sd = _mean_std([c[i] for c in curves])
        mean.append(round(m, 6))
        std.append(None if sd is None else round(sd, 6))
    return {"epochs": list(range(1, n + 1)), "mean": mean, "std": std, "seeds": len(curves)}


def first_epoch_at(curve: dict, fraction: float) -> int | None:
    """The first epoch at which the mean curve reaches ``fraction`` of its final value."""
    final = curve["mean"][-1]
    if final <= 0:
        return None
    for epoch, value in zip(curve["epochs"], curve["mean"]):
        if value >= fraction * final - 1e-9:
            return epoch
    return None  # pragma: no cover - the last epoch always reaches it


def late_change(curve: dict) -> tuple[int, float]:
    """``(window, max - min)`` of the mean curve over its last tenth (at least 2 epochs)."""
    window = max(2, math.ceil(len(curve["mean"]) / 10))
    tail = curve["mean"][-window:]
    return min(window, len(tail)), max(tail) - min(tail)


def _curves(plan: Plan, table: TableSpec, grid: list[dict]) -> dict:
    """Per task and column: the mean test curve over finished seeds (else over the started ones)."""
    by_label = {c.row: [] for c in plan.cells}
    for cell in plan.cells:
        by_label[cell.row].append(cell)
    out: dict[str, dict] = {}
    for line in grid:
        series = {}
        for column, where in line["cells"].items():
            cells = [c for c in by_label.get(where["row"], []) if c.neuron == where["neuron"]]
            states = [plan.state(c) for c in cells]
            finished = [[100 * h["test_accuracy"] for h in st.history] for st in states if st.status == "finished"]
            started = [[100 * h["test_accuracy"] for h in st.history] for st in states if st.history]
            curve = mean_curve(finished) or mean_curve(started)
            if curve is None:
                continue
            curve["finished"] = bool(finished)
            curve["reach"] = {f"{f:g}": first_epoch_at(curve, f) for f in table.convergence}
            window, change = late_change(curve)
            curve["late_window"], curve["late_change"] = window, round(change, 6)
            series[column] = curve
        out[line["task"]] = series
    return out


def _slowest(series: dict, key: str) -> dict | None:
    """Which column of a task needs the most epochs to reach a fraction of its final score."""
    reach = {c: v["reach"].get(key) for c, v in series.items() if v["reach"].get(key) is not None}
    if len(reach) < 2:
        return None
    most = max(reach.values())
    slowest = [c for c, e in reach.items() if e == most]
    return {"fraction": key, "epochs": reach, "slowest": slowest, "tie": len(slowest) > 1}


def _sweep(table: TableSpec, rows: list[dict], grid: list[dict]) -> dict:
    """Per task: the swept setting's value, ours and the paper's per column."""
    by_label = {r["label"]: r for r in rows}
    out: dict[str, dict] = {}
    for line in grid:
        points = []
        for column, where in line["cells"].items():
            r = by_label[where["row"]]
            value = table.sweep_value(table.row(r["label"]))
            o = r["ours"].get(where["neuron"], {})
            paper = r["paper_by_neuron"].get(where["neuron"])
            points.append({"column": column, "x": value, "mean": o.get("score_mean"), "std": o.get("score_std"),
                           "seeds": o.get("seeds_finished", 0), "paper": paper, "status": r["status"]})
        points.sort(key=lambda p: p["x"])
        means = [p["mean"] for p in points if p["mean"] is not None]
        out[line["task"]] = {
            "points": points, "paper_range": list(line["paper_best"]) if line["paper_best"] else None,
            "paper_range_note": line["paper_best_note"],
            "spread": round(max(means) - min(means), 6) if len(means) > 1 else None,
        }
    return out


def build_report(plan: Plan, run: RunSummary | None = None) -> dict:
    """The report as a JSON-ready dict (see the module docstring)."""
    table = plan.table
    now = time.time()
    records = [cell_record(plan, c, now) for c in plan.cells]
    neurons = list(plan.neurons)
    for r in records:  # runs found on disk of neurons not asked for get columns too
        if r["neuron"] not in neurons:
            neurons.append(r["neuron"])
    rows = [_row_results(table, rp, [r for r in records if r["row"] == rp.row.label], neurons) for rp in plan.rows]
    columns, grid = _grid(table, rows, neurons)
    by_label = {r["label"]: r for r in rows}
    if table.columns:  # checks name columns: scored with the first neuron
        ours_scores: dict[str, dict] = {}
        for r in rows:
            ours_scores.setdefault(r["task"], {})[r["column"]] = r["ours"][neurons[0]]["score_mean"]
        paper_scores: dict[str, dict] = {}
        for r in table.rows:
            value = r.paper.get(r.column)
            if value is not None:
                paper_scores.setdefault(r.group, {})[r.column] = value[0]
    else:
        ours_scores = {r["label"]: {n: v["score_mean"] for n, v in r["ours"].items()} for r in rows}
        paper_scores = {r.label: {n: v[0] for n, v in r.paper.items()} for r in table.rows}
    curves = _curves(plan, table, grid) if table.curves or any(c.convergence for c in table.checks) else None
    checks = []
    for check in table.checks:
        if check.convergence is None:
            ours = evaluate_check(check, ours_scores)
            ours["paper_result"] = evaluate_check(check, paper_scores)["result"]
        else:
            key = f"{check.convergence:g}"
            reach = {}
            for line in grid:
                series = (curves or {}).get(line["task"], {})
                reach[line["task"]] = {}
                for c, where in line["cells"].items():
                    if table.columns and where["neuron"] != neurons[0]:
                        continue
                    v = series.get(c)
                    name = by_label[where["row"]]["column"] or c
                    reach[line["task"]][name] = v["reach"].get(key) if v and v.get("finished") else None
            ours = evaluate_check(check, reach)
            ours["measure"] = f"first epoch at {100 * check.convergence:g} % of the final score"
            ours["paper_result"] = "stated (no figures)"
        checks.append(ours)
    doc = {
        "table": table.name, "title": table.title, "paper_source": table.source, "notes": list(table.notes),
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(now)), "units": "percent",
        "ours": _score_text(rows) + ", mean ± " + STD_NOTE + "; best = mean over seeds of each seed's best epoch",
        "out_root": str(plan.out_root), "neurons": neurons,
        "column_axis": "table" if table.columns else "neuron", "columns": columns, "grid": grid,
        "paper_schedule": table.paper_schedule, "train_options": table.train_options, "paper_epoch": table.paper_epoch,
        "asked": {"seeds": plan.seeds, "epochs": plan.epochs, "lr_step": plan.lr_step, "overrides": plan.overrides,
                  "data_root": plan.data_root,
                  "constant_lr": bool(plan.rows) and all(
                      constant_lr(with_overrides(table.row_options(rp.row), plan.overrides)) for rp in plan.rows)},
        "rows": rows, "cells": records, "checks": checks, "capability": _capabilities(table, rows),
    }
    if curves is not None:
        doc["curves"] = curves
        doc["convergence"] = {
            task: [x for x in (_slowest(series, f"{f:g}") for f in table.convergence) if x] for task, series in curves.items()
        }
    if table.sweep:
        doc["sweep"] = {"option": table.sweep, "tasks": _sweep(table, rows, grid)}
    if run is not None:
        doc["run"] = {
            "interrupted": run.interrupted, "finished_now": len(run.finished), "already_finished": len(run.already_finished),
            "failed": [{"cell": c.label, "error": e} for c, e in run.failed],
            "skipped": [{"cell": c.label, "reason": e} for c, e in run.skipped], "not_run": len(run.not_run),
        }
    return doc


# ----------------------------------------------------------------------------------------------
# markdown
# ----------------------------------------------------------------------------------------------

def _pm(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "—"
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


def _schedule_text(s: dict) -> str:
    constant = s.get("schedule", "step") == "step" and s.get("lr_gamma") == 1.0
    lr = "constant lr" if constant else (f"lr step {s.get('lr_step')}" if s.get("schedule", "step") == "step"
                                         else f"{s.get('schedule')} lr")
    # a run scored after fewer (or more) epochs than its own setting says: both, e.g. "13 of 30 ep"
    epochs = f"{s['epochs_scored']} of {s.get('epochs')} ep" if "epochs_scored" in s else f"{s.get('epochs')} ep"
    parts = [epochs, lr, f"T {s.get('steps')}", f"batch {s.get('batch_size')}"]
    if s.get("model") not in (None, "mdn"):
        topology = (s.get("model_options") or {}).get("topology")
        parts.append(f"model {s['model']}" + (f" ({topology})" if topology else ""))
    elif s.get("hidden") is not None:
        parts.append(f"hidden {s['hidden']}")
    if s.get("rule") not in (None, "bptt") or s.get("model") not in (None, "mdn"):
        parts.append(f"rule {s.get('rule', 'bptt')}")
    if s.get("lr") is not None and s.get("model") not in (None, "mdn"):
        parts.append(f"lr {s['lr']:g}")
    if s.get("encoder") is not None and s.get("alpha") not in (None, 1.0):
        parts.append(f"{s['encoder']} alpha {s['alpha']:g}")
    if s.get("input_view") not in (None, "native"):
        parts.append(f"input {s['input_view']}")
    return ", ".join(parts)


def _ours_cell(row: dict, neuron: str) -> str:
    if row["status"] == "no data":
        return "no data"
    if row["status"] == "unsupported" and not row["ours"][neuron]["cells"]:
        return "cannot run"
    o = row["ours"][neuron]
    if not o["seeds_finished"]:
        return f"— (0/{o['cells']})" if o["cells"] else "not run"
    return f"{_pm(o['score_mean'], o['score_std'])} ({o['seeds_finished']})"


def _label(row: dict, text: str | None = None) -> str:
    text = row["label"] if text is None else text
    if row["dataset_used"] and row["dataset_used"] != row["dataset_requested"]:
        text += f" [{row['dataset_used']}]"
    if row.get("metric") and row["metric"] != "accuracy":
        text += f" ({row['metric'] if isinstance(row['metric'], str) else ', '.join(row['metric'])})"
    return text


def _line_label(line: dict, by_label: dict[str, dict]) -> str:
    """A main-table line's name: the task, with the data set used when a stand-in replaced it."""
    rows = [by_label[label] for label in line["rows"]]
    used = next((r for r in rows if r["dataset_used"]), rows[0])
    return _label(used, line["task"])


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "task"


def _score_text(rows: list[dict]) -> str:
    """What "ours" is: one :data:`SCORES` text, or one per group of rows when they differ."""
    used: dict[str, list[str]] = {}
    for r in rows:
        used.setdefault(r.get("score", "final"), []).append(r["label"])
    if len(used) == 1:
        return SCORES[next(iter(used))]
    return "; ".join(f"{SCORES[s]} for {', '.join(labels)}" for s, labels in used.items())


def render_markdown(doc: dict, chart: str | None = None) -> str:
    """Markdown text of a report dict from :func:`build_report`."""
    neurons = doc["neurons"]
    rows = doc["rows"]
    by_label = {r["label"]: r for r in rows}
    by_columns = doc.get("column_axis") == "table"
    columns = doc.get("columns", neurons)
    grid = doc.get("grid") or [
        {"task": r["label"], "rows": [r["label"]], "cells": {n: {"row": r["label"], "neuron": n} for n in neurons},
         "paper_best": r["paper_best"], "paper_best_note": r["paper_best_note"]} for r in rows
    ]
    has_best = any(line["paper_best"] for line in grid)
    out = [f"# {doc['title']}: paper vs ours", ""]
    out.append(f"*Paper*: {doc['paper_source']}. These figures are the paper's, copied from it.  ")
    out.append(f"*Ours*: {_score_text(rows)} (%), mean ± sample standard deviation (n − 1) over the finished "
               "seeds, their number in brackets; — (0/2): none of the 2 started seeds has finished yet; not run: no "
               "run folder yet.  ")
    asked = doc["asked"]
    if asked["epochs"] is not None:
        if asked.get("constant_lr"):
            lr = "constant learning rate"
        elif asked["lr_step"] is None:
            lr = "each run's own lr step"  # a report of the runs found, without --lr-step
        else:
            lr = f"lr step {asked['lr_step']}"
        out.append(f"Asked for: {len(asked['seeds'] or []) or 'the found'} seed(s), {asked['epochs']} epochs, "
                   f"{lr}" + (f", overrides {asked['overrides']}" if asked["overrides"] else "") + ".  ")
    out.append(f"Written {doc['generated']} from the run folders under `{doc['out_root']}/{doc['table']}`.")
    out.append("")
    if doc.get("paper_schedule"):
        out.append(f"*Paper's training*: {doc['paper_schedule']}.  ")
    if doc.get("train_options"):
        out.append("*Every cell*: " + ", ".join(f"{k}={v}" for k, v in doc["train_options"].items()) + ".  ")
    if doc.get("paper_schedule") or doc.get("train_options"):
        out.append("")

    if by_columns:
        best_head = ["paper (not per column)", "ours: best column"]
    else:
        best_head = ["paper (neuron not stated)", "ours: best neuron"]
    header = ["task", ""] + columns + (best_head if has_best else [])
    out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for line in grid:
        paper, ours, best = [], [], None
        for c in columns:
            where = line["cells"].get(c)
            if where is None:  # this task has no run in this column
                paper.append("")
                ours.append("")
                continue
            r = by_label[where["row"]]
            p = r["paper_by_neuron"].get(where["neuron"]) if "paper_by_neuron" in r else r["paper"].get(where["neuron"])
            paper.append(_pm(*p) if p else "—")
            ours.append(_ours_cell(r, where["neuron"]))
            mean = r["ours"][where["neuron"]]["score_mean"]
            if mean is not None and (best is None or mean > best[1]):
                best = (c, mean)
        extra_p, extra_o = [], []
        if has_best:
            extra_p = [_pm(*line["paper_best"]) if line["paper_best"] else "—", ""]
            extra_o = ["", f"{best[1]:.2f} ({best[0]})" if best else "—"]
        out.append("| " + " | ".join([_line_label(line, by_label), "paper"] + paper + extra_p) + " |")
        out.append("| " + " | ".join(["", "ours"] + ours + extra_o) + " |")
    out.append("")
    if has_best:
        for line in grid:
            if line["paper_best_note"]:
                out.append(f"* {line['task']}, paper: {line['paper_best_note']}.")
        out.append("")

    detail = []
    for r in rows:
        if not any(o["cells"] for o in r["ours"].values()):
            continue
        for n in neurons:
            o = r["ours"][n]
            p = r["paper_by_neuron"].get(n) if "paper_by_neuron" in r else r["paper"].get(n)
            if not o["cells"] and not p:
                continue
            delta = f"{o['score_mean'] - p[0]:+.2f}" if p and o["score_mean"] is not None else "—"
            sched = "; ".join(_schedule_text(s) for s in o["schedules"]) or "—"
            paper_sched = [r.get("paper_schedule") or "—"] if by_columns else []
            detail.append("| " + " | ".join(
                [_label(r), n, _pm(*p) if p else "—"] + paper_sched + [_pm(o["score_mean"], o["score_std"]), delta,
                 _pm(o["best_mean"], None), f"{o['seeds_finished']} of {o['cells']}", sched]) + " |")
    if detail:
        if by_columns:
            out += ["## Per row", "",
                    "| row | neuron | paper | paper's training | ours | ours − paper | ours best epoch | seeds finished "
                    "| schedule (from the runs) |", "|---|---|---|---|---|---|---|---|---|"] + detail + [""]
        else:
            out += ["## Per neuron", "",
                    "| task | neuron | paper | ours | ours − paper | ours best epoch | seeds finished | schedule (from the runs) |",
                    "|---|---|---|---|---|---|---|---|"] + detail + [""]

    out += ["## Data used", "", "| task | data set | ours train / test | paper train / test | source |", "|---|---|---|---|---|"]
    seen: set[str] = set()
    for r in rows:
        name = r["task"] if by_columns else r["label"]
        key = json.dumps([name, r["status"], r["dataset_used"], r["data_options"]], sort_keys=True, default=str)
        if key in seen:  # the rows of one task on the same data: one line
            continue
        seen.add(key)
        if r["status"] == "no data":
            out.append(f"| {name} | no data (see below) | — | {r['paper_samples'] or '—'} | — |")
            continue
        d = r["data"] or {}
        used = r["dataset_used"] or "—"
        if r["data_options"]:
            used += " (" + ", ".join(f"{k}={v}" for k, v in r["data_options"].items()) + ")"
        if r["stand_in_note"]:
            used += f": {r['stand_in_note']}"
        counts = f"{d['train']:,} / {d['test']:,}" if "train" in d else "not recorded (runs not started by the runner)"
        out.append(f"| {name} | {used} | {counts} | {r['paper_samples'] or '—'} | {d.get('source') or '—'} |")
    out.append("")

    missing = [r for r in rows if r["status"] != "ok"]
    if missing:
        out += ["## Rows without results: no data or cannot run", ""]
        shown: dict[str, list[str]] = {}  # loader messages -> headings (one message per data set, not per row)
        for r in missing:
            name = r["task"] if by_columns else r["label"]  # a table with columns: one heading per task
            if r["problem"]:
                out += [f"### {r['label']}: cannot run", "", r["problem"], ""]
            if r["status"] == "no data" or r["missing"]:
                tried = json.dumps(r["missing"], sort_keys=True, default=str)
                if tried in shown:
                    if name not in shown[tried]:
                        shown[tried].append(name)
                    continue
                shown[tried] = [name]
                out += [f"### {name}: no data", ""]
                for m in r["missing"]:
                    out += [f"Tried `{m['dataset']}`:", "", "```", m["error"], "```", ""]
        for names in shown.values():
            if len(names) > 1:
                out.append(f"* {'; '.join(names[1:])}: the same data as {names[0]}, no data either.")
        if any(len(v) > 1 for v in shown.values()):
            out.append("")
    said: set[str] = set()
    for r in rows:
        if r["status"] == "ok" and r["missing"]:
            names = ", ".join(m["dataset"] for m in r["missing"])
            line = (f"{names} not available, so {r['dataset_used']} was used "
                    f"(first line of the loader's message: {r['missing'][0]['error'].splitlines()[0]})")
            name = r["task"] if by_columns else r["label"]
            if (name, line) not in said:
                said.add((name, line))
                out.append(f"* {name}: {line}")
    if said:
        out.append("")

    cells = doc["cells"]
    unfinished = [c for c in cells if c["status"] in ("partial", "running")]
    not_started = [c for c in cells if c["status"] == "new" and not c["epochs_done"]]
    failed = [c for c in cells if c["status"] == "failed"]
    other_settings = [c for c in cells if c["status"] == "conflict"]
    if unfinished or not_started:
        out += ["## Unfinished cells", ""]
        if unfinished:
            out += ["| cell | epochs | last test score | state |", "|---|---|---|---|"]
            for c in unfinished:
                state = c.get("running") or "stopped; resumes on the next run"
                if "last_update_s" in c:
                    state += f", last epoch {c['last_update_s'] / 60:.0f} min ago"
                last = f"{c['final']:.2f}" if "final" in c else "—"
                when = state
                out.append(f"| `{c['run_dir']}` | {c['epochs_done']} of {c['epochs']} | {last} | {when} |")
            out.append("")
        if not_started:
            out += [f"{len(not_started)} cell(s) not started yet.", ""]
    # cells that failed, and cells whose run folder was made with other settings than those asked (not scored)
    for title, column, group in (("Failed cells", "error", failed),
                                 ("Cells run with other settings (not scored)", "settings", other_settings)):
        if group:
            out += [f"## {title}", "", f"| cell | {column} |", "|---|---|"]
            for c in group:
                err = (c.get("error") or "").replace("\n", " ").replace("|", "\\|")
                out.append(f"| `{c['run_dir']}` | {err} |")
            out.append("")
    run = doc.get("run")
    if run and run["interrupted"]:
        out += ["**The run was interrupted**; run the same command again to continue.", ""]

    if doc["checks"]:
        out += ["## Qualitative claims of the paper", "", "| claim | on our numbers | per task (ours) | on the paper's numbers |",
                "|---|---|---|---|"]
        for c in doc["checks"]:
            per = "; ".join(f"{k}: {v}" for k, v in c["per_row"].items())
            text = c["text"] + (f" (measured: {c['measure']})" if c.get("measure") else "")
            out.append(f"| {text} | **{c['result']}** | {per} | {c['paper_result']} |")
        out.append("")

    if doc.get("curves") is not None:
        out += _curves_markdown(doc)
    if doc.get("sweep") is not None:
        out += _sweep_markdown(doc)

    cap = doc.get("capability")
    if cap:
        out += ["## Capability (MDN Eq. 7)", "",
                "Per task, the five neuron types' scores are z-scored (population standard deviation); a type's "
                "spatial (temporal) capability is the mean of its z-scores over the spatial (temporal) tasks. "
                "A task counts only when all five types have a finished score.", ""]
        series = [("paper", cap["paper"])]
        if cap["paper_same_tasks"] is not None and cap["paper_same_tasks"]["tasks"] != cap["paper"]["tasks"]:
            series.append(("paper, our tasks", cap["paper_same_tasks"]))
        series.append(("ours", cap["ours"]))
        head = ["neuron"] + [f"{name} {kind}" for name, _ in series for kind in ("spatial", "temporal")]
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for n in cap["paper"]["neurons"]:
            vals = [s[k][n] for _, s in series for k in ("spatial", "temporal")]
            out.append("| " + " | ".join([n] + ["—" if v is None else f"{v:+.2f}" for v in vals]) + " |")
        out.append("")
        for name, s in series:
            out.append(f"* {name}: spatial tasks {', '.join(s['tasks']['spatial']) or 'none'}; "
                       f"temporal tasks {', '.join(s['tasks']['temporal']) or 'none'}")
        if cap["ours"]["skipped"]:
            out.append("* not used for ours: " + "; ".join(f"{t} ({why})" for t, why in cap["ours"]["skipped"].items()))
        out.append("")
        if chart:
            out += [f"![capability]({chart})", ""]

    notes = doc["notes"]
    if notes:
        out += ["## Notes", ""] + [f"* {n}" for n in notes] + [""]
    return "\n".join(out)


def _curves_markdown(doc: dict) -> list[str]:
    figures = (doc.get("figures") or {}).get("curves", {})
    fractions = sorted({k for series in doc["curves"].values() for v in series.values() for k in v["reach"]}, key=float)
    out = ["## Test curves and convergence", "",
           "Mean test score per epoch over the finished seeds of each column (over the started seeds, marked "
           "*unfinished*, while none has finished). *Reaches x %*: the first epoch at which the mean curve reaches "
           "x % of its own final value; *late change*: max − min of the mean curve over its last tenth of epochs "
           "(at least 2), in percentage points.", ""]
    head = ["task", "column", "seeds", "epochs", "final", "best"] + [f"reaches {100 * float(f):g} %" for f in fractions]
    head += ["late change"]
    rows_md = []
    for task, series in doc["curves"].items():
        for column, c in series.items():
            reach = [str(c["reach"].get(f)) if c["reach"].get(f) is not None else "—" for f in fractions]
            seeds = f"{c['seeds']}" + ("" if c["finished"] else " (unfinished)")
            rows_md.append("| " + " | ".join(
                [task, column, seeds, str(c["epochs"][-1]), f"{c['mean'][-1]:.2f}", f"{max(c['mean']):.2f}"] + reach
                + [f"{c['late_change']:.2f} over {c['late_window']} ep"]) + " |")
    if rows_md:
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + rows_md + [""]
    for task, series in doc["curves"].items():
        if not series:
            out.append(f"* {task}: no curves yet.")
            continue
        parts = []
        for item in doc.get("convergence", {}).get(task, []):
            epochs = ", ".join(f"{c} {e}" for c, e in item["epochs"].items())
            pct = f"{100 * float(item['fraction']):g} %"
            if item["tie"]:
                parts.append(f"at {pct} of the final score no single slowest column: {' and '.join(item['slowest'])} "
                             f"tie at epoch {item['epochs'][item['slowest'][0]]} ({epochs})")
            else:
                parts.append(f"slowest to reach {pct} of its final score: **{item['slowest'][0]}** ({epochs})")
        finished = {c: v for c, v in series.items() if v["finished"]}
        if finished:
            moving = [c for c, v in finished.items() if v["late_change"] >= SETTLED_POINTS]
            settled = [c for c in finished if c not in moving]
            text = ("all of " if not moving else "") + (", ".join(settled) or "none")
            text += f"; still moving: {', '.join(moving)}" if moving else ""
            parts.append(f"settled (late change < {SETTLED_POINTS:g} point): {text}")
        unfinished = [c for c, v in series.items() if not v["finished"]]
        if unfinished:
            parts.append(f"unfinished: {', '.join(unfinished)}")
        out.append(f"* {task}: " + ("; ".join(parts) if parts else "one curve only, nothing to compare") + ".")
    out.append("")
    for task in doc["curves"]:
        if task in figures:
            out += [f"![{task}]({figures[task]})", ""]
    return out


def _sweep_markdown(doc: dict) -> list[str]:
    option = doc["sweep"]["option"]
    out = [f"## Score against {option}", ""]
    figure = (doc.get("figures") or {}).get("sweep")
    out += ["| task | " + option + " | paper | ours final | seeds finished |", "|---|---|---|---|---|"]
    for task, t in doc["sweep"]["tasks"].items():
        for p in t["points"]:
            ours = "no data" if p["status"] == "no data" else _pm(p["mean"], p["std"])
            out.append(f"| {task} | {p['x']} | {_pm(*p['paper']) if p['paper'] else '—'} | {ours} | {p['seeds']} |")
    out.append("")
    for task, t in doc["sweep"]["tasks"].items():
        parts = []
        if t["paper_range"]:
            parts.append(f"paper {t['paper_range_note'] or _pm(*t['paper_range'])}")
        if t["spread"] is not None:
            parts.append(f"ours: max − min over {option} = {t['spread']:.2f} points")
        if parts:
            out.append(f"* {task}: " + "; ".join(parts) + ".")
    out.append("")
    if figure:
        out += [f"![score against {option}]({figure})", ""]
    return out


def write_report(
    plan: Plan,
    report_dir: str | Path | None = None,
    results_dir: str | Path | None = None,
    run: RunSummary | None = None,
    chart: bool = True,
) -> dict[str, Path]:
    """Write ``<table>.md``, ``<table>.json`` and the table's figures (capability chart,
    ``<table>-curves-<task>.png`` per task, ``<table>-sweep.png``) into ``report_dir`` (default:
    the plan's out_root); copy them into ``results_dir`` too when given."""
    report_dir = Path(report_dir) if report_dir is not None else plan.out_root
    report_dir.mkdir(parents=True, exist_ok=True)
    doc = build_report(plan, run)
    name = plan.table.name
    paths: dict[str, Path] = {}
    chart_name = None
    if chart and doc["capability"]:
        chart_name = f"{name}-capability.png"
        try:
            paths["chart"] = _chart(doc, report_dir / chart_name)
            doc["chart"] = chart_name
        except ImportError as exc:  # matplotlib missing: the tables still get written
            doc["chart_error"] = str(exc)
            chart_name = None
    if chart and (doc.get("curves") or doc.get("sweep")):
        try:
            paths.update(_figures(doc, report_dir, name))
        except ImportError as exc:
            doc["chart_error"] = str(exc)
    paths["json"] = report_dir / f"{name}.json"
    paths["json"].write_text(json.dumps(doc, indent=2) + "\n")
    paths["markdown"] = report_dir / f"{name}.md"
    paths["markdown"].write_text(render_markdown(doc, chart_name))
    if results_dir is not None:
        results_dir = Path(results_dir)
        results_dir.mkdir(parents=True, exist_ok=True)
        for key, path in list(paths.items()):
            if path.resolve() != (results_dir / path.name).resolve():
                shutil.copy2(path, results_dir / path.name)
    return paths


def _figures(doc: dict, report_dir: Path, name: str) -> dict[str, Path]:
    """The curves (one PNG per task with a curve) and sweep figures; their names go into ``doc["figures"]``."""
    from ..plots.paper_compare import plot_curve_comparison, plot_sweep

    paths: dict[str, Path] = {}
    figures: dict = {}
    by_label = {r["label"]: r for r in doc["rows"]}
    first = min((float(f) for series in (doc.get("curves") or {}).values() for v in series.values()
                 for f in v["reach"]), default=None)
    for task, series in (doc.get("curves") or {}).items():
        if not series:
            continue
        line = next(line for line in doc["grid"] if line["task"] == task)
        paper = {}
        for column, where in line["cells"].items():
            r = by_label[where["row"]]
            value = r["paper_by_neuron"].get(where["neuron"])
            if value:
                paper[column] = value[0]
        marks = {c: v["reach"].get(f"{first:g}") for c, v in series.items()} if first is not None else None
        file = f"{name}-curves-{_slug(task)}.png"
        paths[f"curves:{task}"] = plot_curve_comparison(
            series, report_dir / file, f"{doc['title'].split(':')[0]}: {task}", paper=paper,
            paper_epoch=doc.get("paper_epoch"),
            marks=marks, mark_label=f"first epoch at {100 * first:g} % of final" if first is not None else "",
        )
        figures.setdefault("curves", {})[task] = file
    if doc.get("sweep"):
        panels = {}
        for task, t in doc["sweep"]["tasks"].items():
            xs = [p["x"] for p in t["points"]]
            band = None
            if t["paper_range"]:
                band = (t["paper_range"][0], t["paper_range"][1], min(xs), max(xs))
            panels[task] = {
                "x": xs, "mean": [p["mean"] for p in t["points"]], "std": [p["std"] for p in t["points"]],
                "paper": [(p["x"], p["paper"][0], p["paper"][1]) for p in t["points"] if p["paper"]],
                "paper_range": band,
            }
        file = f"{name}-sweep.png"
        option = doc["sweep"]["option"]
        paths["sweep"] = plot_sweep(panels, report_dir / file, f"{doc['title'].split(':')[0]}: score against {option}",
                                    xlabel="T (time steps)" if option == "steps" else option)
        figures["sweep"] = file
    doc["figures"] = figures
    return paths


def _chart(doc: dict, out: Path) -> Path:
    from ..plots.capability import plot_capability

    cap = doc["capability"]

    def load(d: dict) -> Capability:
        return Capability(**d)

    series = {"paper (all tasks)": load(cap["paper"])}
    if cap["paper_same_tasks"] is not None and cap["paper_same_tasks"]["tasks"] != cap["paper"]["tasks"]:
        series["paper (our tasks)"] = load(cap["paper_same_tasks"])
    series["ours"] = load(cap["ours"])
    return plot_capability(series, out, title=f"{doc['title']}: capability (Eq. 7)")


__all__ = ["build_report", "render_markdown", "write_report", "evaluate_check", "cell_record", "STD_NOTE",
           "mean_curve", "first_epoch_at", "late_change"]
