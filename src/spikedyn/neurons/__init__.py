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
``PATH:NAME``      frozen 2nd-order neuron with theta ``NAME`` of the presets file ``PATH``
                   (written by ``spikedyn meta cluster``; see :mod:`spikedyn.meta.presets`)
=================  ==========================================================================

Built-in kinds are case-insensitive; ``PATH:NAME`` kinds are used as written.

NRR-SNN's two-channel adaptive-threshold recurrent cell is not a ``make_neuron`` kind: its
recurrence needs the layer's own weights (and the input size), so it is a layer,
:class:`RecurrentNRR` (``x [T, B, D] -> S [T, B, N]``), with its pure step function
:func:`nrr_step` over :class:`NRRState` ``(v, s, a)`` (see :mod:`spikedyn.neurons.adaptive`).
"""

from __future__ import annotations

import argparse
from typing import Sequence

from ..surrogate import parse_surrogate
from .adaptive import NRRParams, NRRState, RecurrentNRR, nrr_step, sparse_recurrent_mask
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


class NeuronKindError(argparse.ArgumentTypeError, ValueError):
    """An unusable neuron kind (a ``ValueError`` that argparse reports with its message)."""


def _kinds_help() -> str:
    return f"{', '.join(NEURON_KINDS)}, or PATH:NAME for preset NAME of a presets file (spikedyn meta cluster)"


def check_neuron_kind(text: str) -> str:
    """Validate a neuron kind and return it normalised (usable as an argparse ``type=``).

    Built-in kinds are returned lower-cased; ``PATH:NAME`` kinds are returned as written after
    checking that the presets file can be read and holds ``NAME``.  Raises
    :class:`NeuronKindError` (a ``ValueError``) naming the valid kinds otherwise.
    """
    if ":" in text:
        from ..meta.presets import preset_theta  # lazy: spikedyn.meta imports this package

        try:
            preset_theta(text)
        except (OSError, ValueError) as exc:
            raise NeuronKindError(f"neuron kind {text!r}: {exc}") from exc
        return text
    key = text.lower()
    if key not in NEURON_KINDS:
        raise NeuronKindError(f"unknown neuron kind {text!r}; choose one of {_kinds_help()}")
    return key


def make_neuron(kind: str, shape: int | Sequence[int], fast: bool = True, **kwargs) -> NeuronLayer:
    """Build a neuron layer by name (see the module docstring for the kinds).

    ``kwargs`` go to the layer's constructor; ``surrogate`` may be a spec string such as
    ``"rect:0.25"`` (:func:`~spikedyn.surrogate.parse_surrogate`), as run configs store it.
    """
    if isinstance(kwargs.get("surrogate"), str):
        kwargs["surrogate"] = parse_surrogate(kwargs["surrogate"])
    if ":" in kind:
        from ..meta.presets import preset_neuron  # lazy: spikedyn.meta imports this package

        return preset_neuron(kind, shape, fast=fast, **kwargs)
    key = kind.lower()
    if key == "lif":
        return DecayLIF(input_fn="sigmoid", shape=shape, fast=fast, **kwargs)
    if key == "lif-identity":
        return DecayLIF(input_fn="identity", shape=shape, fast=fast, **kwargs)
    if key == "plif":
        return PLIF(shape=shape, fast=fast, **kwargs)
    if key == "lif-tau":
        return LIF(shape=shape, fast=fast, **kwargs)
    if key == "mdn":
        return SecondOrder(shape, learnable=True, fast=fast, **kwargs)
    if key.startswith("2nd-"):
        return SecondOrder.preset(key, shape, fast=fast, **kwargs)
    raise NeuronKindError(f"unknown neuron kind {kind!r}; choose one of {_kinds_help()}")


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
    "check_neuron_kind",
    "NeuronKindError",
    "decay_lif_step",
    "plif_step",
    "second_order_step",
    "RecurrentNRR",
    "NRRState",
    "NRRParams",
    "nrr_step",
    "sparse_recurrent_mask",
]
