"""``spikedyn meta ...``: MDN's meta-neuron pipeline.

``meta cluster`` (phase 2), ``meta dynamics`` (phase 3: membrane dynamics of candidates under
the reference sine, non-sensitive flag, grouping), ``meta pipeline`` (phases 1-3 from a source task).

Each subcommand is one ``_add_<name>(meta_sub)`` function that adds its parser and sets
``func``; :func:`register` calls them in order.
"""

from __future__ import annotations

import argparse


def _fmt_theta(theta: dict) -> str:
    return " ".join(f"{k[-1]}={theta[k]:+.4f}" for k in ("theta_a", "theta_b", "theta_c", "theta_d"))


def _cluster(args: argparse.Namespace) -> int:
    from ..meta import run_cluster

    summary = run_cluster(
        args.run,
        epoch=args.epoch,
        out_dir=args.out,
        quantile=args.quantile,
        random_state=args.seed,
        n_ab=args.n_ab,
        n_cd=args.n_cd,
        bandwidth_samples=args.bandwidth_samples or None,
        plot=not args.no_plot,
    )
    layers = ", ".join(f"{name}: {n}" for name, n in summary["layers"].items())
    print(f"clustered {summary['points']} neurons ({layers}) of {summary['run']} at epoch {summary['epoch']}")
    for cloud in summary["clouds"].values():
        how = {
            "mean-shift": "from mean shift",
            "override": f"set by hand; mean shift found {cloud['m_mean_shift']}",
            "degenerate": "bandwidth 0, see note",
        }[cloud["method"]]
        print(
            f"  ({', '.join(cloud['axes'])}): M = {cloud['m']} ({how}), bandwidth {cloud['bandwidth']:.4g}, "
            f"cluster sizes {cloud['sizes']}"
        )
    for note in summary["notes"]:
        print(f"  note: {note}")
    print(f"{len(summary['candidates'])} candidate meta neuron(s):")
    for c in summary["candidates"]:
        print(
            f"  {c['name']:<4} {_fmt_theta(c)}  neurons ab/cd/both {c['ab_size']}/{c['cd_size']}/{c['joint_size']}"
            f"  nearest {c['nearest_paper']} (distance {c['distance']:.4f})"
        )
    for kind, path in summary["files"].items():
        print(f"wrote {kind}: {path}")
    first = summary["candidates"][0]["name"]
    print(f"use a candidate as a neuron kind: --neuron {summary['files']['presets']}:{first}")
    return 0


def _add_cluster(meta_sub: argparse._SubParsersAction) -> None:
    p = meta_sub.add_parser(
        "cluster",
        help="phase 2: cluster a run's learned theta into candidate meta neurons (presets.json)",
        description="Mean shift picks the cluster count M of (theta_a, theta_b) and of (theta_c, theta_d), KMeans "
        "the centres; the candidates are all (a,b) x (c,d) centre pairs.  Writes presets.json, clusters.json "
        "and clusters.png into RUN/meta/epoch<E>/ (or --out).",
    )
    p.add_argument("run", help="run directory of `spikedyn train --neuron mdn` (holds theta_history.pt)")
    p.add_argument("--epoch", type=int, default=None, help="epoch whose theta to cluster (default: the last; 0 = initial)")
    p.add_argument("--out", default=None, help="output folder (default RUN/meta/epoch<E>)")
    p.add_argument("--quantile", type=float, default=0.5, help="estimate_bandwidth quantile (default %(default)s)")
    p.add_argument("--n-ab", type=int, default=None, metavar="M", help="fix M for (theta_a, theta_b) (authors, TIDigits: 3)")
    p.add_argument("--n-cd", type=int, default=None, metavar="M", help="fix M for (theta_c, theta_d)")
    p.add_argument("--seed", type=int, default=0, help="KMeans / bandwidth sampling seed (default %(default)s)")
    p.add_argument(
        "--bandwidth-samples", type=int, default=10_000, metavar="N",
        help="estimate the bandwidth on at most N random points (default %(default)s; 0 = all points, slow beyond ~20k)",
    )
    p.add_argument("--no-plot", action="store_true", help="do not draw clusters.png")
    p.set_defaults(func=_cluster)


def named_thetas(items: list[str]) -> dict[str, tuple[float, float, float, float]]:
    """Neurons to simulate: paper preset names (``2nd-fs``), ``FILE.json:NAME`` or a whole ``FILE.json``."""
    from ..meta import load_presets, preset_theta
    from ..neurons import META_NEURON_PRESETS
    from ..neurons.second_order import _preset_key

    out: dict[str, tuple[float, float, float, float]] = {}
    for item in items:
        if item.lower().endswith(".json"):
            out.update(load_presets(item))
        elif ":" in item:
            out[item.rsplit(":", 1)[1]] = preset_theta(item)
        else:
            try:
                key = _preset_key(item)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not a 2nd-order meta neuron: give a paper preset ({', '.join(META_NEURON_PRESETS)}), "
                    f"PRESETS.json:NAME or a whole PRESETS.json"
                ) from None
            out[key] = META_NEURON_PRESETS[key]
    return out


