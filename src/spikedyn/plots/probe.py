"""Linear-probe accuracy per layer of trained runs (``spikedyn analyze probe``)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Sequence

from ..analysis.probe import LayerProbe
from ._mpl import pyplot, save_figure


def plot_probes(probes: Sequence[LayerProbe], out: str | Path, title: str | None = None) -> Path:
    """Probe test accuracy (%) per layer, input first, one line per run; a dashed line of the run's colour
    at its own read-out's score on the same test samples."""
    if not probes or not any(p.layers for p in probes):
        raise ValueError("plot_probes needs at least one run with probed layers")
    plt = pyplot()
    depth = max(len(p.layers) for p in probes)
    fig, ax = plt.subplots(figsize=(max(6.4, 1.6 * depth + 2.0), 4.4))
    for probe in probes:
        xs = list(range(len(probe.layers)))
        (line,) = ax.plot(xs, [layer["test"] for layer in probe.layers], marker="o", label=f"{probe.label}: probe")
        ax.axhline(probe.own, linestyle="--", linewidth=1, color=line.get_color(),
                   label=f"{probe.label}: own read-out {probe.own:.2f} %")
    longest = max(probes, key=lambda p: len(p.layers))
    ax.set_xticks(range(depth), [layer["label"] for layer in longest.layers], fontsize=8)
    ax.set_xlabel("layer (spike counts over the window)")
    ax.set_ylabel("linear probe, test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    title = title or f"what a linear read-out finds in each layer ({probes[0].dataset})"
    ax.set_title("\n".join(textwrap.wrap(title, 70)), fontsize=10)
    return save_figure(fig, out)
