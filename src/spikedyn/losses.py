"""Read-out losses (spec common.md section 5).

* rate-MSE:     ``L = mean_{b,k} (r_{b,k} - y_{b,k})^2``, ``r = (1/T) sum_t S_out(t)``
* per-step MSE: ``L = mean_{t,b,k} (S_out(t)_{b,k} - y_{b,k})^2`` (target repeated every step),
  or with per-step targets ``y_t`` (``[T, B, C]``: a frame's own label) and a mask ``m_{t,b}``
  of the steps that count (padded frames are 0)::

      L = sum_{t,b,k} m_{t,b} (o_{t,b,k} - y_{t,b,k})^2 / (C sum_{t,b} m_{t,b})

  i.e. the mean over the valid (step, sample) pairs and the classes; ``m = 1`` everywhere gives
  the plain mean (NRR's non-spiking read-out ``o_t``, spec nrr.md section 3).
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


def step_mse(spikes: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """MSE between the output at every step and the target (PLIF paper, NRR code).

    ``target``: ``[B, C]`` (the same at every step) or ``[T, B, C]`` (per step).  ``mask``
    ``[T, B]`` (bool or 0/1), when given, keeps only the steps that count: the mean runs over the
    valid ``(t, b)`` pairs and the classes (see the module docstring); a batch with no valid step
    gives 0.
    """
    if target.dim() == spikes.dim() - 1:
        target = target.unsqueeze(0).expand_as(spikes)
    elif target.shape != spikes.shape:
        raise ValueError(
            f"per-step targets of shape {tuple(target.shape)} do not match the outputs {tuple(spikes.shape)}; "
            f"expected [B, C] or [T, B, C]"
        )
    if mask is None:
        return F.mse_loss(spikes, target)
    if tuple(mask.shape) != tuple(spikes.shape[:2]):
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not match the outputs {tuple(spikes.shape)}; expected [T, B]")
    weight = mask.to(spikes.dtype).reshape(*mask.shape, *([1] * (spikes.dim() - 2)))
    squared = (spikes - target).pow(2) * weight
    count = weight.sum() * (spikes[0, 0].numel())
    return squared.sum() / count.clamp_min(1.0)


LOSSES = {"rate-mse": rate_mse, "step-mse": step_mse}
