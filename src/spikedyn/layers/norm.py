"""Batch normalisation of a time-major sequence with the statistics of each step (PLIF).

The PLIF code runs its ``BatchNorm2d`` once per time step in training mode, so every step is
normalised with its own batch mean and variance, and the running statistics are updated ``T``
times per batch (spec plif.md section 3).  :class:`StepBatchNorm` does that (the same kernel,
called per step, writing into one buffer for the whole window); in evaluation mode the running
statistics are the same for every step, so it runs once over the folded sequence.  On the CPU the
backward runs on a compiled kernel (``spikedyn.kernels.cpu``) that writes each step's input gradient
straight into the window's buffer (PyTorch's ``out=`` form of the per-step backward copies it there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..kernels import use_cpp
from .time import fold_time

_BATCH_NORMS = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}


class _StepBatchNormTrain(torch.autograd.Function):
    """Training-mode batch norm of every step of ``[T, B, C, ...]`` with that step's statistics.

    The same kernel as ``T`` calls of the PyTorch layer (``native_batch_norm``, running statistics
    updated ``T`` times in order), but each step's output is written straight into one ``[T, ...]``
    buffer and each step's input gradient into another: no stacking of the steps forward and none
    of their gradients backward (two full copies of the activations per layer and step).
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor | None, bias: Tensor | None, bn: nn.Module):  # type: ignore[override]
        T = x.shape[0]
        x = x.contiguous()
        y = torch.empty_like(x)
        track = bn.track_running_stats and bn.running_mean is not None
        # statistics in the parameters' precision (a bfloat16 input under autocast keeps float32 ones)
        stat_dtype = weight.dtype if weight is not None else (bn.running_mean.dtype if track else x.dtype)
        save_mean = x.new_empty((T, x.shape[2]), dtype=stat_dtype)
        save_invstd = x.new_empty((T, x.shape[2]), dtype=stat_dtype)
        for t in range(T):
            momentum = 0.0 if bn.momentum is None else bn.momentum
            if track:
                bn.num_batches_tracked.add_(1)
                if bn.momentum is None:  # cumulative moving average, as nn.BatchNorm
                    momentum = 1.0 / float(bn.num_batches_tracked)
            torch.ops.aten.native_batch_norm.out(
                x[t], weight, bias, bn.running_mean if track else None, bn.running_var if track else None,
                True, momentum, bn.eps, out=y[t], save_mean=save_mean[t], save_invstd=save_invstd[t],
            )
        ctx.save_for_backward(x, weight, save_mean, save_invstd)
        ctx.eps = bn.eps
        return y

    @staticmethod
    def backward(ctx, grad_y: Tensor):  # type: ignore[override]
        x, weight, save_mean, save_invstd = ctx.saved_tensors
        T, C = x.shape[0], x.shape[2]
        # all three computed (the out= form takes no undefined outputs); the unwanted ones are dropped
        grad_x = torch.empty_like(x)
        grad_w = save_mean.new_empty((T, C))
        grad_b = save_mean.new_empty((T, C))
        if use_cpp(x, float64=False) and save_mean.dtype == x.dtype and (weight is None or weight.dtype == x.dtype):
            # every step straight into grad_x (the out= form below computes into a fresh tensor and copies it)
            from ..kernels import cpu

            cpu.ops().step_batch_norm_backward(
                grad_y.contiguous(), x, weight, save_mean, save_invstd, grad_x, grad_w, grad_b
            )
        else:
            for t in range(T):
                torch.ops.aten.native_batch_norm_backward.out(
                    grad_y[t], x[t], weight, None, None, save_mean[t], save_invstd[t], True, ctx.eps,
                    [True, True, True], out0=grad_x[t], out1=grad_w[t], out2=grad_b[t],
                )
        wanted = ctx.needs_input_grad
        return (grad_x if wanted[0] else None, grad_w.sum(0) if weight is not None and wanted[1] else None,
                grad_b.sum(0) if weight is not None and wanted[2] else None, None)


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
            self.bn._check_input_dim(x[0])
            F._verify_batch_size(x[0].size())
            return _StepBatchNormTrain.apply(x, self.bn.weight, self.bn.bias, self.bn)
        return fold_time(self.bn, x)
