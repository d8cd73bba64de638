"""MDN's three-layer fully connected SNN (Cheng et al., section 3 of spec/mdn.md).

``x_t (D_in) -> Linear(D_in, H) -> neurons (H) -> Linear(H, C) -> neurons (C)``; read-out
``r = (1/T) sum_t S_out(t)``.  Synapses are stateless, so each Linear runs once over the folded
``[T*B, ...]`` sequence; only the neurons loop over time.  Both layers use the same neuron
kind (each with its own parameters).  ``dropout = p > 0`` drops hidden neurons on their way to the
read-out layer during training, one mask per sample for all ``T`` steps
(:class:`~spikedyn.layers.dropout.TimeSharedDropout`, scaled by ``1 / (1 - p)``); evaluation sees every neuron.

The hidden spikes pass through a :class:`~spikedyn.layers.SpikeTap` (``tap1``, holding the
fixed projection ``B_1`` ``[C, H]``), so any learning rule of :mod:`spikedyn.learning` can train
the net: transparent for BPTT, detaching for reward propagation.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from ..layers.dropout import TimeSharedDropout
from ..layers.spike_linear import time_linear
from ..layers.taps import SpikeTap
from ..neurons import make_neuron
from ..neurons.base import ParameterGroups, enable_inplace


@dataclass
class NetOutput:
    """``rate`` ``[B, C]`` = mean output spikes; ``spikes`` ``[T, B, C]``; ``taps`` = hidden spikes.

    ``taps`` holds the *un-detached* spikes ``[T, B, *shape]`` entering each of the model's
    :class:`~spikedyn.layers.SpikeTap` s, in tap order (what the learning rules read).
    """

    rate: Tensor
    spikes: Tensor
    taps: list[Tensor]


class MDNNet(ParameterGroups, nn.Module):
    """Input -> hidden (``hidden`` neurons) -> output (``classes`` neurons), one neuron kind."""

    def __init__(
        self, inputs: int, hidden: int = 500, classes: int = 10, neuron: str = "2nd-fs", fast: bool = True,
        neuron_options: dict | None = None, dropout: float = 0.0,
    ) -> None:
        """``neuron_options`` go to both neuron layers (e.g. ``{"theta_slots": 100}`` for MDN's per-batch-slot theta);
        ``dropout``: probability in [0, 1) of dropping a hidden neuron for a whole sample (0: none)."""
        super().__init__()
        options = dict(neuron_options or {})
        self.fc1 = nn.Linear(inputs, hidden)
        self.neuron1 = make_neuron(neuron, hidden, fast=fast, **options)
        self.fc2 = nn.Linear(hidden, classes)
        self.neuron2 = make_neuron(neuron, classes, fast=fast, **options)
        # memory: the neurons' currents are fresh synapse outputs used once, so a family that can writes its
        # spikes over them; the hidden spikes reach fc2's backward as bytes unless the neuron keeps them anyway
        enable_inplace(self.neuron1)
        enable_inplace(self.neuron2)
        # created last: B_1 is drawn from the global RNG after every weight, so a seed gives the
        # same weights as before the tap existed (runs stay reproducible across versions)
        self.tap1 = SpikeTap(hidden, classes)
        # checks p, and holds no parameters or buffers, so a net without dropout saves the same state as before
        self.drop1 = TimeSharedDropout(dropout) if dropout else None
        self.config = {"inputs": inputs, "hidden": hidden, "classes": classes, "neuron": neuron}
        if options:
            self.config["neuron_options"] = options
        if dropout:
            self.config["dropout"] = float(dropout)

    def forward(self, x: Tensor) -> NetOutput:
        """``x``: ``[T, B, inputs]`` (any trailing shape is flattened)."""
        x = x.flatten(2)
        # one product over T*B rows into a tensor of its own, which the neuron may overwrite with its spikes
        h = self.neuron1(time_linear(self.fc1, x))
        to_readout = self.tap1(h)
        as_bytes = not getattr(self.neuron1, "keeps_output_spikes", True)
        if self.drop1 is not None and self.training:
            to_readout, as_bytes = self.drop1(to_readout), False  # scaled spikes: no longer 0/1
        out = self.neuron2(time_linear(self.fc2, to_readout, spikes=as_bytes))
        return NetOutput(rate=out.mean(0), spikes=out, taps=[h])

