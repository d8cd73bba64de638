"""Batch normalisation of a time-major sequence with the statistics of each step (PLIF).

The PLIF code runs its ``BatchNorm2d`` once per time step in training mode, so every step is
normalised with its own batch mean and variance, and the running statistics are updated ``T``
times per batch (spec plif.md section 3).  :class:`StepBatchNorm` does that; in evaluation mode
the running statistics are the same for every step, so it runs once over the folded sequence.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .time import fold_time

_BATCH_NORMS = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}


class StepBatchNorm(nn.Module):
    """``BatchNorm{1,2}d(num_features)`` over ``[T, B, C, ...]``, per-step statistics in training.

    ``dims=2`` normalises ``[T, B, C, H, W]`` (after a Conv2d), ``dims=1`` ``[T, B, C, L]`` or
    ``[T, B, C]``.  Extra keyword arguments (``eps``, ``momentum``, ``affine``) go to the PyTorch
    layer, which is the attribute ``bn``.
    """

    def __init__(self, num_features: int, dims: int = 2, **options) -> None:
        super().__init__()
        if dims not in _BATCH_NORMS:
            raise ValueError(f"StepBatchNorm dims must be 1 or 2, got {dims}")
        self.bn = _BATCH_NORMS[dims](num_features, **options)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 3:
            raise ValueError(f"StepBatchNorm expects a time-major sequence [T, B, C, ...], got shape {tuple(x.shape)}")
        if self.training:
            return torch.stack([self.bn(x_t) for x_t in x])
        return fold_time(self.bn, x)
