"""``spikedyn plot curves``, ``plot dynamics`` (alias ``tau``) and ``plot traces``."""

from __future__ import annotations

import argparse

from ..neurons import NEURON_KINDS, check_neuron_kind


def _plot(args: argparse.Namespace) -> int:
    import math

    import torch

    from ..plots import plot_dynamics_history, plot_neuron_traces, plot_training_curves

    if args.plot_command == "curves":
        print(plot_training_curves(args.runs, args.out, args.labels, target=args.target,
                                   accuracy_min=args.accuracy_min, title=args.title))
        return 0
    if args.plot_command in ("dynamics", "tau"):
        print(plot_dynamics_history(args.runs, args.out, args.labels))
        return 0
    t = torch.arange(args.steps, dtype=torch.float32)
    drive = args.mean + args.amplitude * torch.sin(2 * math.pi * t / args.period)
    title = f"drive z_t = {args.mean} + {args.amplitude} sin(2 pi t / {args.period})"
    print(plot_neuron_traces(args.kinds, drive, args.out, title=title))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    plot = sub.add_parser("plot", help="plots: training curves of a run, membrane traces of neurons")
    plot_sub = plot.add_subparsers(dest="plot_command", required=True)
    curves = plot_sub.add_parser(
        "curves", help="loss/accuracy per epoch of a run directory, or of several runs side by side",
        description="One run: train/test (and validation) curves. Several runs: their curves on shared axes, "
        "e.g. `spikedyn plot curves runs/plif runs/lif16 --labels PLIF 'LIF tau=16'` (PLIF paper Fig. 6).",
    )
    curves.add_argument("runs", nargs="+", metavar="RUN", help="run directory, or a run's metrics.jsonl (a kept log)")
    curves.add_argument("--labels", nargs="+", help="one name per run (default: the folder names)")
    curves.add_argument("--out", default=None, help="PNG path (default RUN/curves.png, or FIRST_RUN/compare.png)")
    curves.add_argument("--target", type=float, default=None, metavar="PERCENT",
                        help="draw a dotted line at this accuracy (a paper's number, an issue's threshold)")
    curves.add_argument("--accuracy-min", type=float, default=None, metavar="PERCENT",
                        help="start the accuracy axis here, to tell apart curves that end close together")
    curves.add_argument("--title", default=None, help="figure title (default: the run names)")
    dyn = plot_sub.add_parser(
        "dynamics", aliases=["tau"],
        help="learned neuron dynamics per epoch of a run, or of several (PLIF tau per layer, paper Fig. 7; MDN theta means)",
        description="One line per layer; several runs share the panels, one line style per run, e.g. "
        "`spikedyn plot tau runs/plif-tau2 runs/plif-tau16 --labels 'tau0=2' 'tau0=16'` (PLIF paper Fig. 7).",
    )
    dyn.add_argument("runs", nargs="+", metavar="RUN")
    dyn.add_argument("--labels", nargs="+", help="one name per run (default: the folder names)")
    dyn.add_argument("--out", default=None, help="PNG path (default RUN/dynamics.png, or FIRST_RUN/dynamics-compare.png)")
    traces = plot_sub.add_parser(
        "traces", help="V/U traces with the threshold, input current and spikes of neuron kinds under a sine drive",
        description="Per neuron kind: a spike raster, V (and U) with the firing threshold as a dashed line, and the "
        "input current I_t = f(z_t) reaching the neuron (with the drive z_t when f is the sigmoid).",
    )
    traces.add_argument(
        "kinds", nargs="+", type=check_neuron_kind, metavar="KIND",
        help=f"neuron kinds: {', '.join(NEURON_KINDS)}, or PRESETS.json:NAME (from `spikedyn meta cluster`)",
    )
    traces.add_argument("--steps", type=int, default=60)
    traces.add_argument("--mean", type=float, default=0.0, help="mean of the pre-activation drive")
    traces.add_argument("--amplitude", type=float, default=1.0225, help="sine amplitude (MDN: 1.0225, std 0.723)")
    traces.add_argument("--period", type=float, default=20.0)
    traces.add_argument("--out", default="traces.png")
    plot.set_defaults(func=_plot)
