"""Input encoders: turn a batch of static samples ``[B, ...]`` into a time-major ``[T, B, ...]``.

* :class:`BernoulliRate` -- ``x_t = 1[p > alpha * u_t]``, ``u_t ~ U[0, 1)`` i.i.d. per step, so
  the spike probability is ``clip(p / alpha, 0, 1)`` (MDN alpha = 1, BRP alpha = 1 or 0.1).
* :class:`Direct` -- the analog value repeated every step (``x_t = p``).

Sequence data (event frames, spectrogram frames) is already per-step: :func:`to_time_major`
moves its time axis from ``[B, T, ...]`` to the front.
"""

from __future__ import annotations

import torch
from torch import Tensor


class Encoder:
    """Base class: ``encoder(x, T) -> [T, *x.shape]``."""

    def __call__(self, x: Tensor, steps: int, generator: torch.Generator | None = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError


class BernoulliRate(Encoder):
    """Random rate code with scale ``alpha``: ``x_t = 1[p > alpha * u_t]``."""

    def __init__(self, alpha: float = 1.0) -> None:
        if alpha <= 0:
            raise ValueError(f"BernoulliRate alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    def __call__(self, x: Tensor, steps: int, generator: torch.Generator | None = None) -> Tensor:
        u = torch.rand((steps, *x.shape), generator=generator, device=x.device, dtype=x.dtype)
        if self.alpha != 1.0:
            u.mul_(self.alpha)
        return torch.gt(x.unsqueeze(0), u, out=u)  # the spikes overwrite the uniform draws

    def __repr__(self) -> str:
        return f"BernoulliRate(alpha={self.alpha})"


class Direct(Encoder):
    """Analog input repeated at every step (a view, no copy)."""

    def __call__(self, x: Tensor, steps: int, generator: torch.Generator | None = None) -> Tensor:
        return x.unsqueeze(0).expand(steps, *x.shape)

    def __repr__(self) -> str:
        return "Direct()"


def to_time_major(x: Tensor) -> Tensor:
    """``[B, T, ...] -> [T, B, ...]`` (contiguous)."""
    return x.transpose(0, 1).contiguous()


ENCODERS = {"rate": BernoulliRate, "direct": Direct}


def make_encoder(name: str, alpha: float = 1.0) -> Encoder:
    """``rate`` (Bernoulli with scale alpha) or ``direct``."""
    if name == "rate":
        return BernoulliRate(alpha)
    if name == "direct":
        return Direct()
    raise ValueError(f"unknown encoder {name!r}; choose 'rate' or 'direct'")
