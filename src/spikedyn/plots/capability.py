"""MDN Fig. 8: spatial and temporal capability of each neuron type, ours beside the paper's."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from ..analysis.capability import KINDS, Capability
from ._mpl import pyplot


def plot_capability(
    series: Mapping[str, Capability],
    out: str | Path,
    title: str = "Spatial and temporal capability (MDN Eq. 7)",
    labels: Mapping[str, str] | None = None,
) -> Path:
    """Grouped bars, one panel per capability (spatial, temporal), one bar per series and neuron.

    ``series``: legend label -> :class:`Capability` (e.g. ``{"paper": ..., "ours": ...}``), all
    over the same neurons.  ``labels``: display names of the neurons.  A series without a value
    for a group (no task of that group measured) is drawn as "n/a".
    """
    if not series:
        raise ValueError("plot_capability needs at least one series")
    names = list(series)
    neurons = series[names[0]].neurons
    labels = dict(labels or {})
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2 + 0.2 * len(names)), sharey=True)
    width = 0.8 / len(names)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, kind in zip(axes, KINDS):
        for i, name in enumerate(names):
            values = getattr(series[name], kind)
            colour = colours[i % len(colours)]
            xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(neurons))]
            heights = [values.get(n) for n in neurons]
            ax.bar(
                [x for x, h in zip(xs, heights) if h is not None], [h for h in heights if h is not None],
                width=width, label=name, color=colour,
            )
            for x, h in zip(xs, heights):
                if h is None:
                    ax.text(x, 0.02, "n/a", ha="center", va="bottom", fontsize=7, rotation=90, color=colour)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xlim(-0.6, len(neurons) - 0.4)
        ax.set_xticks(range(len(neurons)))
        ax.set_xticklabels([labels.get(n, n) for n in neurons])
        ax.set_title(f"{kind} capability")
    axes[0].set_ylabel("mean z-score over tasks")
    from matplotlib.patches import Patch

    handles = [Patch(color=colours[i % len(colours)], label=name) for i, name in enumerate(names)]
    fig.legend(handles=handles, loc="upper center", ncol=len(names), fontsize=8, bbox_to_anchor=(0.5, 0.93), frameon=False)
    lines = [
        f"{name}: spatial {', '.join(series[name].tasks['spatial']) or 'none'}; "
        f"temporal {', '.join(series[name].tasks['temporal']) or 'none'}"
        for name in names
    ]
    fig.text(0.01, 0.01, "\n".join(["tasks used"] + lines), fontsize=7, color="dimgray", va="bottom", ha="left")
    fig.suptitle(title)
    fig.subplots_adjust(left=0.07, right=0.99, top=0.80, bottom=0.12 + 0.045 * len(names), wspace=0.05)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
