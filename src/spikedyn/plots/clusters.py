"""Scatter plots of learned MDN dynamics and their clusters (the MDN paper's Fig. 3 c-f)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..neurons.second_order import META_NEURON_PRESETS
from ._mpl import pyplot, save_figure

if TYPE_CHECKING:  # pragma: no cover
    from ..meta.cluster import CloudClusters, ClusterResult

_GREEK = {"theta_a": r"$\theta_a$", "theta_b": r"$\theta_b$", "theta_c": r"$\theta_c$", "theta_d": r"$\theta_d$"}


def plot_theta_clusters(result: "ClusterResult", out: str | Path, title: str = "", show_paper: bool = True) -> Path:
    """Save the (theta_a, theta_b) and (theta_c, theta_d) clouds of a clustering as a PNG.

    Points are coloured by cluster, centres drawn as large circles (numbered by rank, 1 =
    largest cluster); with ``show_paper`` the paper's named meta neurons (spec mdn.md section
    2.3) are marked with black crosses, or listed in the corner when outside the view.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    for ax, cloud in zip(axes, result.clouds):
        _draw_cloud(ax, cloud, show_paper)
    if title:
        fig.suptitle(title)
    return save_figure(fig, out, dpi=110)


def _draw_cloud(ax, cloud: "CloudClusters", show_paper: bool) -> None:
    import matplotlib

    colours = matplotlib.colormaps["tab10"]
    x = cloud.points
    many = len(x) > 5000
    for k, (centre, size) in enumerate(zip(cloud.centres, cloud.sizes)):
        members = x[cloud.labels == k]
        colour = colours(k % 10)
        ax.scatter(members[:, 0], members[:, 1], s=4 if many else 10, color=colour, alpha=0.45, linewidths=0,
                   rasterized=many, label=f"cluster {k + 1} (n={size})")
        ax.scatter([centre[0]], [centre[1]], s=160, color=colour, edgecolors="k", linewidths=1.5, zorder=4)
        ax.annotate(str(k + 1), (centre[0], centre[1]), ha="center", va="center", fontsize=8, weight="bold", zorder=5)
    lo, hi = _view(np.concatenate([x, cloud.centres]))
    if show_paper:
        _draw_paper_presets(ax, cloud, lo, hi)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel(_GREEK[cloud.axes[0]])
    ax.set_ylabel(_GREEK[cloud.axes[1]])
    how = {"mean-shift": "mean shift", "override": "set by hand", "degenerate": "bandwidth 0"}[cloud.method]
    ax.set_title(f"({_GREEK[cloud.axes[0]]}, {_GREEK[cloud.axes[1]]}): M = {cloud.m} ({how}), "
                 f"bandwidth {cloud.bandwidth:.3g}", fontsize=10)
    ax.legend(loc="best", fontsize=7, framealpha=0.8)


def _view(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = x.min(axis=0), x.max(axis=0)
    margin = np.maximum(0.12 * (hi - lo), 1e-3)
    return lo - margin, hi + margin


def _draw_paper_presets(ax, cloud: "CloudClusters", lo: np.ndarray, hi: np.ndarray) -> None:
    cols = [0, 1] if cloud.name == "ab" else [2, 3]
    by_point: dict[tuple[float, float], list[str]] = {}
    for name, theta in META_NEURON_PRESETS.items():
        by_point.setdefault((theta[cols[0]], theta[cols[1]]), []).append(name.removeprefix("2nd-"))
    off_view, drawn = [], False
    for (px, py), names in by_point.items():
        label = "/".join(names)
        if lo[0] <= px <= hi[0] and lo[1] <= py <= hi[1]:
            ax.scatter([px], [py], marker="x", s=70, color="k", linewidths=1.5, zorder=3,
                       label=None if drawn else "paper meta neurons")
            ax.annotate(label, (px, py), textcoords="offset points", xytext=(6, 6), fontsize=8, zorder=6)
            drawn = True
        else:
            off_view.append(f"{label} ({px:g}, {py:g})")
    if off_view:
        ax.text(0.01, 0.01, "paper presets off view:\n" + "\n".join(off_view), transform=ax.transAxes,
                fontsize=7, va="bottom", ha="left", color="0.3")
