"""``spikedyn analyze``: analyses of a trained run (``silent``: BRP's silent neurons, Fig. 8)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SILENT_DESCRIPTION = """\
Fraction of silent neurons (no spike during the whole window) in every hidden layer with a
spike tap, averaged over test samples, while the fraction of input units that spike per step
is swept (BRP paper section III-G, Fig. 8).  Uses the run's own data set, T and encoder.

--method rank (default) sets the fraction exactly: each step, for each sample, exactly
round(f N) of the N input units spike, the largest p/u (u uniform), i.e. the run's Bernoulli
encoder with its alpha solved per sample and step; when f exceeds the share of positive
input values the remaining spikes fall on zero-valued units at random (--no-fill: they are
left out).  --method alpha sweeps one encoder alpha per fraction (the fraction then varies
between samples, and cannot exceed the share of positive input values).  The measured input
fraction is reported either way.

Writes OUT/silent_neurons.json and OUT/silent_neurons.png (OUT defaults to RUN); the plot
marks the paper's values at 40 % input spikes for MNIST and spoken-digit (TIDigits/FSDD) runs.

examples:
  spikedyn analyze silent runs/mnist-brp-lif-identity-brp-seed3154
  spikedyn analyze silent RUN --fractions 0,0.1,0.2,0.3,0.4 --samples 500 --out /tmp/silent
"""


def parse_fractions(text: str) -> list[float]:
    """``"0,0.05,0.4"`` -> ``[0.0, 0.05, 0.4]`` (each in [0, 1])."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--fractions takes comma-separated numbers in [0, 1], got {text!r}") from None
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"--fractions takes comma-separated numbers in [0, 1], got {text!r}")
    return values


def _silent(args: argparse.Namespace) -> int:
    from ..analysis.silent import silent_sweep_run
    from ..train import pick_device

    device = pick_device(args.device)
    sweep = silent_sweep_run(
        args.run, fractions=args.fractions, samples=args.samples, method=args.method,
        fill_background=not args.no_fill, batch_size=args.batch_size, seed=args.seed,
        data_root=args.data_root, device=str(device),
    )
    print(
        f"silent neurons of {sweep.run}: {sweep.model} {sweep.network} on {sweep.dataset}, rule {sweep.rule}, "
        f"epoch {sweep.epoch}; {sweep.samples} test samples, T={sweep.steps}, method {sweep.method}; "
        f"run encoder {sweep.run_encoder}"
    )
    print(sweep.table())
    for note in sweep.notes:
        print(f"note: {note}")
    out = Path(args.out) if args.out else Path(args.run)
    if out.suffix == ".pt":  # RUN given as its checkpoint file
        out = out.parent
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "silent_neurons.json"
    json_path.write_text(json.dumps(sweep.to_dict(), indent=2) + "\n")
    print(f"wrote {json_path}")
    if not args.no_plot:
        try:
            from ..plots.silent import plot_silent_neurons

            print(f"wrote {plot_silent_neurons(sweep, out / 'silent_neurons.png')}")
        except ImportError as exc:  # matplotlib missing: the numbers are written all the same
            print(f"no plot: {exc}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from ..analysis.silent import DEFAULT_FRACTIONS, METHODS

    analyze = sub.add_parser("analyze", help="analyses of a trained run (silent neurons, ...)")
    analyze_sub = analyze.add_subparsers(dest="analyze_command", required=True)
    silent = analyze_sub.add_parser(
        "silent", help="silent neurons per hidden layer vs the input spike fraction (BRP Fig. 8)",
        description=SILENT_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    silent.add_argument("run", help="run directory or its checkpoint.pt")
    silent.add_argument(
        "--fractions", type=parse_fractions, default=list(DEFAULT_FRACTIONS),
        help="input spike fractions, comma-separated (default 0,0.05,...,0.4)",
    )
    silent.add_argument("--samples", type=int, default=1000,
                        help="test samples, a fixed random subset (0: the whole test split; default %(default)s)")
    silent.add_argument("--method", choices=METHODS, default="rank",
                        help="rank: exact fraction per sample and step (default); alpha: one encoder alpha per fraction")
    silent.add_argument("--no-fill", action="store_true",
                        help="rank method: never put spikes on zero-valued input units (fraction may fall short)")
    silent.add_argument("--batch-size", type=int, default=50, help="samples per forward pass (default %(default)s)")
    silent.add_argument("--seed", type=int, default=0, help="seed of the sample subset and the spikes (default %(default)s)")
    silent.add_argument("--out", default=None, help="folder for silent_neurons.json/.png (default: RUN)")
    silent.add_argument("--no-plot", action="store_true", help="write the JSON only")
    silent.add_argument("--data-root", default=None, help="folder holding the data sets (default: the run's)")
    silent.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 or auto (default %(default)s)")
    silent.set_defaults(func=_silent)
