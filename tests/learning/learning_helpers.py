"""A tiny fully connected SNN with two tapped hidden layers, for the learning-rule tests."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from spikedyn.layers import SpikeTap, fold_time as folded
from spikedyn.models.mdn import NetOutput
from spikedyn.neurons import make_neuron


class TinyNet(nn.Module):
    """``x -> fc1 -> LIF -> tap1 -> fc2 -> LIF -> tap2 -> fc3 -> LIF`` (decay-LIF, identity input).

    ``replace(index, spikes)``, when given, stands in for the taps (index 0, 1): it is how the
    authors' gradient-replacement formulation is wired into the same network.
    """

    def __init__(self, inputs: int = 6, hidden: tuple[int, int] = (5, 4), classes: int = 3, fast: bool = True,
                 weight_scale: float = 1.0) -> None:
        super().__init__()
        h1, h2 = hidden
        self.fc1 = nn.Linear(inputs, h1)
        self.neuron1 = make_neuron("lif-identity", h1, fast=fast)
        self.fc2 = nn.Linear(h1, h2)
        self.neuron2 = make_neuron("lif-identity", h2, fast=fast)
        self.fc3 = nn.Linear(h2, classes)
        self.neuron3 = make_neuron("lif-identity", classes, fast=fast)
        self.tap1 = SpikeTap(h1, classes)
        self.tap2 = SpikeTap(h2, classes)
        with torch.no_grad():
            for fc in (self.fc1, self.fc2, self.fc3):
                fc.weight.mul_(weight_scale)

    def forward(self, x: Tensor, replace: Callable[[int, Tensor], Tensor] | None = None) -> NetOutput:
        cut = (lambda i, s: (self.tap1, self.tap2)[i](s)) if replace is None else replace
        s1 = self.neuron1(folded(self.fc1, x))
        s2 = self.neuron2(folded(self.fc2, cut(0, s1)))
        out = self.neuron3(folded(self.fc3, cut(1, s2)))
        return NetOutput(rate=out.mean(0), spikes=out, taps=[s1, s2])


class UntappedNet(nn.Module):
    """One hidden layer without a tap."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.neuron1 = make_neuron("lif-identity", 3)
        self.fc2 = nn.Linear(3, 2)
        self.neuron2 = make_neuron("lif-identity", 2)

    def forward(self, x: Tensor) -> NetOutput:
        h = self.neuron1(folded(self.fc1, x))
        out = self.neuron2(folded(self.fc2, h))
        return NetOutput(rate=out.mean(0), spikes=out, taps=[])


def tiny_batch(steps: int, batch: int = 4, inputs: int = 6, classes: int = 3, seed: int = 0,
               dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """Inputs ``[T, B, inputs]`` in ``[0, 1)`` and a one-hot target ``[B, classes]``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(steps, batch, inputs, generator=g, dtype=dtype)
    labels = torch.arange(batch) % classes
    return x, torch.nn.functional.one_hot(labels, classes).to(dtype)


def tiny_net(seed: int = 1, fast: bool = True, weight_scale: float = 2.0, **kw) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet(fast=fast, weight_scale=weight_scale, **kw).double()
