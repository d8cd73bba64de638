"""``spikedyn analyze``: analyses of a trained run (``silent``: BRP's silent neurons, Fig. 8;
``noise``: NRR's robustness to multiplicative input noise, Figs. 6-7; ``latency``: accuracy against
the presentation length T; ``probe``: linear probes of every layer's spike counts)."""

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


NOISE_DESCRIPTION = """\
Test accuracy of one or more runs under multiplicative input noise x (1 + p xi), xi = +-1 drawn
independently for every value at every step (NRR-SNN paper section 5.5, Figs. 6-7), for each
noise proportion p of --levels (default 0,0.1,...,0.5).  Every run sees the same noise signs
(--seed).  A per-step read-out (nrr) reports frame accuracy and per-sample accuracy.

--noisy-trained RUN ... adds RobustRatio(p) = Acc(first RUN, test p) / Acc(noisy RUN, test p)
for runs trained on noisy input (spikedyn train --model nrr --model-option input_noise=P); p is
each noisy run's training noise, which must be among --levels.

Writes OUT/noise_robustness.json and OUT/noise_robustness.png (OUT defaults to the first RUN).

examples:
  spikedyn analyze noise runs/fsdd-nrr-nrr-brp-seed3154 runs/fsdd-nrr-nrr-seed3154
  spikedyn analyze noise RUN --noisy-trained RUN_P10 RUN_P30 --levels 0,0.1,0.3,0.5 --out /tmp/noise
"""


LATENCY_DESCRIPTION = """\
Test accuracy of one or more trained runs with every test sample presented for T time steps, for each
T of --steps (default 1,2,5,10,20,40,100), without retraining: how early a net's decision settles and
what a longer look at the input buys.  Static data: the run's encoder draws T steps (a rate code
averages more or fewer Bernoulli draws); sequences: the first T stored steps (at most what the data
holds).  The point at a run's own T equals its last logged test score (the same encoding draws as
`spikedyn eval`).

Writes OUT/latency.json and OUT/latency.png (OUT defaults to the first RUN).

examples:
  spikedyn analyze latency runs/mnist-2nd-fs-seed3154
  spikedyn analyze latency RUN_A RUN_B --labels "BPTT" "BRP" --steps 5,10,20,50,100 --out /tmp/latency
"""


PROBE_DESCRIPTION = """\
How much of the class each layer's spike counts carry: for the encoded input and every layer with a spike
tap, the counts over the window (summed over --draws presentations) of --train-samples random training
samples (augmentation off) fit a multinomial logistic regression (C picked from --penalties on a held-out
tenth), which is scored on the test samples beside the net's own read-out on the same samples.  A probe
above the net's own score: the output layer leaves information unused; at or below it: the code is the
limit.  Compare rules on one net (BRP against BPTT) or layers of one net.

Writes OUT/probe.json and OUT/probe.png (OUT defaults to the first RUN).

examples:
  spikedyn analyze probe runs/mnist-brp-2nd-fs-seed3154
  spikedyn analyze probe RUN_BRP RUN_BPTT --labels BRP BPTT --train-samples 20000 --out /tmp/probe
"""


def parse_penalties(text: str) -> list[float]:
    """``"0.01,0.1,1"`` -> ``[0.01, 0.1, 1.0]`` (values of C > 0, sorted, each once)."""
    from ..analysis.probe import check_penalties

    try:
        return check_penalties([float(part) for part in text.split(",") if part.strip()])
    except ValueError:
        raise argparse.ArgumentTypeError(f"--penalties takes comma-separated numbers > 0, got {text!r}") from None


def _probe(args: argparse.Namespace) -> int:
    from ..analysis.probe import probe_run
    from ..devices import pick_device

    labels = _check_labels(args.labels, args.runs)
    device = str(pick_device(args.device))
    samples = dict(train_samples=args.train_samples or None, test_samples=args.test_samples or None)
    probes = [
        probe_run(run, data_root=args.data_root, device=device, draws=args.draws, penalties=args.penalties,
                  seed=args.seed, batch_size=args.batch_size, label=labels[i] if labels else None, verbose=True,
                  **samples)
        for i, run in enumerate(args.runs)
    ]
    payload = {"penalties": list(args.penalties), "seed": args.seed, "runs": [p.to_dict() for p in probes]}

    def plot(path: Path) -> Path:
        from ..plots.probe import plot_probes

        return plot_probes(probes, path, args.title)

    _write_results(args.out or args.runs[0], "probe", payload, None if args.no_plot else plot)
    return 0


