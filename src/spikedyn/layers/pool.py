"""Max and average pooling over non-overlapping windows, with compiled CPU kernels (spike pooling).

PLIF's conv stages end in ``MaxPool2d(2, 2)`` over spikes (spec plif.md section 3), run over the
folded ``[T*B, C, H, W]`` sequence: a window emits 1 iff one of its neurons spiked, and its gradient
goes to that neuron.  :class:`WindowMaxPool2d` is :class:`torch.nn.MaxPool2d` with kernel = stride =
``k`` and no padding:

    out[n, c, i, j] = max_{a, b < k} x[n, c, k i + a, k j + b]

whose backward passes ``dL/dout[n, c, i, j]`` to the first maximum of the window in row-major order
(PyTorch's rule, NaN counted as the maximum) and 0 to the rest.  On float32 CPU tensors it runs the
compiled kernel of :mod:`spikedyn.kernels.cpu` (``cpu_pool.cpp``), which keeps one byte per window for
the position of its maximum instead of an int64 index.  On the PLIF MNIST net's first maps
(``[128, 128, 28, 28]`` spikes, two AVX2 cores) its forward takes 10 ms against PyTorch's 35 ms, forward
and backward 17 against 42 ms, and the net's training step 344 against 400 ms a batch (medians of
alternating rounds; ``benchmarks/plif_cpu_step.py``).  Everywhere else (GPU, float64, bfloat16, the
``torch`` kernel back end) it is exactly ``nn.MaxPool2d``; the values and gradients are the same on both
paths.

:class:`WindowAvgPool2d` is the same for :class:`torch.nn.AvgPool2d` (BRP's conv blocks, PLIF's pooling
ablation), ``out[n, c, i, j] = mean_{a, b < k} x[n, c, k i + a, k j + b]``, each input of a window getting
``dL/dout / k^2``; the compiled kernel sums in PyTorch's order, so the values are equal bit for bit.  On the
same maps it takes 9 ms forward and backward against PyTorch's 56 ms, and it keeps nothing for the backward
(PyTorch's keeps its input).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from ..kernels import use_cpp


def _pooled_shape(x: Tensor, k: int) -> tuple[int, ...]:
    """``[..., H, W]`` pooled over non-overlapping ``k x k`` windows: ``[..., H // k, W // k]``."""
    return (*x.shape[:-2], x.shape[-2] // k, x.shape[-1] // k)


def _check_non_overlapping(layer: str, torch_layer: str, kernel_size: int, stride: int | None) -> None:
    if stride is not None and stride != kernel_size:
        raise ValueError(
            f"{layer} pools non-overlapping windows (stride = kernel_size = {kernel_size}), "
            f"got stride {stride}; use {torch_layer} for overlapping windows"
        )


class _WindowMaxPool2d(torch.autograd.Function):
    """Forward and backward of ``k x k`` max pooling (stride ``k``) on the compiled CPU kernel."""

    @staticmethod
    def forward(ctx, x: Tensor, k: int) -> Tensor:  # type: ignore[override]
        from ..kernels import cpu

        x = x.contiguous()
        shape = _pooled_shape(x, k)
        out = x.new_empty(shape)
        index = torch.empty(shape, dtype=torch.uint8, device=x.device)
        cpu.ops().window_max_pool2d(x, k, out, index)
        ctx.save_for_backward(index)
        ctx.k, ctx.in_shape = k, x.shape
        return out

    @staticmethod
    @once_differentiable  # a second derivative through the kernel raises instead of coming out silently zero
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        from ..kernels import cpu

        (index,) = ctx.saved_tensors
        grad_x = grad_out.new_empty(ctx.in_shape)
        cpu.ops().window_max_pool2d_backward(grad_out.contiguous(), index, ctx.k, grad_x)
        return grad_x, None


class _WindowAvgPool2d(torch.autograd.Function):
    """Forward and backward of ``k x k`` average pooling (stride ``k``) on the compiled CPU kernel."""

    @staticmethod
    def forward(ctx, x: Tensor, k: int) -> Tensor:  # type: ignore[override]
        from ..kernels import cpu

        x = x.contiguous()
        out = x.new_empty(_pooled_shape(x, k))
        cpu.ops().window_avg_pool2d(x, k, out)
        ctx.k, ctx.in_shape = k, x.shape
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        from ..kernels import cpu

        grad_x = grad_out.new_empty(ctx.in_shape)
        cpu.ops().window_avg_pool2d_backward(grad_out.contiguous(), ctx.k, grad_x)
        return grad_x, None


def _compiled(x: Tensor, k: int) -> bool:
    return x.dim() in (3, 4) and use_cpp(x, float64=False) and x.shape[-2] >= k and x.shape[-1] >= k


def window_max_pool2d(x: Tensor, k: int) -> Tensor:
    """``F.max_pool2d(x, k, stride=k)`` of ``[N, C, H, W]`` (or ``[C, H, W]``), on the compiled kernel
    for float32 CPU tensors (see the module docstring); the same values and gradients elsewhere."""
    if _compiled(x, k) and k * k <= 255:  # the kernel keeps a window's position in one byte
        return _WindowMaxPool2d.apply(x, k)
    return F.max_pool2d(x, k, stride=k)


def window_avg_pool2d(x: Tensor, k: int) -> Tensor:
    """``F.avg_pool2d(x, k, stride=k)`` of ``[N, C, H, W]`` (or ``[C, H, W]``), on the compiled kernel for
    float32 CPU tensors; the same values and gradients elsewhere."""
    if _compiled(x, k):
        return _WindowAvgPool2d.apply(x, k)
    return F.avg_pool2d(x, k, stride=k)


class WindowMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d(k, stride=k)`` whose float32 CPU path runs the compiled kernel of :func:`window_max_pool2d`.

    A subclass, so code that asks ``isinstance(layer, nn.MaxPool2d)`` (the NIR export, the net summaries)
    sees a max pool; it has no parameters or buffers, so checkpoints do not change either.
    """

    def __init__(self, kernel_size: int, stride: int | None = None) -> None:
        _check_non_overlapping("WindowMaxPool2d", "nn.MaxPool2d", kernel_size, stride)
        super().__init__(kernel_size, stride=kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        return window_max_pool2d(x, int(self.kernel_size))


class WindowAvgPool2d(nn.AvgPool2d):
    """``nn.AvgPool2d(k, stride=k)`` whose float32 CPU path runs the compiled kernel of :func:`window_avg_pool2d`
    (a subclass, as :class:`WindowMaxPool2d` is of ``nn.MaxPool2d``)."""

    def __init__(self, kernel_size: int, stride: int | None = None) -> None:
        _check_non_overlapping("WindowAvgPool2d", "nn.AvgPool2d", kernel_size, stride)
        super().__init__(kernel_size, stride=kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        return window_avg_pool2d(x, int(self.kernel_size))
