"""Multiplicative input noise of NRR-SNN's robustness test (spec nrr.md section 5).

At every step every input value is scaled by ``1 + p xi`` with ``xi`` in ``{-1, +1}`` drawn
independently with probability 1/2 (the authors' code; the paper calls it "uniformly-distributed
random noise")::

    x~_t = x_t * (1 + p xi_t),        p = noise proportion (0 .. 0.5 in the paper)

:func:`multiplicative_noise` applies it once; :class:`InputNoise` is the module a network puts
in front of its first layer to train on noisy input (like dropout: active in training mode only).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def check_noise_level(p: float) -> float:
    """``p`` as a float in ``[0, 1]``; ``ValueError`` otherwise."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"the noise proportion p must be a number in [0, 1] (0.5 = 50 %), got {p!r}")
    return float(p)


def multiplicative_noise(x: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """``x * (1 + p xi)`` with ``xi = +-1`` i.i.d. with probability 1/2 for every element of ``x``.

    ``generator`` (a CPU generator) makes the draw reproducible; the signs are drawn on the CPU
    and moved to ``x``'s device.  ``p = 0`` returns ``x`` itself.
    """
    p = check_noise_level(p)
    if p == 0.0:
        return x
    sign = torch.randint(0, 2, x.shape, generator=generator, dtype=torch.int8).to(device=x.device)
    return x * (1.0 + p * (2.0 * sign.to(x.dtype) - 1.0))


class InputNoise(nn.Module):
    """:func:`multiplicative_noise` with proportion ``p`` in training mode; the identity in evaluation
    mode or with ``p = 0`` (draws from the global random stream, which the trainer seeds per epoch)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = check_noise_level(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        return multiplicative_noise(x, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
