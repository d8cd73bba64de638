"""The Markdown text of a paper-vs-ours report (``<table>.md``) from the report dict of
:func:`~spikedyn.reproduce.report.build_report`.

One function a section, in the order they appear: the header (what "ours" is, what was asked,
the paper's training), the main table (one line per task, a paper and an ours line, one column
per neuron or per the table's own columns), the per-neuron (per-row) detail with the schedules
the runs actually used, the data used, the rows without data with the loaders' messages, the
unfinished / failed / conflicting cells, the paper's qualitative claims, the test curves and
convergence, the score against a swept setting, MDN's capability (Eq. 7), and notes.  Scores
are ``mean ± sample standard deviation`` over the finished seeds, their number in brackets.
"""

from __future__ import annotations

import json

from .plan import LR_SCHEDULE_TEXT
from .tables import SCORES

#: a mean test curve counts as settled when it moves less than this (percentage points) over its last tenth
SETTLED_POINTS = 1.0


def render_markdown(doc: dict, chart: str | None = None) -> str:
    """Markdown text of a report dict from :func:`~spikedyn.reproduce.report.build_report`; ``chart``:
    the file name of the capability chart to show, if one was drawn."""
    out = _header_markdown(doc) + _main_table_markdown(doc) + _detail_markdown(doc) + _chance_markdown(doc)
    out += _data_markdown(doc)
    out += _missing_markdown(doc) + _cells_markdown(doc) + _checks_markdown(doc)
    if doc.get("curves") is not None:
        out += _curves_markdown(doc)
    if doc.get("sweep") is not None:
        out += _sweep_markdown(doc)
    out += _capability_markdown(doc, chart)
    notes = doc["notes"]
    if notes:
        out += ["## Notes", ""] + [f"* {n}" for n in notes] + [""]
    return "\n".join(out)


def _by_columns(doc: dict) -> bool:
    """Whether the main table's columns are the table's own (rules, time steps) rather than neurons."""
    return doc.get("column_axis") == "table"


def _row_name(doc: dict, row: dict) -> str:
    """What a row is called outside the main table: its task where the table has its own columns (one
    line or heading per task), else its label."""
    return row["task"] if _by_columns(doc) else row["label"]


def _grid(doc: dict) -> list[dict]:
    """The main table's lines: the report's grid, or one line per row with a column per neuron."""
    neurons = doc["neurons"]
    return doc.get("grid") or [
        {"task": r["label"], "rows": [r["label"]], "cells": {n: {"row": r["label"], "neuron": n} for n in neurons},
         "paper_best": r["paper_best"], "paper_best_note": r["paper_best_note"]} for r in doc["rows"]
    ]


def _paper_value(row: dict, neuron: str):
    """The paper's ``(mean, std)`` for ``neuron`` in a row, or None."""
    return row["paper_by_neuron"].get(neuron) if "paper_by_neuron" in row else row["paper"].get(neuron)


def _header_markdown(doc: dict) -> list[str]:
    rows = doc["rows"]
    out = [f"# {doc['title']}: paper vs ours", ""]
    out.append(f"*Paper*: {doc['paper_source']}. These figures are the paper's, copied from it.  ")
    out.append(f"*Ours*: {score_text(rows)} (%), mean ± sample standard deviation (n − 1) over the finished "
               "seeds, their number in brackets; — (0/2): none of the 2 started seeds has finished yet; not run: no "
               "run folder yet.  ")
    asked = doc["asked"]
    if asked["epochs"] is not None:
        # reports written before "lr_schedule" existed say only whether the rate was constant
        kind = asked.get("lr_schedule") or ("constant" if asked.get("constant_lr") else "step")
        if kind in LR_SCHEDULE_TEXT:
            lr = LR_SCHEDULE_TEXT[kind]
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
    return out


def _main_table_markdown(doc: dict) -> list[str]:
    by_label = {r["label"]: r for r in doc["rows"]}
    columns = doc.get("columns", doc["neurons"])
    grid = _grid(doc)
    has_best = any(line["paper_best"] for line in grid)
    if _by_columns(doc):
        best_head = ["paper (not per column)", "ours: best column"]
    else:
        best_head = ["paper (neuron not stated)", "ours: best neuron"]
    header = ["task", ""] + columns + (best_head if has_best else [])
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for line in grid:
        paper, ours, best = [], [], None
        for c in columns:
            where = line["cells"].get(c)
            if where is None:  # this task has no run in this column
                paper.append("")
                ours.append("")
                continue
            r = by_label[where["row"]]
            p = _paper_value(r, where["neuron"])
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
    return out


def _detail_markdown(doc: dict) -> list[str]:
    by_columns = _by_columns(doc)
    detail = []
    for r in doc["rows"]:
        if not any(o["cells"] for o in r["ours"].values()):
            continue
        for n in doc["neurons"]:
            o = r["ours"][n]
            p = _paper_value(r, n)
            if not o["cells"] and not p:
                continue
            delta = f"{o['score_mean'] - p[0]:+.2f}" if p and o["score_mean"] is not None else "—"
            sched = "; ".join(_schedule_text(s) for s in o["schedules"]) or "—"
            paper_sched = [r.get("paper_schedule") or "—"] if by_columns else []
            detail.append("| " + " | ".join(
                [_label(r), n, _pm(*p) if p else "—"] + paper_sched + [_pm(o["score_mean"], o["score_std"]), delta,
                 _pm(o["best_mean"], None), f"{o['seeds_finished']} of {o['cells']}{_at_chance_text(o)}", sched]) + " |")
    if not detail:
        return []
    if by_columns:
        return ["## Per row", "",
                "| row | neuron | paper | paper's training | ours | ours − paper | ours at the best epoch | seeds finished "
                "| schedule (from the runs) |", "|---|---|---|---|---|---|---|---|---|"] + detail + [""]
    return ["## Per neuron", "",
            "| task | neuron | paper | ours | ours − paper | ours at the best epoch | seeds finished | schedule (from the runs) |",
            "|---|---|---|---|---|---|---|---|"] + detail + [""]


