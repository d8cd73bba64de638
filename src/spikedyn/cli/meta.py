"""``spikedyn meta ...``: MDN's meta-neuron pipeline (phase 2: ``meta cluster``).

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


def register(sub: argparse._SubParsersAction) -> None:
    meta = sub.add_parser("meta", help="MDN meta neurons: cluster learned dynamics into presets")
    meta_sub = meta.add_subparsers(dest="meta_command", required=True, metavar="SUBCOMMAND")
    _add_cluster(meta_sub)