def _check_labels(labels: list[str] | None, runs: list[str]) -> list[str]:
    """``--labels`` (one per run) or none."""
    if labels and len(labels) != len(runs):
        raise ValueError(f"--labels gives {len(labels)} label(s) for {len(runs)} run(s); give one per run")
    return labels or []


def parse_steps(text: str) -> list[int]:
    """``"1,5,20"`` -> ``[1, 5, 20]`` (whole numbers >= 1, sorted, each once)."""
    from ..analysis.latency import check_steps

    try:
        return check_steps([int(part) for part in text.split(",") if part.strip()])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--steps takes comma-separated whole numbers >= 1 (time steps), got {text!r}"
        ) from None


def _latency(args: argparse.Namespace) -> int:
    from ..analysis.latency import latency_curve_run
    from ..devices import pick_device

    labels = _check_labels(args.labels, args.runs)
    device = str(pick_device(args.device))
    curves = [
        latency_curve_run(run, args.steps, data_root=args.data_root, device=device, batch_size=args.batch_size,
                          label=labels[i] if labels else None, verbose=True)
        for i, run in enumerate(args.runs)
    ]
    payload = {"steps": list(args.steps), "runs": [c.to_dict() for c in curves]}

    def plot(path: Path) -> Path:
        from ..plots.latency import plot_latency

        return plot_latency(curves, path, args.title)

    _write_results(args.out or args.runs[0], "latency", payload, None if args.no_plot else plot)
    return 0


def _noise(args: argparse.Namespace) -> int:
    from ..analysis.robustness import noise_curve_run, robust_ratios
    from ..devices import pick_device

    device = str(pick_device(args.device))
    common = dict(levels=args.levels, seed=args.seed, data_root=args.data_root, device=device,
                  batch_size=args.batch_size)
    curves = [noise_curve_run(run, **common) for run in args.runs]
    noisy = [noise_curve_run(run, **common) for run in args.noisy_trained or []]
    for curve in curves + noisy:
        print(f"{curve.label}: {curve.model} {curve.network} on {curve.dataset}, epoch {curve.epoch} ({curve.run})")
        for point in curve.points:
            extra = f"  per sample {100 * point['sample_accuracy']:.2f}%" if "sample_accuracy" in point else ""
            print(f"  p = {100 * point['p']:5.1f}%  {point['metric']} {100 * point['accuracy']:.2f}%{extra}")
    ratios = {}
    if noisy:
        ratios[curves[0].label] = rows = robust_ratios(curves[0], noisy)
        for row in rows:
            print(f"RobustRatio at p = {100 * row['p']:g}%: {row['clean_trained']:.4f} / {row['noisy_trained']:.4f} "
                  f"= {row['robust_ratio']:.3f}")
    payload = {"levels": list(args.levels), "seed": args.seed, "runs": [c.to_dict() for c in curves],
               "noisy_trained": [c.to_dict() for c in noisy], "robust_ratio": ratios}

    def plot(path: Path) -> Path:
        from ..plots.robustness import plot_noise_robustness

        return plot_noise_robustness(curves + noisy, path, ratios or None)

    _write_results(args.out or args.runs[0], "noise_robustness", payload, None if args.no_plot else plot)
    return 0


def _write_results(out: str | Path, name: str, payload: dict, plot=None) -> None:
    """Write ``OUT/<name>.json`` (atomically) and, with ``plot``, ``OUT/<name>.png`` (``plot(path)`` draws it).

    ``out`` is a folder, or a run's ``checkpoint.pt`` (its folder is used).  Without matplotlib the
    numbers are written all the same and the missing plot is said."""
    from ..runfiles import write_text_atomic

    out = Path(out)
    if out.suffix == ".pt":  # RUN given as its checkpoint file
        out = out.parent
    json_path = write_text_atomic(out / f"{name}.json", json.dumps(payload, indent=2) + "\n")
    print(f"wrote {json_path}")
    if plot is not None:
        try:
            print(f"wrote {plot(out / f'{name}.png')}")
        except ImportError as exc:  # matplotlib missing: the numbers are written all the same
            print(f"no plot: {exc}")


