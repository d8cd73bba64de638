"""Training curves of a run directory: loss and accuracy per epoch, and learned dynamics per epoch."""

from __future__ import annotations

import json
from pathlib import Path

from ._mpl import pyplot


def read_metrics(run_dir: Path) -> list[dict]:
    metrics = run_dir / "metrics.jsonl"
    if not metrics.exists():
        raise FileNotFoundError(f"no metrics.jsonl in {run_dir}: pass a run directory written by `spikedyn train`")
    return [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]


def plot_dynamics_history(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Learned dynamics of every layer against the epoch (PLIF tau, paper Fig. 7; MDN theta means).

    Reads the ``dynamics`` entry the trainer writes into ``metrics.jsonl`` for networks with
    learnable neuron dynamics; one panel per parameter (tau, or theta_a .. theta_d), one line
    per layer.  Default output ``RUN/dynamics.png``.
    """
    run_dir = Path(run_dir)
    history = [h for h in read_metrics(run_dir) if "dynamics" in h]
    if not history:
        raise ValueError(
            f"{run_dir} logged no learned dynamics: only networks with learnable neuron parameters "
            f"(--neuron plif, --neuron mdn) do"
        )
    epochs = [h["epoch"] for h in history]
    layers = list(history[-1]["dynamics"])
    first = history[-1]["dynamics"][layers[0]]
    count = 1 if isinstance(first, float) else len(first)
    names = ["tau"] if count == 1 else (["theta_a", "theta_b", "theta_c", "theta_d"] if count == 4 else [f"p{i}" for i in range(count)])
    plt = pyplot()
    fig, axes = plt.subplots(1, count, figsize=(4.2 * count, 3.4), squeeze=False)
    for i, (ax, label) in enumerate(zip(axes[0], names)):
        for layer in layers:
            values = [h["dynamics"][layer] for h in history]
            ax.plot(epochs, [v if count == 1 else v[i] for v in values], marker=".", label=layer)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label if count == 1 else f"mean {label}")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{run_dir.name}: learned dynamics per epoch")
    fig.tight_layout()
    out = Path(out) if out is not None else run_dir / "dynamics.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_training_curves(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Read ``metrics.jsonl`` of a run and save loss / accuracy curves (default ``curves.png``)."""
    run_dir = Path(run_dir)
    history = read_metrics(run_dir)
    epochs = [h["epoch"] for h in history]
    plt = pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax_loss.plot(epochs, [h["test_loss"] for h in history], label="test")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    ax_acc.plot(epochs, [100 * h["train_accuracy"] for h in history], label="train")
    ax_acc.plot(epochs, [100 * h["test_accuracy"] for h in history], label="test")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.legend()
    fig.suptitle(run_dir.name)
    fig.tight_layout()
    out = Path(out) if out is not None else run_dir / "curves.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
