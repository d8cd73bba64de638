"""Spiking blocks: synapse -> neuron layer -> spike tap (-> pooling), over ``[T, B, ...]``.

Each block runs its synapse once over the folded sequence (:func:`~spikedyn.layers.time.fold_time`),
its neuron layer over the whole window, passes the spikes through its
:class:`~spikedyn.layers.taps.SpikeTap` (the tap sits on the spikes *before* pooling, spec brp.md
section 3) and pools what the tap lets through.  A block returns a :class:`BlockOutput`:

* ``out``: what the next layer reads (pooled, and detached when the tap is local);
* ``spikes``: the neuron layer's own spikes ``[T, B, *neuron_shape]``, never detached, which the
  model lists in ``NetOutput.taps`` for the learning rule (hidden blocks only).

A model keeps its blocks in forward order, so collecting ``spikes`` of every block that has a
tap gives ``NetOutput.taps`` in the order of :func:`~spikedyn.layers.taps.spike_taps` (which lists
taps in registration order).

**Static input** (``Conv2dLIF(static=True)``): the input sequence is a static image
repeated at every step (the ``direct`` encoder, ``x_t = x``), and the synapse (conv and batch
norm) runs *once*, on step 0, its output fed to the neurons at every step (PLIF's "learnable
encoder", spec plif.md section 3: in training mode the batch norm then sees that batch once,
not ``T`` times).  The block checks that the steps are identical (free for the encoder's
stride-0 view) and raises ``ValueError`` otherwise, e.g. for Bernoulli-encoded input.

Neuron and tap shapes are fixed at construction (the conv blocks compute their output sizes
from ``input_size``), so a wrongly shaped input fails with a message naming the block.

Blocks:

* :class:`Conv2dLIF`: ``Conv2d`` (+ optional per-step BatchNorm) -> neurons -> tap -> 2x2 pooling
  (BRP: bias, average pooling; PLIF: no bias, BatchNorm, max pooling or none);
  ``static=True`` makes it PLIF's learnable encoder for static images (see above);
* :class:`Conv1dLIF`: ``Conv1d`` -> neurons -> tap -> pooling with kernel = stride = the conv
  kernel size (BRP's spoken-digit net);
* :class:`FCLIF`: flatten -> ``Linear`` -> neurons (-> tap when hidden; no tap for the output layer).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
from torch import Tensor, nn

from ..neurons import NeuronLayer, make_neuron
from ..neurons.base import enable_inplace
from .norm import StepBatchNorm
from .pool import WindowAvgPool2d, WindowMaxPool2d
from .spike_linear import time_linear
from .taps import SpikeTap
from .time import fold_time

POOLS = ("avg", "max")


class BlockOutput(NamedTuple):
    """``out``: input of the next layer; ``spikes``: the block's un-detached spikes ``[T, B, *neuron_shape]``."""

    out: Tensor
    spikes: Tensor


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Length of a convolution's output along one axis: ``floor((size + 2 padding - kernel) / stride) + 1``."""
    out = (size + 2 * padding - kernel) // stride + 1
    if out < 1:
        raise ValueError(
            f"a convolution with kernel {kernel}, stride {stride}, padding {padding} "
            f"does not fit an input of size {size}"
        )
    return out


def pool_output_size(size: int, kernel: int) -> int:
    """Length after pooling with kernel = stride = ``kernel`` and no padding: ``floor(size / kernel)``."""
    out = size // kernel
    if out < 1:
        raise ValueError(f"pooling with kernel {kernel} does not fit a map of size {size}")
    return out


