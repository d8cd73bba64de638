"""Dropout whose mask is shared by all time steps (PLIF, spec plif.md section 3).

A plain ``nn.Dropout`` folded over time would draw a new mask at every step, so a unit would be
silenced at some steps and not others.  The PLIF code draws one Bernoulli mask per sample at the
first step and keeps it for the whole window (a new one for the next batch); this module does the
same over a whole sequence at once.
"""

from __future__ import annotations

from torch import Tensor, nn


class TimeSharedDropout(nn.Module):
    """Dropout of ``[T, B, ...]`` with one mask ``[B, ...]`` reused at every step.

    In training mode each unit of each sample is kept with probability ``1 - p`` and scaled by
    ``1 / (1 - p)`` (so the expected value is unchanged), identically at all ``T`` steps; a new
    mask is drawn on every call.  In evaluation mode (or with ``p = 0``) it is the identity.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability p must lie in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 3:
            raise ValueError(
                f"TimeSharedDropout expects a time-major sequence [T, B, ...], got shape {tuple(x.shape)}"
            )
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty(x.shape[1:]).bernoulli_(keep).div_(keep)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"
