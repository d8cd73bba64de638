"""Paper-vs-ours report of a table: ``<table>.md`` and ``<table>.json``.

Everything is read back from the cells' run directories (``config.json``, ``metrics.jsonl``,
``error.json``), so the report can be written at any time, also while cells are running.
"Ours" is the test score of each finished seed's **final** epoch, as mean ± **sample** standard
deviation (n - 1) over the finished seeds, plus the mean over seeds of each seed's best epoch.
Scores are in percent, like the paper's.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Sequence

from ..analysis.capability import Capability, capability
from .cells import Cell
from .plan import Plan, RowPlan
from .runner import RunSummary
from .tables import CheckSpec, RowSpec, TableSpec

STD_NOTE = "sample standard deviation (n - 1) over the finished seeds"
SCHEDULE_KEYS = ("epochs", "lr_step", "lr_gamma", "steps", "batch_size", "hidden", "lr", "lr_dynamics", "encoder", "input_view")


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
    if state.config:
        rec["schedule"] = {k: state.config.get(k) for k in SCHEDULE_KEYS if k in state.config}
    if state.history:
        scores = [100 * h["test_accuracy"] for h in state.history]
        rec.update(final=round(scores[-1], 6), best=round(max(scores), 6), best_epoch=1 + scores.index(max(scores)))
        metric = state.history[-1].get("metric")
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


def _row_results(rp: RowPlan, records: list[dict], neurons: list[str]) -> dict:
    ours = {}
    for neuron in neurons:
        mine = [r for r in records if r["neuron"] == neuron]
        done = [r for r in mine if r["status"] == "finished"]
        final_mean, final_std = _mean_std([r["final"] for r in done])
        best_mean, _ = _mean_std([r["best"] for r in done])
        schedules = []
        for r in mine:
            if r.get("schedule") and r["schedule"] not in schedules:
                schedules.append(r["schedule"])
        ours[neuron] = {
            "final_mean": final_mean, "final_std": final_std, "best_mean": best_mean,
            "seeds_finished": len(done), "cells": len(mine),
            "seeds": sorted(r["seed"] for r in done), "schedules": schedules,
            "per_seed": {str(r["seed"]): {"final": r["final"], "best": r["best"], "epochs": r["epochs_done"]} for r in done},
        }
    measured = [(n, v["final_mean"]) for n, v in ours.items() if v["final_mean"] is not None]
    best = max(measured, key=lambda nv: nv[1]) if measured else None
    metrics = sorted({r["metric"] for r in records if r.get("metric")})
    row: RowSpec = rp.row
    return {
        "label": row.label, "kind": row.kind, "status": rp.status, "problem": rp.problem,
        "dataset_requested": row.dataset, "dataset_used": rp.dataset, "data_options": rp.data_options,
        "folder": rp.folder, "stand_in_note": rp.note, "data": rp.data, "missing": rp.missing,
        "paper_samples": row.paper_samples, "train_options": row.train_options,
        "metric": metrics[0] if len(metrics) == 1 else (metrics or (rp.data or {}).get("metric")),
        "paper": {n: list(v) for n, v in row.paper.items()},
        "paper_best": list(row.paper_best) if row.paper_best else None, "paper_best_note": row.paper_best_note,
        "ours": ours, "best_ours": {"neuron": best[0], "final_mean": best[1]} if best else None,
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
    ours_acc = {r["label"]: {n: r["ours"].get(n, {}).get("final_mean") for n in neurons} for r in rows}
    ours = capability(ours_acc, kinds, neurons)
    paper = capability(paper_acc, kinds, neurons)
    used = set(ours.tasks["spatial"]) | set(ours.tasks["temporal"])
    paper_same = capability({t: a for t, a in paper_acc.items() if t in used}, kinds, neurons) if used else None
    return {
        "normalize": "population standard deviation per task (z-score); spatial / temporal = mean over the tasks used",
        "paper": paper.as_dict(), "paper_same_tasks": paper_same.as_dict() if paper_same else None, "ours": ours.as_dict(),
    }


def build_report(plan: Plan, run: RunSummary | None = None) -> dict:
    """The report as a JSON-ready dict (see the module docstring)."""
    table = plan.table
    now = time.time()
    records = [cell_record(plan, c, now) for c in plan.cells]
    neurons = list(plan.neurons)
    for r in records:  # runs found on disk of neurons not asked for get columns too
        if r["neuron"] not in neurons:
            neurons.append(r["neuron"])
    rows = [_row_results(rp, [r for r in records if r["row"] == rp.row.label], neurons) for rp in plan.rows]
    ours_scores = {r["label"]: {n: v["final_mean"] for n, v in r["ours"].items()} for r in rows}
    paper_scores = {r.label: {n: v[0] for n, v in r.paper.items()} for r in table.rows}
    checks = []
    for check in table.checks:
        ours = evaluate_check(check, ours_scores)
        ours["paper_result"] = evaluate_check(check, paper_scores)["result"]
        checks.append(ours)
    doc = {
        "table": table.name, "title": table.title, "paper_source": table.source, "notes": list(table.notes),
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(now)), "units": "percent",
        "ours": "final-epoch test score, mean ± " + STD_NOTE + "; best = mean over seeds of each seed's best epoch",
        "out_root": str(plan.out_root), "neurons": neurons,
        "asked": {"seeds": plan.seeds, "epochs": plan.epochs, "lr_step": plan.lr_step, "overrides": plan.overrides,
                  "data_root": plan.data_root},
        "rows": rows, "cells": records, "checks": checks, "capability": _capabilities(table, rows),
    }
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
    parts = [f"{s.get('epochs')} ep", f"lr step {s.get('lr_step')}", f"T {s.get('steps')}", f"batch {s.get('batch_size')}"]
    if s.get("hidden") is not None:
        parts.append(f"hidden {s['hidden']}")
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
    return f"{_pm(o['final_mean'], o['final_std'])} ({o['seeds_finished']})"


def _label(row: dict) -> str:
    text = row["label"]
    if row["dataset_used"] and row["dataset_used"] != row["dataset_requested"]:
        text += f" [{row['dataset_used']}]"
    if row.get("metric") and row["metric"] != "accuracy":
        text += f" ({row['metric'] if isinstance(row['metric'], str) else ', '.join(row['metric'])})"
    return text


def render_markdown(doc: dict, chart: str | None = None) -> str:
    """Markdown text of a report dict from :func:`build_report`."""
    neurons = doc["neurons"]
    rows = doc["rows"]
    has_best = any(r["paper_best"] for r in rows)
    out = [f"# {doc['title']}: paper vs ours", ""]
    out.append(f"*Paper*: {doc['paper_source']}. These figures are the paper's, copied from it.  ")
    out.append(
        "*Ours*: test score (%) of the final epoch, mean ± sample standard deviation (n − 1) over the finished "
        "seeds, their number in brackets; — (0/2): none of the 2 started seeds has finished yet; not run: no run "
        "folder yet.  "
    )
    asked = doc["asked"]
    if asked["epochs"] is not None:
        out.append(f"Asked for: {len(asked['seeds'] or []) or 'the found'} seed(s), {asked['epochs']} epochs, "
                   f"lr step {asked['lr_step']}" + (f", overrides {asked['overrides']}" if asked["overrides"] else "") + ".  ")
    out.append(f"Written {doc['generated']} from the run folders under `{doc['out_root']}/{doc['table']}`.")
    out.append("")

    header = ["task", ""] + neurons + (["paper (neuron not stated)", "ours: best neuron"] if has_best else [])
    out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        paper = [_pm(*r["paper"][n]) if n in r["paper"] else "—" for n in neurons]
        ours = [_ours_cell(r, n) for n in neurons]
        extra_p, extra_o = [], []
        if has_best:
            extra_p = [_pm(*r["paper_best"]) if r["paper_best"] else "—", ""]
            b = r["best_ours"]
            extra_o = ["", f"{b['final_mean']:.2f} ({b['neuron']})" if b else "—"]
        out.append("| " + " | ".join([_label(r), "paper"] + paper + extra_p) + " |")
        out.append("| " + " | ".join(["", "ours"] + ours + extra_o) + " |")
    out.append("")
    if has_best:
        for r in rows:
            if r["paper_best_note"]:
                out.append(f"* {r['label']}, paper: {r['paper_best_note']}.")
        out.append("")

    detail = []
    for r in rows:
        if not any(o["cells"] for o in r["ours"].values()):
            continue
        for n in neurons:
            o = r["ours"][n]
            if not o["cells"] and n not in r["paper"]:
                continue
            p = r["paper"].get(n)
            delta = f"{o['final_mean'] - p[0]:+.2f}" if p and o["final_mean"] is not None else "—"
            sched = "; ".join(_schedule_text(s) for s in o["schedules"]) or "—"
            detail.append(f"| {_label(r)} | {n} | {_pm(*p) if p else '—'} | {_pm(o['final_mean'], o['final_std'])} | {delta} | "
                       f"{_pm(o['best_mean'], None)} | {o['seeds_finished']} of {o['cells']} | {sched} |")
    if detail:
        out += ["## Per neuron", "",
                "| task | neuron | paper | ours final | ours − paper | ours best epoch | seeds finished | schedule (from the runs) |",
                "|---|---|---|---|---|---|---|---|"] + detail + [""]

    out += ["## Data used", "", "| task | data set | ours train / test | paper train / test | source |", "|---|---|---|---|---|"]
    for r in rows:
        if r["status"] == "no data":
            out.append(f"| {r['label']} | no data (see below) | — | {r['paper_samples'] or '—'} | — |")
            continue
        d = r["data"] or {}
        name = r["dataset_used"] or "—"
        if r["data_options"]:
            name += " (" + ", ".join(f"{k}={v}" for k, v in r["data_options"].items()) + ")"
        if r["stand_in_note"]:
            name += f": {r['stand_in_note']}"
        counts = f"{d['train']:,} / {d['test']:,}" if "train" in d else "not recorded (runs not started by the runner)"
        out.append(f"| {r['label']} | {name} | {counts} | {r['paper_samples'] or '—'} | {d.get('source') or '—'} |")
    out.append("")

    missing = [r for r in rows if r["status"] != "ok"]
    if missing:
        out += ["## Rows without results: no data or cannot run", ""]
        for r in missing:
            if r["problem"]:
                out += [f"### {r['label']}: cannot run", "", r["problem"], ""]
            if r["status"] == "no data" or r["missing"]:
                out += [f"### {r['label']}: no data", ""]
                for m in r["missing"]:
                    out += [f"Tried `{m['dataset']}`:", "", "```", m["error"], "```", ""]
    for r in rows:
        if r["status"] == "ok" and r["missing"]:
            names = ", ".join(m["dataset"] for m in r["missing"])
            out.append(f"* {r['label']}: {names} not available, so {r['dataset_used']} was used "
                       f"(first line of the loader's message: {r['missing'][0]['error'].splitlines()[0]})")
    if any(r["status"] == "ok" and r["missing"] for r in rows):
        out.append("")

    cells = doc["cells"]
    unfinished = [c for c in cells if c["status"] in ("partial", "running")]
    not_started = [c for c in cells if c["status"] == "new" and not c["epochs_done"]]
    failed = [c for c in cells if c["status"] in ("failed", "conflict")]
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
    if failed:
        out += ["## Failed cells", "", "| cell | error |", "|---|---|"]
        for c in failed:
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
            out.append(f"| {c['text']} | **{c['result']}** | {per} | {c['paper_result']} |")
        out.append("")

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


def write_report(
    plan: Plan,
    report_dir: str | Path | None = None,
    results_dir: str | Path | None = None,
    run: RunSummary | None = None,
    chart: bool = True,
) -> dict[str, Path]:
    """Write ``<table>.md``, ``<table>.json`` (and the capability chart) into ``report_dir``
    (default: the plan's out_root); copy them into ``results_dir`` too when given."""
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


__all__ = ["build_report", "render_markdown", "write_report", "evaluate_check", "cell_record", "STD_NOTE"]
