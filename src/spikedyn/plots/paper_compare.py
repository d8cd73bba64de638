"""Figures of the reproduction reports: test curves per column (BRP Fig. 5) and score against a
swept setting such as the number of time steps (BRP Fig. 7), ours beside the paper's figures."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

from ._mpl import pyplot


def _save(fig, out: str | Path, plt) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_curve_comparison(
    curves: Mapping[str, Mapping],
    out: str | Path,
    title: str,
    paper: Mapping[str, float] | None = None,
    paper_epoch: float | None = None,
    marks: Mapping[str, int | None] | None = None,
    mark_label: str = "",
    ylabel: str = "test accuracy (%)",
) -> Path:
    """One panel of test curves, one line per series (e.g. per teaching signal).

    ``curves``: label -> ``{"epochs": [...], "mean": [...], "std": [...] or None, "seeds": n}``
    (mean over seeds, in percent); a shaded band shows ± std where given.  ``paper``: label ->
    the paper's figure, drawn as a star at ``paper_epoch`` (default: our last epoch) in the
    series' colour.  ``marks``: label -> an epoch to mark on the curve (e.g. the first epoch at
    90 % of the final score), described by ``mark_label`` in the legend.
    """
    if not curves and not paper:
        raise ValueError("plot_curve_comparison needs at least one curve or paper figure")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = list(dict.fromkeys([*curves, *(paper or {})]))
    last = max((c["epochs"][-1] for c in curves.values() if c.get("epochs")), default=None)
    x_paper = paper_epoch if paper_epoch is not None else (last or 1)
    x_max = max(x_paper, last or 1)
    marked = False
    for i, label in enumerate(labels):
        colour = colours[i % len(colours)]
        curve = curves.get(label)
        if curve and curve.get("epochs"):
            xs, mean, std = list(curve["epochs"]), list(curve["mean"]), curve.get("std")
            seeds = curve.get("seeds")
            text = label + (f" (ours, {seeds} seed{'s' if seeds != 1 else ''})" if seeds is not None else " (ours)")
            ax.plot(xs, mean, color=colour, linewidth=1.6, label=text, marker="o" if len(xs) == 1 else None)
            if std and any(s is not None for s in std):
                lo = [m - (s or 0.0) for m, s in zip(mean, std)]
                hi = [m + (s or 0.0) for m, s in zip(mean, std)]
                ax.fill_between(xs, lo, hi, color=colour, alpha=0.18, linewidth=0)
            epoch = (marks or {}).get(label)
            if epoch is not None and epoch in xs:
                ax.plot([epoch], [mean[xs.index(epoch)]], marker="v", color=colour, markersize=8,
                        markeredgecolor="black", linestyle="none")
                marked = True
        if paper and paper.get(label) is not None:
            nudge = (i - (len(labels) - 1) / 2) * 0.012 * (x_max - 1)  # side by side when the figures are close
            ax.plot([x_paper + nudge], [paper[label]], marker="*", markersize=13, color=colour, markeredgecolor="black",
                    linestyle="none", label=f"{label} (paper, epoch {x_paper:g})")
    if marked and mark_label:
        ax.plot([], [], marker="v", color="white", markeredgecolor="black", linestyle="none", label=mark_label)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0, x_max * 1.04 + 1)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, out, plt)


def plot_sweep(
    panels: Mapping[str, Mapping],
    out: str | Path,
    title: str,
    xlabel: str = "T (time steps)",
    ylabel: str = "test accuracy (%)",
) -> Path:
    """Score against a swept setting, one panel per task.

    ``panels``: task -> ``{"x": [...], "mean": [...], "std": [...]`` (ours; ``None`` where not
    measured), ``"paper": [(x, mean, std or None), ...]`` (the paper's points),
    ``"paper_range": (mean, std or None, x_low, x_high)`` or None (a paper figure over a range
    of the setting, drawn as a band)}.
    """
    if not panels:
        raise ValueError("plot_sweep needs at least one panel")
    plt = pyplot()
    n = len(panels)
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.5 * rows), squeeze=False)
    for ax, (task, panel) in zip(axes.flat, panels.items()):
        xs: Sequence = panel.get("x", [])
        means: Sequence = panel.get("mean", [])
        stds: Sequence = panel.get("std") or [None] * len(xs)
        pts = [(x, m, s) for x, m, s in zip(xs, means, stds) if m is not None]
        if pts:
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] or 0.0 for p in pts], marker="o",
                        capsize=3, color="tab:blue", label="ours")
        band = panel.get("paper_range")
        if band:
            mean, std, lo, hi = band
            ax.hlines(mean, lo, hi, color="tab:red", linestyles="--", label="paper (over this range)")
            if std:
                ax.fill_between([lo, hi], [mean - std] * 2, [mean + std] * 2, color="tab:red", alpha=0.15, linewidth=0)
        paper = panel.get("paper") or []
        if paper:
            ax.errorbar([p[0] for p in paper], [p[1] for p in paper], yerr=[p[2] or 0.0 for p in paper], marker="*",
                        markersize=11, linestyle=":", color="tab:red", label="paper")
        if not pts:
            ax.text(0.5, 0.92, "no finished runs of ours", transform=ax.transAxes, ha="center", va="top", color="gray")
        ticks = sorted({*xs, *(p[0] for p in paper)})
        if ticks:
            ax.set_xticks(ticks)
        ax.set_title(task, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, out, plt)


__all__ = ["plot_curve_comparison", "plot_sweep"]
