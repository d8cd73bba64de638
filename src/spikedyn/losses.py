"""Read-out losses (spec common.md section 5).

* rate-MSE:     ``L = mean_{b,k} (r_{b,k} - y_{b,k})^2``, ``r = (1/T) sum_t S_out(t)``
* per-step MSE: ``L = mean_{t,b,k} (S_out(t)_{b,k} - y_{b,k})^2`` (target repeated every step)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def target_matrix(y: Tensor, num_classes: int, dtype: torch.dtype) -> Tensor:
    """One-hot ``[B, C]`` from class indices ``[B]``; multi-hot ``[B, C]`` targets pass through."""
    if y.dim() == 1:
        return F.one_hot(y, num_classes).to(dtype)
    return y.to(dtype)


def rate_mse(spikes: Tensor, target: Tensor) -> Tensor:
    """MSE between the firing rate over time and the target (MDN Eq. 4, BRP, PLIF code)."""
    return F.mse_loss(spikes.mean(0), target)


def step_mse(spikes: Tensor, target: Tensor) -> Tensor:
    """MSE between the output at every step and the target (PLIF paper, NRR code)."""
    return F.mse_loss(spikes, target.unsqueeze(0).expand_as(spikes))


LOSSES = {"rate-mse": rate_mse, "step-mse": step_mse}
