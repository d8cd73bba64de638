"""Surrogate-gradient backpropagation through time and layers (the pseudo-BP baseline).

The loss is the read-out loss alone, ``L = L_out(S_out, y*)``; the taps are transparent, so its
gradient reaches every layer through the layers above it and through time (spec common.md
section 6, mode ``BP``).
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor

from ..layers.taps import SpikeTap
from .base import LearningRule, NetworkOutput, ReadoutLoss, RuleLoss


class BPTT(LearningRule):
    """``L = L_out``; gradients flow between layers (taps transparent)."""

    name = "bptt"
    local = False

    def loss(
        self, out: NetworkOutput, target: Tensor, readout_loss: ReadoutLoss, taps: Sequence[SpikeTap],
        mask: Tensor | None = None,
    ) -> RuleLoss:
        """``L = L_out``; a per-step ``mask`` is already bound into ``readout_loss`` (the rule needs nothing else)."""
        self.check_taps(taps)
        readout = readout_loss(out.spikes, target)
        return RuleLoss(total=readout, parts={"readout": readout.detach()})
