"""Voting read-out: each class is represented by a group of output neurons (PLIF).

The PLIF networks end in ``10 * C`` spiking neurons; the score of class ``c`` is the mean of
neurons ``[10 c, 10 c + 10)`` (``AvgPool1d(10, 10)`` in the authors' code, spec plif.md
section 3).  :class:`Voting` averages consecutive groups over the last axis, so it applies to
the output spikes ``[T, B, G * C]`` as well as to their rate ``[B, G * C]``.
"""

from __future__ import annotations

from torch import Tensor, nn


class Voting(nn.Module):
    """``[..., group * C] -> [..., C]``: the mean of each block of ``group`` consecutive neurons."""

    def __init__(self, group: int) -> None:
        super().__init__()
        if not isinstance(group, int) or group < 1:
            raise ValueError(f"voting group size must be a positive integer, got {group!r}")
        self.group = group

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[-1]
        if n % self.group:
            raise ValueError(
                f"Voting with groups of {self.group} got {n} neurons, which is not a multiple of {self.group}"
            )
        return x.unflatten(-1, (n // self.group, self.group)).mean(-1)

    def extra_repr(self) -> str:
        return f"group={self.group}"
