"""Time folding: run a stateless layer once over a whole time-major sequence.

Synapses (Linear, Conv1d/2d, BatchNorm in eval mode, pooling, Flatten) have no state across
time steps, so applying them to every step of ``[T, B, ...]`` is the same as applying them once
to the sequence folded into the batch axis, ``[T*B, ...]``, and unfolding the result.  Only the
neuron layers loop over time.

* :func:`fold_time` applies a layer this way (the function form, used inside the blocks);
* :class:`TimeFolded` wraps a layer so it can sit in ``nn.Sequential`` over ``[T, B, ...]``.

**Spike pooling** needs nothing more: max pooling of spikes is ``TimeFolded(nn.MaxPool2d(2))``
(each step's map is pooled on its own, a window emits 1 iff one of its neurons spiked), and
average pooling ``TimeFolded(nn.AvgPool2d(2))`` passes the fraction of spiking neurons on, as
BRP does.  Layers whose behaviour couples steps must not be folded: dropout with one mask for
all steps is :class:`~spikedyn.layers.dropout.TimeSharedDropout`, and batch normalisation with
the statistics of each step is :class:`~spikedyn.layers.norm.StepBatchNorm` (a folded
BatchNorm in train mode normalises with the statistics of all steps together).
"""

from __future__ import annotations

import math

from torch import Tensor, nn


def fold_time(layer: nn.Module, x: Tensor) -> Tensor:
    """``layer`` applied to every step of ``x`` ``[T, B, ...]``, computed once on ``[T*B, ...]``."""
    if x.dim() < 3:
        raise ValueError(
            f"{type(layer).__name__} over time expects a time-major sequence [T, B, ...] with at least one "
            f"feature axis, got shape {tuple(x.shape)}"
        )
    T, B = x.shape[:2]
    y = layer(x.reshape(T * B, *x.shape[2:]))
    return y.reshape(T, B, *y.shape[1:])


class TimeFolded(nn.Module):
    """A stateless layer applied to every step of a ``[T, B, ...]`` sequence (time folded into batch)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        """``[T, B, *in] -> [T, B, *out]`` where ``module`` maps ``[N, *in] -> [N, *out]``."""
        return fold_time(self.module, x)


def to_step_shape(x: Tensor, shape: tuple[int, ...], owner: str) -> Tensor:
    """``[T, B, ...]`` holding ``prod(shape)`` values per step -> ``[T, B, *shape]`` (a view when it can be).

    ``owner`` names the network in the error for input of the wrong size.
    """
    if x.dim() < 3:
        raise ValueError(f"{owner} expects a time-major sequence [T, B, ...], got shape {tuple(x.shape)}")
    if tuple(x.shape[2:]) == tuple(shape):
        return x
    if math.prod(x.shape[2:]) != math.prod(shape):
        raise ValueError(
            f"{owner} reads {math.prod(shape)} values per step (input shape {list(shape)}), "
            f"got input of shape {tuple(x.shape)}"
        )
    return x.reshape(*x.shape[:2], *shape)
