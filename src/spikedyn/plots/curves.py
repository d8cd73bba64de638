"""Training curves of a run directory: loss and accuracy per epoch, and learned dynamics per epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..analysis.runs import run_name
from ..runfiles import read_metrics
from ._mpl import pyplot


def _default_png(first: Path, name: str) -> Path:
    """Where a plot goes without --out: inside the first run's folder, or beside its metrics file."""
    return first.with_name(f"{first.stem}-{name}") if first.is_file() else first / name


def _runs_and_labels(
    runs: str | Path | Sequence[str | Path], labels: Sequence[str] | None, command: str,
) -> tuple[list[Path], list[str]]:
    """The run folders and one name for each (``labels``, else the folders' names), checked."""
    paths = [Path(runs)] if isinstance(runs, (str, Path)) else [Path(r) for r in runs]
    if not paths:
        raise ValueError(f"{command} needs at least one run directory")
    names = list(labels) if labels else [run_name(p) for p in paths]
    if len(names) != len(paths):
        raise ValueError(f"{len(names)} label(s) for {len(paths)} run(s): give one label per run")
    return paths, names


def plot_dynamics_history(
    runs: str | Path | Sequence[str | Path], out: str | Path | None = None, labels: Sequence[str] | None = None,
) -> Path:
    """Learned dynamics of every layer against the epoch (PLIF tau, paper Fig. 7; MDN theta means).

    Reads the ``dynamics`` entry the trainer writes into ``metrics.jsonl`` for networks with
    learnable neuron dynamics; one panel per parameter (tau, or theta_a .. theta_d), one line
    per layer.  Several runs (e.g. PLIF started at tau0 = 2 and at 16) share the panels: one colour
    per layer, one line style per run, named by ``labels`` (default: the folders' names).  Default
    output ``RUN/dynamics.png`` (several runs: ``FIRST_RUN/dynamics-compare.png``).
    """
    paths, names = _runs_and_labels(runs, labels, "plot dynamics")
    histories = []
    for run_dir in paths:
        history = [h for h in read_metrics(run_dir) if "dynamics" in h]
        if not history:
            raise ValueError(
                f"{run_dir} logged no learned dynamics: only networks with learnable neuron parameters "
                f"(--neuron plif, --neuron mdn) do"
            )
        histories.append(history)
    first = next(iter(histories[0][-1]["dynamics"].values()))
    count = 1 if isinstance(first, float) else len(first)
    names_p = ["tau"] if count == 1 else (["theta_a", "theta_b", "theta_c", "theta_d"] if count == 4 else [f"p{i}" for i in range(count)])
    plt = pyplot()
    single = len(paths) == 1
    width = 4.2 * count if single else max(4.2 * count, 6.4)  # room for the longer legend and title
    fig, axes = plt.subplots(1, count, figsize=(width, 3.4), squeeze=False)
    styles = ("-", "--", ":", "-.")
    for i, (ax, label) in enumerate(zip(axes[0], names_p)):
        for r, (name, history) in enumerate(zip(names, histories)):
            epochs = [h["epoch"] for h in history]
            for k, layer in enumerate(history[-1]["dynamics"]):
                values = [h["dynamics"][layer] for h in history]
                ax.plot(
                    epochs, [v if count == 1 else v[i] for v in values], marker=".", color=f"C{k % 10}",
                    linestyle=styles[r % len(styles)], label=layer if single else f"{name}: {layer}",
                )
        ax.set_xlabel("epoch")
        ax.set_ylabel(label if count == 1 else f"mean {label}")
    axes[0][0].legend(fontsize=7 if single else 6)
    title = names[0] if single else " vs ".join(names)
    fig.suptitle(f"{title}: learned dynamics per epoch", fontsize=10 if single else 9)
    fig.tight_layout()
    default = _default_png(paths[0], "dynamics.png" if single else "dynamics-compare.png")
    out = Path(out) if out is not None else default
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_training_curves(
    runs: str | Path | Sequence[str | Path],
    out: str | Path | None = None,
    labels: Sequence[str] | None = None,
    *,
    target: float | None = None,
    accuracy_min: float | None = None,
    title: str | None = None,
) -> Path:
    """Loss and accuracy per epoch from ``metrics.jsonl`` (default ``RUN/curves.png``).

    A run is its folder or its ``metrics.jsonl`` (e.g. a copy kept as a log).  One run: its train
    and test curves (and the validation curve of a run with a held-out split).  Several runs: two
    lines per run and panel (dashed: train, solid: test), so runs are compared epoch by epoch, e.g.
    PLIF against LIF convergence (PLIF paper Fig. 6) or the teaching signals of reward propagation;
    ``labels`` name them (default: the runs' names), one legend entry per run (on the loss panel).
    Runs of up to 40 epochs get a marker on every point, so a one-epoch run still shows.
    ``target`` (percent) draws a dotted horizontal line on the accuracy panel (a paper's number, an
    issue's threshold); ``accuracy_min`` (percent) starts that panel's axis there, to tell apart
    curves that end close together.  ``title`` replaces the default one (the run names).
    """
    paths, names = _runs_and_labels(runs, labels, "plot curves")
    for what, value in (("target", target), ("accuracy_min", accuracy_min)):
        if value is not None and not 0 <= value < 100:
            raise ValueError(f"{what} is a percentage in [0, 100), got {value}")
    histories = [read_metrics(p) for p in paths]
    for path, history in zip(paths, histories):
        if not history:
            raise ValueError(f"{path}/metrics.jsonl holds no epoch yet: train at least one epoch first")
    plt = pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    single = len(paths) == 1
    marker = "." if max(len(h) for h in histories) <= 40 else None
    test_lines = []
    for name, history in zip(names, histories):
        epochs = [h["epoch"] for h in history]
        tag = "" if single else f"{name} "
        train_line = ax_acc.plot(epochs, [100 * h["train_accuracy"] for h in history], marker=marker,
                                 linestyle="-" if single else "--", label=f"{tag}train")[0]
        color = None if single else train_line.get_color()
        test_lines += ax_acc.plot(epochs, [100 * h["test_accuracy"] for h in history], marker=marker, color=color,
                                  label=f"{tag}test")
        if single and all("val_accuracy" in h for h in history):
            ax_acc.plot(epochs, [100 * h["val_accuracy"] for h in history], marker=marker, label="validation")
        ax_loss.plot(epochs, [h["train_loss"] for h in history], marker=marker, color=color,
                     linestyle="-" if single else "--", label=f"{tag}train")
        ax_loss.plot(epochs, [h["test_loss"] for h in history], marker=marker, color=color, label=f"{tag}test")
    target_lines = [] if target is None else [
        ax_acc.axhline(target, color="black", linestyle=":", linewidth=1, label=f"target {target:g} %")]
    if accuracy_min is not None:
        top = max(100 * max(h["train_accuracy"] for h in history) for history in histories)
        ax_acc.set_ylim(accuracy_min, max(top, target or 0, accuracy_min + 1) + 0.3)
    for ax, label in ((ax_loss, "loss"), (ax_acc, "accuracy (%)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
    if single:
        ax_loss.legend(fontsize=8)
        ax_acc.legend(fontsize=8)
    else:  # one entry per run (its colour), and the two line styles once
        from matplotlib.lines import Line2D

        styles = [Line2D([], [], color="grey", linestyle="--", label="train"),
                  Line2D([], [], color="grey", linestyle="-", label="test")]
        # on the loss panel, whose curves fall away from its upper corner, not over the accuracy curves
        ax_loss.legend(test_lines + styles + target_lines,
                       list(names) + [line.get_label() for line in styles + target_lines],
                       fontsize=7 if len(paths) > 3 else 8, loc="upper right")
    if title is None:
        title = names[0] if single else "  vs  ".join(names)
        title = title if len(title) <= 90 else f"{len(paths)} runs"
    fig.suptitle(title)
    fig.tight_layout()
    out = Path(out) if out is not None else _default_png(paths[0], "curves.png" if single else "compare.png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
