"""Neuron families: each a pure step function over typed state plus a fused fast path.

``make_neuron(kind, shape)`` builds any of them by name (used by the models and the CLI):

=================  ==========================================================================
kind               neuron
=================  ==========================================================================
``lif``            MDN's 1st-order meta neuron: decay-LIF with sigmoid input (decay 0.2)
``lif-identity``   decay-LIF with identity input (BRP / NRR feed-forward cell)
``plif``           parametric LIF, learnable tau (init 2)
``lif-tau``        LIF with fixed tau (2), PLIF's baseline
``mdn``            MDN 2nd-order neuron with learnable per-neuron theta (phase 1)
``2nd-fs`` ...     frozen meta neurons ``2nd-fs``, ``2nd-rs``, ``2nd-sds``, ``2nd-wds``, ``2nd-m3``
=================  ==========================================================================
"""

from __future__ import annotations

from typing import Sequence

from .base import NeuronLayer, NeuronRun
from .lif import LIF, PLIF, DecayLIF, LIFState, ParametricLIF, decay_lif_step, plif_step
from .second_order import (
    META_NEURON_PRESETS,
    THETA_INIT,
    SecondOrder,
    SecondOrderState,
    second_order_step,
)

NEURON_KINDS = ("lif", "lif-identity", "plif", "lif-tau", "mdn") + tuple(
    k.lower() for k in META_NEURON_PRESETS
)


def make_neuron(kind: str, shape: int | Sequence[int], fast: bool = True, **kwargs) -> NeuronLayer:
    """Build a neuron layer by name (see the module docstring for the kinds)."""
    key = kind.lower()
    if key == "lif":
        return DecayLIF(input_fn="sigmoid", fast=fast, **kwargs)
    if key == "lif-identity":
        return DecayLIF(input_fn="identity", fast=fast, **kwargs)
    if key == "plif":
        return PLIF(fast=fast, **kwargs)
    if key == "lif-tau":
        return LIF(fast=fast, **kwargs)
    if key == "mdn":
        return SecondOrder(shape, learnable=True, fast=fast, **kwargs)
    if key.startswith("2nd-"):
        return SecondOrder.preset(key, shape, fast=fast, **kwargs)
    raise ValueError(f"unknown neuron kind {kind!r}; choose one of {', '.join(NEURON_KINDS)}")


__all__ = [
    "NeuronLayer",
    "NeuronRun",
    "DecayLIF",
    "ParametricLIF",
    "PLIF",
    "LIF",
    "LIFState",
    "SecondOrder",
    "SecondOrderState",
    "META_NEURON_PRESETS",
    "THETA_INIT",
    "NEURON_KINDS",
    "make_neuron",
    "decay_lif_step",
    "plif_step",
    "second_order_step",
]
