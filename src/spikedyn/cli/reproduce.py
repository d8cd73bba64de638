"""``spikedyn reproduce``: run a paper table's cells and write the paper-vs-ours report."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
Run a paper table as ordinary training runs, one per (row, neuron, seed) cell, under
OUT/TABLE/<data set>[-<variant>]/<neuron>/seed<seed>, then write OUT/TABLE.md and OUT/TABLE.json
(paper vs ours, and the table's figures).  A row is a task, or for tables with their own columns
(learning rules, time steps) a task in one column with its own folder, e.g. mnist-brp and
mnist-bptt.  Finished cells are never rerun and interrupted ones resume, so after a stop (Ctrl-C,
a crash, a reboot) the same command continues.  Tasks without data files are listed in the
report with where to get the files.

examples:
  spikedyn reproduce list
  spikedyn reproduce mdn-table3 --dry-run
  spikedyn reproduce mdn-table3 --tasks mnist fsdd --seeds 3 --epochs 20 --lr-step 15 --jobs 2
  spikedyn reproduce mdn-table3 --device cuda:0,cuda:1       (two GPUs, one cell each at a time)
  spikedyn reproduce mdn-table3 --report-only --report-dir /tmp/report
  spikedyn reproduce brp-table3 --dry-run                       (BRP vs pseudo-BP, 100 epochs by default)
  spikedyn reproduce brp-fig5 --tasks mnist --seeds 1 --epochs 30 --device cuda
  spikedyn reproduce brp-fig7 --tasks fsdd --seeds 2
"""


def _list_tables() -> int:
    from ..reproduce import TABLES

    for name in sorted(TABLES):
        t = TABLES[name]
        print(f"{name}: {t.title}")
        print(f"    paper: {t.source}")
        if t.columns:
            datasets: dict[str, str] = {}
            for r in t.rows:
                datasets.setdefault(r.group, r.dataset)
            print(f"    tasks: {', '.join(f'{task} ({d})' for task, d in datasets.items())}")
            print(f"    columns: {', '.join(t.columns)}; neurons: {', '.join(t.neurons)}")
        else:
            print(f"    tasks: {', '.join(f'{r.label} ({r.dataset})' for r in t.rows)}")
            print(f"    neurons: {', '.join(t.neurons)}")
        print(f"    our default: {t.epochs} epochs, first seed {t.first_seed}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from ..reproduce import build_plan, get_table, table_names, write_report
    from .options import parse_data_options

    if args.list or (args.table or "").lower() == "list":
        return _list_tables()
    if args.table is None:
        raise ValueError(f"name a table to reproduce ({', '.join(table_names())}) or --list")
    table = get_table(args.table)
    common = dict(
        out_root=args.out, tasks=args.tasks, neurons=args.neurons, data_root=args.data_root,
        overrides=parse_data_options(args.set), progress=not args.quiet,
    )
    if args.report_only:
        plan = build_plan(table, seeds=args.seeds, epochs=args.epochs, lr_step=args.lr_step, load_data=False, **common)
        paths = write_report(plan, args.report_dir, args.results)
        print(f"report: {paths['markdown']}  (data: {paths['json']})")
        return 0

    plan = build_plan(
        table, seeds=args.seeds if args.seeds is not None else 5,
        epochs=args.epochs if args.epochs is not None else table.epochs,
        lr_step=args.lr_step if args.lr_step is not None else table.lr_step, **common,
    )
    return execute_plan(plan, args)


def execute_plan(plan, args: argparse.Namespace) -> int:
    """``--dry-run``: print the plan; else train its unfinished cells (``--jobs``, ``--device``) and
    write the report.  Shared by ``spikedyn reproduce`` and ``spikedyn sweep``."""
    from ..reproduce import describe_plan, run_plan, write_report
    from ..reproduce.plan import split_devices

    if args.dry_run:
        print("\n".join(describe_plan(plan)))
        return 0
    devices = split_devices(args.device)
    jobs = args.jobs if args.jobs is not None else len(devices)
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}")
    for rp in plan.rows:
        if rp.status != "ok":
            print(f"{rp.row.label}: {'no data' if rp.status == 'no data' else 'cannot run'}; listed in the report", file=sys.stderr)
    run = run_plan(plan, jobs=jobs, device=args.device, progress=not args.quiet, keep_freed_memory=args.allocator == "keep")
    paths = write_report(plan, args.report_dir, args.results, run=run)
    print(
        f"cells: {len(run.finished)} trained now, {len(run.already_finished)} finished before, "
        f"{len(run.failed)} failed, {len(run.skipped)} skipped (conflicting runs)"
    )
    print(f"report: {paths['markdown']}  (data: {paths['json']})")
    if run.interrupted:
        print(
            f"interrupted: {len(run.not_run)} cell(s) not finished. Run the same command again to continue; "
            f"finished cells are kept and interrupted ones resume from their last epoch.",
            file=sys.stderr,
        )
        return 130
    return 1 if run.failed else 0


def add_run_arguments(p: argparse.ArgumentParser, out_default: str) -> None:
    """The options of running cells and reporting, shared by ``reproduce`` and ``sweep``."""
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, or a list cuda:0,cuda:1 given to cells in turn")
    p.add_argument("--jobs", type=int, default=None, help="cells trained in parallel processes (default: one per device)")
    p.add_argument("--data-root", default=None, help="folder holding the data sets (default $SPIKEDYN_DATA or ./data)")
    p.add_argument("--out", default=out_default, help="root of the cells' run folders (default %(default)s)")
    p.add_argument("--report-dir", default=None, help="where to write the report .md / .json (default: --out)")
    p.add_argument("--results", default=None, metavar="DIR", help="also copy the report into DIR (e.g. benchmarks/results)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="training option for every cell, repeatable "
                   "(e.g. hidden=32 for a quick try; model_options.input_scale=39 sets one entry of a dict-valued option "
                   "and keeps the row's others); existing cells with other values are not touched")
    p.add_argument("--dry-run", action="store_true", help="print the plan (cells, their state, rows without data); train nothing")
    p.add_argument("--report-only", action="store_true", help="write the report from the run folders; train nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--allocator", default="keep", choices=["keep", "default"],
                   help="keep: glibc keeps freed memory, faster CPU training (default); default: leave malloc as it is")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce", help="run a paper table (tasks x neurons x seeds) and write paper-vs-ours",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("table", nargs="?", help="table name (e.g. mdn-table3), or 'list'")
    p.add_argument("--list", action="store_true", help="list the tables and exit")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds from the table's first (MDN 3154, BRP 42) "
                   "(default 5; with --report-only: the seeds found)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per cell (default: the table's; MDN 80, the "
                   "paper's; BRP 100)")
    p.add_argument("--lr-step", type=int, default=None, help="decay the learning rates x0.1 every N epochs (default 50; "
                   "no effect on tables with a constant learning rate, e.g. BRP)")
    p.add_argument("--tasks", nargs="+", metavar="TASK", help="only these rows, by data set, task, label or run folder "
                   "(e.g. mnist fsdd timit-gender, fsdd-1d-brp)")
    p.add_argument("--neurons", nargs="+", metavar="KIND", help="neuron kinds instead of the table's; +KIND adds one "
                   "(PATH:NAME for a presets file)")
    add_run_arguments(p, "runs/reproduce")
    p.set_defaults(func=_reproduce)
