"""Training curves of a run directory (loss and accuracy per epoch)."""

from __future__ import annotations

import json
from pathlib import Path

from ._mpl import pyplot


def plot_training_curves(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Read ``metrics.jsonl`` of a run and save loss / accuracy curves (default ``curves.png``)."""
    run_dir = Path(run_dir)
    metrics = run_dir / "metrics.jsonl"
    if not metrics.exists():
        raise FileNotFoundError(f"no metrics.jsonl in {run_dir}: pass a run directory written by `spikedyn train`")
    history = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
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
