"""``spikedyn runs``: one table of many training runs (what sets them apart, how far each got)."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
One table of training runs: the settings whose values differ between them (taken from each
run's config.json; dict-valued ones as model_options.KEY), the epochs recorded, the last and
the best test score with its epoch, the last training score and the training time; with a
validation split also the test score at the best validation epoch.  A RUN is a run directory,
a kept metrics.jsonl (any *.jsonl name), or a folder holding runs below it (a reproduce or
sweep root, a folder of logs).  Runs still training are read as far as they got.

examples:
  spikedyn runs runs/brp-*                          the runs side by side (Markdown)
  spikedyn runs runs/reproduce/brp-table3 --sort best
  spikedyn runs RUN_A RUN_B --columns hidden,lr,model_options.dropout --format csv --out runs.csv
"""


def _runs(args: argparse.Namespace) -> int:
    from ..analysis.run_table import render_table, run_table
    from ..runfiles import write_text_atomic

    columns = None if args.columns is None else [c.strip() for c in args.columns.split(",") if c.strip()]
    rows, shown = run_table(args.runs, columns=columns, sort=args.sort, labels=args.labels)
    text = render_table(rows, shown, args.format)
    if args.out:
        write_text_atomic(args.out, text)
        print(f"wrote {args.out} ({len(rows)} run(s))")
    else:
        print(text, end="")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from ..analysis.run_table import FORMATS, SORT_KEYS

    p = sub.add_parser(
        "runs", help="one table of many runs: differing settings, epochs, last/best test score, time",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directory, kept metrics .jsonl, or a folder of runs")
    p.add_argument(
        "--columns", metavar="KEY,KEY", default=None,
        help="settings to show (config.json keys, e.g. hidden,lr,model_options.dropout; default: those that differ)",
    )
    p.add_argument("--sort", choices=SORT_KEYS, default="given",
                   help="row order: as given, by name, or best / last test score first (default %(default)s)")
    p.add_argument("--format", choices=FORMATS, default="markdown", help="output format (default %(default)s)")
    p.add_argument("--labels", nargs="+", default=None, help="one name per run found (default: folder or file names)")
    p.add_argument("--out", default=None, help="write the table to this file instead of printing it")
    p.set_defaults(func=_runs)
