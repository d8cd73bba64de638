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
import statistics
import time
from pathlib import Path
from typing import Sequence

from ..analysis.capability import Capability, capability
from ..runfiles import write_text_atomic
from .cells import Cell
from .markdown import render_markdown, score_text
from .plan import Plan, RowPlan, lr_schedule_kind
from .runner import RunSummary
from .tables import CheckSpec, RowSpec, TableSpec

STD_NOTE = "sample standard deviation (n - 1) over the finished seeds"
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
        rec.update(_time_left(history, state.target))
    if state.error:
        rec["error"] = state.error
    if state.running:
        rec["running"] = state.running
    return rec


#: the pace of an unfinished cell is the median wall time of its last this many epochs
PACE_EPOCHS = 3


def _time_left(history: list[dict], target: int | None) -> dict:
    """``epoch_seconds`` (the median wall time of the last :data:`PACE_EPOCHS` epochs, evaluation and any
    pauses included) and ``left_s`` (that times the epochs still to train, the one under way counted whole)
    of a cell with epochs to go; empty when it has none or its records hold no times."""
    if target is None or len(history) >= target:
        return {}
    pace = [h["seconds"] for h in history[-PACE_EPOCHS:] if isinstance(h.get("seconds"), (int, float))]
    if not pace:
        return {}
    per = statistics.median(pace)
    return {"epoch_seconds": round(per, 1), "left_s": round(per * (target - len(history)))}


#: a finished seed "stayed at chance" when even its best test score lies within this many binomial standard
#: errors of chance on the test set: the net never told the classes apart (a dead or saturated net)
CHANCE_SE = 2.0


def chance_band(data: dict | None, metrics: Sequence[str] = ()) -> dict | None:
    """Chance level of a classification row and the highest score still counted as chance, in percent:
    ``level = 100 p`` with ``p = 1 / C`` (C classes, uniform guessing) and
    ``bound = level + CHANCE_SE * 100 * sqrt(p (1 - p) / N)`` (N test samples). ``None`` for a row scored
    by another metric (``metrics``: the non-accuracy metric names its runs recorded) or whose data summary
    records no class count or test size."""
    if not data or metrics or data.get("metric") not in (None, "accuracy"):
        return None
    classes, n = data.get("classes"), data.get("test")
    if not isinstance(classes, int) or classes < 2 or not isinstance(n, int) or n < 1:
        return None
    p = 1.0 / classes
    return {"level": round(100 * p, 4), "bound": round(100 * (p + CHANCE_SE * math.sqrt(p * (1 - p) / n)), 4),
            "classes": classes, "test": n, "standard_errors": CHANCE_SE}


def _row_results(table: TableSpec, rp: RowPlan, records: list[dict], neurons: list[str]) -> dict:
    ours = {}
    score = table.score_of(rp.row)
    metrics = sorted({r["metric"] for r in records if r.get("metric")})
    chance = chance_band(rp.data, metrics)
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
            "at_chance": sorted(r["seed"] for r in done if chance is not None and r["best"] <= chance["bound"]),
        }
    measured = [(n, v["score_mean"]) for n, v in ours.items() if v["score_mean"] is not None]
    best = max(measured, key=lambda nv: nv[1]) if measured else None
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
        "ours": ours, "best_ours": {"neuron": best[0], "score_mean": best[1]} if best else None, "chance": chance,
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
        "ours": score_text(rows) + ", mean ± " + STD_NOTE + "; best = mean over seeds of each seed's best epoch",
        "out_root": str(plan.out_root), "neurons": neurons,
        "column_axis": "table" if table.columns else "neuron", "columns": columns, "grid": grid,
        "paper_schedule": table.paper_schedule, "train_options": table.train_options, "paper_epoch": table.paper_epoch,
        "asked": {"seeds": plan.seeds, "epochs": plan.epochs, "lr_step": plan.lr_step, "overrides": plan.overrides,
                  "data_root": plan.data_root,
                  "lr_schedule": lr_schedule_kind(plan)},
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

def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "task"


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
    write_text_atomic(paths["json"], json.dumps(doc, indent=2) + "\n")  # read whole while cells still run
    paths["markdown"] = report_dir / f"{name}.md"
    write_text_atomic(paths["markdown"], render_markdown(doc, chart_name))
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