def _positive(name: str, value: int, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class SpikingBlock(nn.Module):
    """Shared part of the blocks: the neuron layer, the optional tap and the shapes."""

    neuron: NeuronLayer
    tap: SpikeTap | None

    def __init__(self, in_shape: Sequence[int], neuron_shape: Sequence[int], out_shape: Sequence[int]) -> None:
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.neuron_shape = tuple(neuron_shape)
        self.out_shape = tuple(out_shape)

    @property
    def neurons(self) -> int:
        """Number of spiking neurons of the block."""
        return math.prod(self.neuron_shape)

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 2 + len(self.in_shape) or tuple(x.shape[2:]) != self.in_shape:
            raise ValueError(
                f"{type(self).__name__} expects input [T, B, {', '.join(map(str, self.in_shape))}], "
                f"got shape {tuple(x.shape)}"
            )

    def _make_neuron(self, neuron: str, fast: bool, neuron_options: dict | None) -> NeuronLayer:
        # its input is the block's own synapse (or norm) output, used once
        return enable_inplace(make_neuron(neuron, self.neuron_shape, fast=fast, **dict(neuron_options or {})))


class _ConvLIF(SpikingBlock):
    """Conv{1,2}d (+ StepBatchNorm) -> neurons -> tap -> pooling, for ``dims`` spatial axes."""

    _CONVS = {1: nn.Conv1d, 2: nn.Conv2d}
    _POOLS = {
        (1, "avg"): nn.AvgPool1d, (1, "max"): nn.MaxPool1d, (2, "avg"): WindowAvgPool2d, (2, "max"): WindowMaxPool2d,
    }

    def __init__(
        self, dims: int, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int, *,
        input_size: int | Sequence[int], classes: int, neuron: str, bias: bool, batch_norm: bool,
        pool: str | None, pool_size: int, fast: bool, neuron_options: dict | None, static: bool = False,
    ) -> None:
        size = (input_size,) * dims if isinstance(input_size, int) else tuple(input_size)
        if len(size) != dims:
            raise ValueError(f"input_size of a {dims}-D convolution needs {dims} values, got {input_size!r}")
        for name, value, low in (("in_channels", in_channels, 1), ("out_channels", out_channels, 1),
                                 ("kernel_size", kernel_size, 1), ("stride", stride, 1), ("padding", padding, 0)):
            _positive(name, value, low)
        for s in size:
            _positive("input_size", s)
        if pool is not None and pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS} or None, got {pool!r}")
        conv_size = tuple(conv_output_size(s, kernel_size, stride, padding) for s in size)
        if pool is not None:
            _positive("pool_size", pool_size)
            out_size = tuple(pool_output_size(s, pool_size) for s in conv_size)
        else:
            out_size = conv_size
        super().__init__((in_channels, *size), (out_channels, *conv_size), (out_channels, *out_size))
        self.conv = self._CONVS[dims](in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        self.norm = StepBatchNorm(out_channels, dims=dims) if batch_norm else None
        self.neuron = self._make_neuron(neuron, fast, neuron_options)
        self.tap = SpikeTap(self.neuron_shape, classes)
        self.pool = self._POOLS[dims, pool](pool_size, stride=pool_size) if pool is not None else None
        self.static = bool(static)

    def _check_static(self, x: Tensor) -> None:
        """Raise unless every step of ``x`` equals step 0 (a static input repeated over time)."""
        if x.shape[0] < 2 or x.stride(0) == 0:  # one step, or the direct encoder's repeated view
            return
        if not torch.equal(x[1:], x[:1].expand_as(x[1:])):
            raise ValueError(
                f"{type(self).__name__}(static=True) runs its convolution once on a static input repeated "
                f"over time (the 'direct' encoder), but the {x.shape[0]} steps of its input differ; feed the "
                f"image with the direct encoder (spikedyn train --encoder direct), or build the block with "
                f"static=False to convolve every step"
            )

    def _synapse(self, x: Tensor) -> Tensor:
        """The convolution over the folded ``[T*B, C_in, ...]`` maps, unfolded again.

        A 2-D convolution with one input channel, trained on a float32 CPU tensor that needs no gradient (a
        first layer), runs in channels_last and hands NCHW maps to the neurons: oneDNN's weight gradient of such
        a convolution is much slower in NCHW (BRP's MNIST layer, 1000 maps of 28x28, 5x5 -> 32 channels:
        forward and the weight gradient 89 against 118 ms; ``benchmarks/plif_cpu_step.py``).  The output differs from
        the NCHW algorithm's by float rounding only, the weight gradient not at all on that layer.
        """
        conv = self.conv
        if (isinstance(conv, nn.Conv2d) and conv.in_channels == 1 and x.device.type == "cpu"
                and x.dtype == torch.float32 and conv.weight.dtype == torch.float32 and not x.requires_grad
                and conv.weight.requires_grad and torch.is_grad_enabled()):
            T, B = x.shape[:2]
            # input strides in channels_last order (with one channel, NCHW strides leave the layout ambiguous)
            # make oneDNN take its channels_last path; the module call keeps its hooks
            z = conv(x.reshape(T * B, *x.shape[2:]).clone(memory_format=torch.channels_last)).contiguous()
            return z.reshape(T, B, *z.shape[1:])
        return fold_time(conv, x)

    def forward(self, x: Tensor) -> BlockOutput:
        """``x`` ``[T, B, C_in, *input_size]`` -> pooled spikes ``[T, B, *out_shape]`` and the tap's spikes."""
        self._check_input(x)
        if self.static:
            self._check_static(x)
            z = self._synapse(x[:1])
        else:
            z = self._synapse(x)
        if self.norm is not None:
            z = self.norm(z)
        if self.static:
            z = z.expand(x.shape[0], *z.shape[1:])  # the encoder's output, repeated at every step
        spikes = self.neuron(z)
        out = self.tap(spikes)
        if self.pool is not None:
            out = fold_time(self.pool, out)
        return BlockOutput(out, spikes)


class Conv2dLIF(_ConvLIF):
    """``Conv2d(k x k, stride, padding)`` -> [StepBatchNorm] -> neurons -> tap -> 2x2 pooling.

    ``input_size`` is the ``(H, W)`` of the input map (an int for square maps).  The neuron layer
    and tap have shape ``(out_channels, H', W')`` with ``H' = floor((H + 2 padding - k) / stride) + 1``;
    the output is ``(out_channels, H' // pool_size, W' // pool_size)``.  Defaults are BRP's block
    (bias, BRP's decay-LIF cell ``lif-identity``, ``AvgPool2d(2, 2)``); PLIF's is
    ``bias=False, batch_norm=True, neuron="plif", pool="max"`` (or ``pool=None`` inside a stage).
    ``neuron_options`` go to :func:`~spikedyn.neurons.make_neuron`; ``classes`` sizes the tap's
    projection.  ``static=True``: the conv and batch norm run once on a static input repeated over
    time (PLIF's learnable encoder, see the module docstring).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0, *,
        input_size: int | Sequence[int], classes: int, neuron: str = "lif-identity", bias: bool = True,
        batch_norm: bool = False, pool: str | None = "avg", pool_size: int = 2, fast: bool = True,
        neuron_options: dict | None = None, static: bool = False,
    ) -> None:
        super().__init__(
            2, in_channels, out_channels, kernel_size, stride, padding, input_size=input_size, classes=classes,
            neuron=neuron, bias=bias, batch_norm=batch_norm, pool=pool, pool_size=pool_size, fast=fast,
            neuron_options=neuron_options, static=static,
        )


class Conv1dLIF(_ConvLIF):
    """``Conv1d(k, stride, padding)`` -> [StepBatchNorm] -> neurons -> tap -> pooling over ``pool_size``.

    ``input_size`` is the input length ``L``; neurons ``(out_channels, L')`` with
    ``L' = floor((L + 2 padding - k) / stride) + 1``; output ``(out_channels, L' // pool_size)``.
    ``pool_size`` defaults to the conv kernel size (BRP: ``AvgPool1d(k)``, kernel = stride = k).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0, *,
        input_size: int, classes: int, neuron: str = "lif-identity", bias: bool = True, batch_norm: bool = False,
        pool: str | None = "avg", pool_size: int | None = None, fast: bool = True, neuron_options: dict | None = None,
    ) -> None:
        super().__init__(
            1, in_channels, out_channels, kernel_size, stride, padding, input_size=input_size, classes=classes,
            neuron=neuron, bias=bias, batch_norm=batch_norm, pool=pool,
            pool_size=kernel_size if pool_size is None else pool_size, fast=fast, neuron_options=neuron_options,
        )


class FCLIF(SpikingBlock):
    """Flatten -> ``Linear(in_features, out_features)`` -> neurons (-> tap if ``hidden``).

    The input's trailing axes are flattened (the Flatten between conv and FC layers), so
    ``[T, B, C, H, W]`` with ``C*H*W = in_features`` is accepted as well as ``[T, B, in_features]``.
    A hidden block (default) has a tap and needs ``classes``; the output block
    (``hidden=False``) has none, and its ``out`` is its spikes.
    """

    def __init__(
        self, in_features: int, out_features: int, *, hidden: bool = True, classes: int | None = None,
        neuron: str = "lif-identity", bias: bool = True, fast: bool = True, neuron_options: dict | None = None,
    ) -> None:
        _positive("in_features", in_features)
        _positive("out_features", out_features)
        super().__init__((in_features,), (out_features,), (out_features,))
        if hidden and classes is None:
            raise ValueError("a hidden FCLIF block has a spike tap and needs classes= (the size of its projection)")
        self.hidden = hidden
        self.fc = nn.Linear(in_features, out_features, bias=bias)
        self.neuron = self._make_neuron(neuron, fast, neuron_options)
        self.tap = SpikeTap(out_features, classes) if hidden else None

    def forward(self, x: Tensor) -> BlockOutput:
        """``x`` ``[T, B, ...]`` with ``in_features`` values per step -> spikes ``[T, B, out_features]``."""
        if x.dim() >= 3:
            x = x.flatten(2)
        self._check_input(x)
        spikes = self.neuron(time_linear(self.fc, x))  # not a view: the neuron may write its spikes over it
        out = self.tap(spikes) if self.tap is not None else spikes
        return BlockOutput(out, spikes)
