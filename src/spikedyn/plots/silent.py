"""BRP Fig. 8: fraction of silent neurons per hidden layer against the input spike fraction."""

from __future__ import annotations

from pathlib import Path

from ..analysis.silent import SilentSweep
from ._mpl import pyplot


def plot_silent_neurons(sweep: SilentSweep, out: str | Path, title: str | None = None) -> Path:
    """One line per tapped layer: silent neurons (%) over the *measured* input spike fraction (%).

    When the run's task has values in the paper (MNIST; TIDigits, for which FSDD stands in) the
    paper's silent fractions at 40 % input spikes are drawn as stars, coloured like the first
    layer of the same kind (conv / fc) and labelled with the paper's layer name.
    """
    if not sweep.points:
        raise ValueError("plot_silent_neurons needs a sweep with at least one point")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colour_of_kind: dict[str, str] = {}
    xs = [100 * p.input_fraction for p in sweep.points]
    for i, layer in enumerate(sweep.layers):
        colour = colours[i % len(colours)]
        colour_of_kind.setdefault(layer.kind, colour)
        ys = [100 * p.silent[layer.label] for p in sweep.points]
        ax.plot(xs, ys, marker="o", markersize=4, color=colour, label=f"{layer.label} ({layer.neurons} neurons)")
    capped = [(x, p) for x, p in zip(xs, sweep.points) if not p.reachable]
    for x, p in capped:
        ax.axvline(x, color="grey", linewidth=0.6, linestyle=":")
    paper = sweep.paper
    if paper is not None:
        x = 100 * paper["input_fraction"]
        for kind, (name, value) in paper["layers"].items():
            colour = colour_of_kind.get(kind, "black")
            ax.plot([x], [100 * value], marker="*", markersize=13, color=colour, markeredgecolor="black",
                    linestyle="none", label=f"paper {paper['task']} {name}: {100 * value:.2f} %")
    ax.set_xlabel("input units spiking per step (%, measured)")
    ax.set_ylabel("silent neurons (%): no spike in the whole window")
    ax.set_ylim(-2, 102)
    ax.set_xlim(min(-1.0, min(xs) - 1), max(max(xs), 40.0) + 2)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    if title is None:
        where = f"{sweep.dataset} {sweep.network}".strip()
        rule = f", rule {sweep.rule}" if sweep.rule else ""
        title = f"Silent neurons: {where}{rule}"
    ax.set_title(title, fontsize=10)
    note = f"{sweep.samples} test samples, T={sweep.steps}, input fraction set by method '{sweep.method}'"
    if capped:
        note += "; dotted: target out of reach"
    fig.text(0.01, 0.01, note, fontsize=7, color="dimgray", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
