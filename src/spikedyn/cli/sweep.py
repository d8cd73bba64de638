"""``spikedyn sweep``: any training setting over data sets x neurons x rules x seeds, resumable."""

from __future__ import annotations

import argparse

from ..neurons import check_neuron_kind
from .options import add_data_option, parse_data_options
from .reproduce import add_run_arguments, execute_plan

DESCRIPTION = """\
Train every combination of data sets x neuron kinds x learning rules x seeds as ordinary runs,
one folder each under OUT/NAME/<data set>[-<rule>]/<neuron>/seed<seed>, in parallel processes
(--jobs) or on several GPUs (--device cuda:0,cuda:1), then write OUT/NAME.md and OUT/NAME.json
(mean ± std over seeds per cell).  Finished cells are never rerun and interrupted ones resume
from their last epoch, so a killed sweep continues when the same command is run again.

examples:
  spikedyn sweep lif-vs-fs --dataset digits --neurons lif 2nd-fs --seeds 3 --epochs 5 --jobs 2
  spikedyn sweep rules --dataset mnist --data-root DATA --neurons lif --rules bptt brp err sign --seeds 2
  spikedyn sweep rules --report-only --dataset mnist --neurons lif --rules bptt brp err sign
  spikedyn sweep tau --dataset digits --neurons plif lif --set hidden=128 --set lr=0.003 --dry-run
"""


def _sweep(args: argparse.Namespace) -> int:
    from ..reproduce import build_plan, write_report
    from ..reproduce.sweep import sweep_table
    from ..train import TrainConfig

    overrides = parse_data_options(args.set)
    d = TrainConfig()
    table = sweep_table(
        args.name, args.dataset, args.neurons, args.rules, parse_data_options(args.data_option), overrides,
        epochs=args.epochs if args.epochs is not None else 10,
        lr_step=args.lr_step if args.lr_step is not None else d.lr_step,
        first_seed=args.first_seed,
    )
    common = dict(out_root=args.out, data_root=args.data_root, progress=not args.quiet)
    if args.report_only:
        plan = build_plan(table, seeds=None, epochs=None, lr_step=None, load_data=False, **common)
        paths = write_report(plan, args.report_dir, args.results)
        print(f"report: {paths['markdown']}  (data: {paths['json']})")
        return 0
    plan = build_plan(table, seeds=args.seeds, epochs=table.epochs, lr_step=table.lr_step, **common)
    return execute_plan(plan, args)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="train data sets x neurons x rules x seeds, resumable, in parallel; mean ± std report",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", help="the sweep's name: its folder under --out and its report's name")
    p.add_argument("--dataset", nargs="+", required=True, metavar="NAME", help="data set(s) (see `spikedyn data list`)")
    add_data_option(p)
    p.add_argument("--neurons", nargs="+", required=True, type=check_neuron_kind, metavar="KIND",
                   help="neuron kinds (PATH:NAME for a presets file)")
    p.add_argument("--rules", nargs="+", metavar="RULE", help="learning rules (default bptt); several make the columns")
    p.add_argument("--seeds", type=int, default=3, help="seeds per cell (default %(default)s)")
    p.add_argument("--first-seed", type=int, default=3154, help="the first seed; the others follow (default %(default)s)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per cell (default 10)")
    p.add_argument("--lr-step", type=int, default=None, help="decay the learning rates x0.1 every N epochs (default 50)")
    add_run_arguments(p, "runs/sweeps")
    p.set_defaults(func=_sweep)
