"""NRR-SNN Figs. 6-7: test accuracy and RobustRatio against the noise proportion p."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..analysis.robustness import NoiseCurve
from ._mpl import pyplot, save_figure


def plot_noise_robustness(
    curves: Sequence[NoiseCurve], out: str | Path, ratios: dict[str, list[dict]] | None = None,
    title: str | None = None,
) -> Path:
    """Accuracy (%) over the test noise p (%), one line per run; with ``ratios`` (clean run label ->
    :func:`~spikedyn.analysis.robustness.robust_ratios` rows) a second panel of RobustRatio over p."""
    if not curves:
        raise ValueError("plot_noise_robustness needs at least one noise curve")
    plt = pyplot()
    panels = 2 if ratios else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.0 * panels, 4.4), squeeze=False)
    ax = axes[0][0]
    metric = curves[0].points[0].get("metric", "accuracy") if curves[0].points else "accuracy"
    for curve in curves:
        xs = [100 * point["p"] for point in curve.points]
        ax.plot(xs, [100 * point["accuracy"] for point in curve.points], marker="o", markersize=4,
                label=f"{curve.label} ({curve.network})")
    ax.set_xlabel("test noise p (%): x (1 + p xi), xi = +-1")
    ax.set_ylabel(f"test {metric} (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if ratios:
        rax = axes[0][1]
        for label, rows in ratios.items():
            rax.plot([100 * r["p"] for r in rows], [r["robust_ratio"] for r in rows], marker="s", label=label)
        rax.axhline(1.0, color="grey", linewidth=0.7, linestyle=":")
        rax.set_xlabel("noise p (%), train and test")
        rax.set_ylabel("RobustRatio = Acc(train clean) / Acc(train noisy)")
        rax.grid(alpha=0.3)
        rax.legend(fontsize=8)
    dataset = curves[0].dataset
    fig.suptitle(title or f"noise robustness on {dataset}", y=0.99)
    return save_figure(fig, out)