def _data_markdown(doc: dict) -> list[str]:
    out = ["## Data used", "", "| task | data set | ours train / test | paper train / test | source |",
           "|---|---|---|---|---|"]
    seen: set[str] = set()
    for r in doc["rows"]:
        name = _row_name(doc, r)
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
    return out


def _missing_markdown(doc: dict) -> list[str]:
    """Rows that have no data or cannot run (each loader's message once), and stand-ins used instead."""
    rows = doc["rows"]
    out: list[str] = []
    missing = [r for r in rows if r["status"] != "ok"]
    if missing:
        out += ["## Rows without results: no data or cannot run", ""]
        shown: dict[str, list[str]] = {}  # loader messages -> headings (one message per data set, not per row)
        for r in missing:
            name = _row_name(doc, r)  # a table with columns: one heading per task
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
            name = _row_name(doc, r)
            if (name, line) not in said:
                said.add((name, line))
                out.append(f"* {name}: {line}")
    if said:
        out.append("")
    return out


def _cells_markdown(doc: dict) -> list[str]:
    """Cells not finished, not started, failed, or run with other settings than those asked."""
    cells = doc["cells"]
    out: list[str] = []
    unfinished = [c for c in cells if c["status"] in ("partial", "running")]
    not_started = [c for c in cells if c["status"] == "new" and not c["epochs_done"]]
    failed = [c for c in cells if c["status"] == "failed"]
    other_settings = [c for c in cells if c["status"] == "conflict"]
    if unfinished or not_started:
        out += ["## Unfinished cells", ""]
        if unfinished:
            out += ["| cell | epochs | last test score | state | time left (estimate) |", "|---|---|---|---|---|"]
            for c in unfinished:
                state = c.get("running") or "stopped; resumes on the next run"
                if "last_update_s" in c:
                    state += f", last epoch {c['last_update_s'] / 60:.0f} min ago"
                last = f"{c['final']:.2f}" if "final" in c else "—"
                left = "—"
                if "left_s" in c:
                    left = f"about {duration_text(c['left_s'])} at {duration_text(c['epoch_seconds'])} an epoch"
                out.append(f"| `{c['run_dir']}` | {c['epochs_done']} of {c['epochs']} | {last} | {state} | {left} |")
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
    return out


def duration_text(seconds: float) -> str:
    """``42 s``, ``23 min``, ``4.2 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _checks_markdown(doc: dict) -> list[str]:
    if not doc["checks"]:
        return []
    out = ["## Qualitative claims of the paper", "",
           "| claim | on our numbers | per task (ours) | on the paper's numbers |", "|---|---|---|---|"]
    for c in doc["checks"]:
        per = "; ".join(f"{k}: {v}" for k, v in c["per_row"].items())
        text = c["text"] + (f" (measured: {c['measure']})" if c.get("measure") else "")
        out.append(f"| {text} | **{c['result']}** | {per} | {c['paper_result']} |")
    out.append("")
    return out


def _capability_markdown(doc: dict, chart: str | None) -> list[str]:
    cap = doc.get("capability")
    if not cap:
        return []
    out = ["## Capability (MDN Eq. 7)", "",
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
    return out


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
    return f"{_pm(o['score_mean'], o['score_std'])} ({o['seeds_finished']}{_at_chance_text(o)})"


def _at_chance_text(ours: dict) -> str:
    """``, 1 at chance`` where finished seeds never rose above chance (see the report's section on them)."""
    n = len(ours.get("at_chance", ()))
    return f", {n} at chance" if n else ""


def _chance_markdown(doc: dict) -> list[str]:
    """The finished seeds whose best test score stayed within chance's band: they pull a mean down and
    its spread up, so the report names them instead of leaving a reader to guess from the spread."""
    lines, errors = [], set()
    for r in doc["rows"]:
        for n in doc["neurons"]:
            o = r["ours"].get(n) or {}
            for seed in o.get("at_chance", ()):
                rec = o["per_seed"][str(seed)]
                errors.add(r["chance"]["standard_errors"])
                lines.append(f"| {_label(r)} | {n} | {seed} | {rec['best']:.2f} | {rec['final']:.2f} | "
                             f"{r['chance']['level']:.2f} | {r['chance']['bound']:.2f} |")
    if not lines:
        return []
    return ["## Seeds that stayed at chance", "",
            f"Even the best epoch of these finished seeds lies within {'/'.join(f'{e:g}' for e in sorted(errors))} "
            "binomial standard errors of chance "
            "(100 / classes, on the test set's size): no epoch shows that the net told the classes apart. They count in the "
            "means above, as every finished seed does, and widen the spread.", "",
            "| task | neuron | seed | best | final | chance | counted as chance up to |",
            "|---|---|---|---|---|---|---|"] + lines + [""]


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


def score_text(rows: list[dict]) -> str:
    """What "ours" is: one :data:`SCORES` text, or one per group of rows when they differ."""
    used: dict[str, list[str]] = {}
    for r in rows:
        used.setdefault(r.get("score", "final"), []).append(r["label"])
    if len(used) == 1:
        return SCORES[next(iter(used))]
    return "; ".join(f"{SCORES[s]} for {', '.join(labels)}" for s, labels in used.items())