def parse_levels(text: str) -> list[float]:
    """``"0,0.1,0.5"`` -> ``[0.0, 0.1, 0.5]`` (noise proportions in [0, 1])."""
    try:
        return parse_fractions(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"--levels takes comma-separated noise proportions in [0, 1] (0.5 = 50 %), got {text!r}"
        ) from None


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
    from ..devices import pick_device

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

    def plot(path: Path) -> Path:
        from ..plots.silent import plot_silent_neurons

        return plot_silent_neurons(sweep, path)

    _write_results(args.out or args.run, "silent_neurons", sweep.to_dict(), None if args.no_plot else plot)
    return 0


def _add_scoring_options(p: argparse.ArgumentParser, results: str) -> None:
    """The options of an analysis that scores runs on their test data and writes ``OUT/<results>.json/.png``."""
    p.add_argument("--batch-size", type=int, default=None, help="evaluation batch size (default: the run's)")
    p.add_argument("--out", default=None, help=f"folder for {results}.json/.png (default: the first run)")
    p.add_argument("--no-plot", action="store_true", help="write the JSON only")
    p.add_argument("--data-root", default=None, help="folder holding the data sets (default: the run's)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 or auto (default %(default)s)")


def _add_curve_options(p: argparse.ArgumentParser, results: str) -> None:
    """The runs, their legend labels and the plot title of an analysis drawn one line per run, then the
    scoring options (:func:`_add_scoring_options`)."""
    p.add_argument("runs", nargs="+", help="run directories (or checkpoint.pt files)")
    p.add_argument("--labels", nargs="+", metavar="LABEL", help="one legend label per run (default: its folder name)")
    p.add_argument("--title", default=None, help="title of the plot")
    _add_scoring_options(p, results)


def register(sub: argparse._SubParsersAction) -> None:
    from ..analysis.silent import DEFAULT_FRACTIONS, METHODS

    analyze = sub.add_parser("analyze", help="analyses of a trained run (silent neurons, noise, latency, probes)")
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

    from ..analysis.robustness import DEFAULT_LEVELS

    noise = analyze_sub.add_parser(
        "noise", help="test accuracy under multiplicative input noise, RobustRatio (NRR-SNN Figs. 6-7)",
        description=NOISE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    noise.add_argument("runs", nargs="+", help="run directories (or checkpoint.pt files) trained on clean input")
    noise.add_argument("--noisy-trained", nargs="+", metavar="RUN",
                       help="runs trained with --model-option input_noise=P, for RobustRatio against the first run")
    noise.add_argument("--levels", type=parse_levels, default=list(DEFAULT_LEVELS),
                       help="test noise proportions, comma-separated (default 0,0.1,...,0.5)")
    noise.add_argument("--seed", type=int, default=0, help="seed of the noise signs (default %(default)s)")
    _add_scoring_options(noise, "noise_robustness")
    noise.set_defaults(func=_noise)

    from ..analysis.latency import DEFAULT_STEPS

    latency = analyze_sub.add_parser(
        "latency", help="test accuracy against the time steps each sample is presented for (no retraining)",
        description=LATENCY_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    latency.add_argument("--steps", type=parse_steps, default=list(DEFAULT_STEPS),
                         help="presentation lengths T, comma-separated (default 1,2,5,10,20,40,100)")
    _add_curve_options(latency, "latency")
    latency.set_defaults(func=_latency)

    from ..analysis.probe import DEFAULT_PENALTIES

    probe = analyze_sub.add_parser(
        "probe", help="linear probes of every layer's spike counts, beside the net's own read-out",
        description=PROBE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    probe.add_argument("--train-samples", type=int, default=10_000, metavar="N",
                       help="random training samples to fit on (default %(default)s; 0 = all)")
    probe.add_argument("--test-samples", type=int, default=0, metavar="N",
                       help="first test samples to score on (default: all)")
    probe.add_argument("--draws", type=int, default=1, metavar="D",
                       help="presentations of T steps summed per sample (default %(default)s)")
    probe.add_argument("--penalties", type=parse_penalties, default=list(DEFAULT_PENALTIES), metavar="C,C",
                       help="values of the logistic regression's C to pick from (default 0.01,0.1,1)")
    probe.add_argument("--seed", type=int, default=0, help="seed of the training subset and the encoding (default 0)")
    _add_curve_options(probe, "probe")
    probe.set_defaults(func=_probe)
