"""Membrane traces of one neuron kind under a given drive (V, U and spikes over time)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..neurons import make_neuron
from ._mpl import pyplot


def plot_neuron_traces(kinds: list[str], drive: torch.Tensor, out: str | Path, title: str = "") -> Path:
    """Simulate each neuron kind on ``drive`` (``[T]`` synaptic input) and plot its state traces."""
    plt = pyplot()
    fig, axes = plt.subplots(len(kinds), 1, figsize=(8, 2.2 * len(kinds)), sharex=True, squeeze=False)
    steps = torch.arange(1, len(drive) + 1)
    for ax, kind in zip(axes[:, 0], kinds):
        with torch.no_grad():
            run = make_neuron(kind, 1).run(drive.reshape(-1, 1, 1).float(), record=True)
        for name, trace in run.traces.items():
            if name != "s":
                ax.plot(steps, trace[:, 0, 0], label=name.upper())
        spike_times = steps[run.spikes[:, 0, 0] > 0]
        ax.vlines(spike_times, 0, 1, transform=ax.get_xaxis_transform(), colors="k", alpha=0.25, label="spike")
        ax.set_ylabel(kind)
        ax.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("time step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)
