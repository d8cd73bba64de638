"""Test accuracy against the presentation length T of trained runs (``spikedyn analyze latency``)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..analysis.latency import LatencyCurve
from ._mpl import pyplot, save_figure


def plot_latency(curves: Sequence[LatencyCurve], out: str | Path, title: str | None = None) -> Path:
    """Accuracy (%) over T (log axis), one line per run, each run's own training T ringed."""
    if not curves or not any(curve.points for curve in curves):
        raise ValueError("plot_latency needs at least one curve with points")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    metric = next(curve.points[0]["metric"] for curve in curves if curve.points)
    for curve in curves:
        xs = [point["steps"] for point in curve.points]
        ys = [100 * point["accuracy"] for point in curve.points]
        (line,) = ax.plot(xs, ys, marker="o", markersize=4, label=f"{curve.label} (trained at T = {curve.trained_steps})")
        trained = [(x, y) for x, y in zip(xs, ys) if x == curve.trained_steps]
        if trained:
            ax.plot(*trained[0], marker="o", markersize=11, markerfacecolor="none", color=line.get_color())
    ax.set_xscale("log")
    ticks = sorted({point["steps"] for curve in curves for point in curve.points})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("time steps each test sample is presented for, T")
    ax.set_ylabel(f"test {metric} (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"accuracy against presentation length on {curves[0].dataset}", fontsize=10)
    return save_figure(fig, out)
