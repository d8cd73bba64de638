"""Membrane traces of one neuron under a given drive: spikes, V (and U) against the threshold, and the input current.

Each neuron gets three panels on a shared time axis, top to bottom:

* a thin spike raster (one tick per spike), so that dense spiking does not hide ``V``;
* the recorded state traces (``V``, and ``U`` for the 2nd-order neurons) with the firing
  threshold: a horizontal line at the layer's ``v_th``, or the threshold's trace for a layer whose
  threshold moves (:meth:`~spikedyn.neurons.NeuronLayer.threshold_trace`);
* the input current ``I_t = f(z_t)`` reaching the neuron at each step (the layer's input function
  applied to the synaptic drive ``z_t``; the drive itself is drawn dashed beside it when ``f`` is
  not the identity, e.g. the sigmoid of ``lif`` and the 2nd-order neurons).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from ..neurons import NeuronLayer, make_neuron
from ._mpl import pyplot

#: figure height (inches) per neuron, and the height ratios of its spike, state and current panels
PANEL_HEIGHT = 3.0
HEIGHT_RATIOS = (0.35, 2.0, 1.0)


def _layer(kind: str | NeuronLayer) -> tuple[str, NeuronLayer]:
    if isinstance(kind, NeuronLayer):
        return kind.label or type(kind).__name__, kind
    return kind, make_neuron(kind, 1)


def _threshold_value(layer: NeuronLayer) -> float:
    """The constant threshold of a one-neuron layer (``v_th`` may be a per-neuron buffer)."""
    v_th = getattr(layer, "v_th", None)
    if v_th is None:
        raise ValueError(
            f"{layer.describe()} has no v_th attribute, so its threshold is unknown; give it a v_th or override "
            f"threshold_trace"
        )
    return float(torch.as_tensor(v_th).flatten()[0])


def plot_neuron_traces(
    kinds: Sequence[str | NeuronLayer], drive: torch.Tensor, out: str | Path, title: str = ""
) -> Path:
    """Simulate each neuron on ``drive`` (``[T]`` synaptic input ``z_t``) and plot its traces (module docstring).

    ``kinds``: neuron kinds of :func:`~spikedyn.neurons.make_neuron` (one neuron each) or neuron
    layers of one neuron (named by their ``label``, else their class).
    """
    plt = pyplot()
    layers = [_layer(kind) for kind in kinds]
    fig, axes = plt.subplots(
        3 * len(layers), 1, figsize=(8, PANEL_HEIGHT * len(layers)), sharex=True, squeeze=False,
        gridspec_kw={"height_ratios": HEIGHT_RATIOS * len(layers)},
    )
    axes = axes[:, 0]
    steps = torch.arange(1, len(drive) + 1)
    z = drive.reshape(-1, 1, 1).float()
    for index, (name, layer) in enumerate(layers):
        spike_ax, state_ax, current_ax = axes[3 * index : 3 * index + 3]
        with torch.no_grad():
            x = layer.check_input(z)
            run = layer.run(x, record=True)
            current = layer.current(x)[:, 0, 0]
            threshold = layer.threshold_trace(run)

        spike_times = steps[run.spikes[:, 0, 0] > 0]
        spike_ax.plot(spike_times, torch.zeros(len(spike_times)), linestyle="none", marker="|", markersize=9,
                      color="k", label="spikes")
        spike_ax.set_ylim(-1, 1)
        spike_ax.set_yticks([])
        spike_ax.set_ylabel("S", rotation=0, labelpad=12, va="center")
        spike_ax.set_title(f"{name}: {len(spike_times)} spikes", loc="left", fontsize=9)

        for field, trace in run.traces.items():
            if field != "s":
                state_ax.plot(steps, trace[:, 0, 0], label=field.upper())
        if threshold is None:
            value = _threshold_value(layer)
            state_ax.axhline(value, color="tab:red", linestyle="--", linewidth=1, label=f"threshold {value:g}")
        else:
            state_ax.plot(steps, threshold[:, 0, 0], color="tab:red", linestyle="--", linewidth=1, label="threshold")
        state_ax.set_ylabel("state")
        state_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)

        current_ax.plot(steps, current, color="tab:green", label="I_t")
        if layer.input_fn != "identity":
            current_ax.plot(steps, z[:, 0, 0], color="tab:gray", linestyle="--", linewidth=0.8, label="z_t")
        current_ax.set_ylabel("I_t")
        current_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    axes[-1].set_xlabel("time step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)