def _dynamics(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ..meta import filter_candidates, sine_drive
    from ..runfiles import write_text_atomic
    from ..plots.dynamics import plot_dynamics

    thetas = named_thetas(args.neurons)
    drive = sine_drive(steps=args.steps, period=args.period, amplitude=args.amplitude, mean=args.mean)
    report = filter_candidates(thetas, drive=drive, period=int(round(args.period)), threshold=args.threshold)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    title = f"sine drive: mean {args.mean:g}, amplitude {args.amplitude:g}, period {args.period:g} steps"
    plot_dynamics(report.traces, out, title=title, sensitivity=report.sensitivity, period=int(round(args.period)))
    summary_path = out.with_suffix(".json")
    write_text_atomic(summary_path, json.dumps(report.summary(), indent=2) + "\n")
    for name in report.names:
        verdict = "kept" if name in report.kept else report.dropped[name]
        print(f"  {name:<10} {report.traces[name].spike_count:4d} spikes  {verdict}")
    groups = "; ".join("{" + ", ".join(g.members) + "}" for g in report.groups)
    print(f"groups of alike dynamics: {groups or 'none'}")
    print(f"wrote {out} and {summary_path}")
    return 0


def _add_dynamics(meta_sub: argparse._SubParsersAction) -> None:
    p = meta_sub.add_parser(
        "dynamics",
        help="phase 3: V, U and spikes of meta neurons under a sine drive; flag non-sensitive ones, group alike ones",
        description="Drives each neuron with z_t = mean + amplitude sin(2 pi t / period) (MDN: std 0.723), draws V "
        "with the threshold, the drive, U and the V-U phase portrait with nullclines and attractor (paper Fig. 4), "
        "flags candidates whose U keeps falling while they fire whatever the input (M3), and groups candidates "
        "whose spike trains are alike (van Rossum distance).",
    )
    p.add_argument("neurons", nargs="+", help="2nd-fs, 2nd-rs, ... / PRESETS.json:NAME / PRESETS.json (all of it)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--period", type=float, default=20.0, help="sine period in steps (default %(default)s)")
    p.add_argument("--amplitude", type=float, default=1.0225, help="sine amplitude (default %(default)s: std 0.723)")
    p.add_argument("--mean", type=float, default=0.0, help="drive mean (default %(default)s)")
    p.add_argument("--threshold", type=float, default=0.5, help="grouping distance threshold (default %(default)s)")
    p.add_argument("--out", default="dynamics.png", help="PNG path; the JSON summary goes beside it")
    p.set_defaults(func=_dynamics)


def _pipeline(args: argparse.Namespace) -> int:
    from ..meta.pipeline import PipelineConfig, run_pipeline
    from .options import parse_data_options

    config = PipelineConfig(
        dataset=args.dataset, data_root=args.data_root, data_options=parse_data_options(args.data_option),
        seed=args.seed, epochs=args.epochs, cluster_epoch=args.cluster_epoch, n_ab=args.n_ab, n_cd=args.n_cd,
        quantile=args.quantile, theta_per_batch_slot=args.theta_per_batch_slot, hidden=args.hidden,
        steps=args.steps, batch_size=args.batch_size, device=args.device, out=args.out, progress=not args.quiet,
    )
    summary = run_pipeline(config)
    ab, cd = summary["clusters"]["ab"], summary["clusters"]["cd"]
    print(
        f"phase 2: M = {ab['m']} x {cd['m']} = {len(summary['candidates'])} candidates "
        f"(paper on this task: {summary['paper']['candidates']})"
    )
    for name in summary["kept"]:
        comp = summary["comparison"][name]
        print(f"kept {name}: behaves most like {comp['closest_by_dynamics']}")
    print(f"report: {summary['files']['report']}")
    return 0


def _add_pipeline(meta_sub: argparse._SubParsersAction) -> None:
    from .options import add_data_option

    p = meta_sub.add_parser(
        "pipeline",
        help="phases 1-3: learn theta on a source task, cluster it, filter the candidates; writes report.md",
    )
    p.add_argument("--dataset", default="mnist", help="source task (authors: mnist, tidigits; fsdd stands in)")
    p.add_argument("--data-root", default=None)
    add_data_option(p)
    p.add_argument("--epochs", type=int, default=None, help="phase-1 epochs (default: authors' clustering epoch, 5 / 26)")
    p.add_argument("--cluster-epoch", type=int, default=None, help="epoch whose theta is clustered (default: last)")
    p.add_argument("--n-ab", type=int, default=None, help="fix M of (theta_a, theta_b) (default: 3 for spoken digits, as the authors)")
    p.add_argument("--n-cd", type=int, default=None)
    p.add_argument("--quantile", type=float, default=0.5)
    p.add_argument("--theta-per-batch-slot", action="store_true", help="the authors' [batch, N] theta in phase 1")
    p.add_argument("--hidden", type=int, default=None)
    p.add_argument("--steps", "-T", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=3154)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=None, help="output folder (default runs/meta/<dataset>-seed<seed>)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_pipeline)


def register(sub: argparse._SubParsersAction) -> None:
    meta = sub.add_parser("meta", help="MDN meta neurons: learn, cluster and filter dynamics into named presets")
    meta_sub = meta.add_subparsers(dest="meta_command", required=True, metavar="SUBCOMMAND")
    _add_cluster(meta_sub)
    _add_dynamics(meta_sub)
    _add_pipeline(meta_sub)
