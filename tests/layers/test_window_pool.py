"""The compiled max and average pooling over non-overlapping windows (spikedyn.layers.pool) against PyTorch's own.

``torch.nn.functional.max_pool2d`` / ``avg_pool2d`` are independent implementations of the same operations,
so the outputs must be equal and the input gradients equal (bit for bit, ``-0.0`` included): the max
pool's gradient shows which element of each window the kernel took as the maximum, the average pool's
values show that it sums in PyTorch's order.  The inputs cover what training
sends through it (spikes, where most windows hold ties), real values, NaN and ``-inf``, maps whose
sides are not a multiple of the window (the rows and columns past the last window get no gradient),
windows of 2 and 3, and leading dimensions.  The bugs these catch: a tie broken toward another element
than PyTorch's (the first in row-major order), NaN not propagated, leftover rows or columns left
uninitialised, an index written for the wrong window.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikedyn import kernels
from spikedyn.kernels import cpu
from spikedyn.layers import Conv2dLIF, WindowAvgPool2d, WindowMaxPool2d, window_avg_pool2d, window_max_pool2d

needs_kernels = pytest.mark.skipif(
    cpu.compiler_missing() is not None, reason=f"the compiled CPU kernels cannot be built here: {cpu.compiler_missing()}"
)


def _input(kind: str, shape: tuple[int, ...]) -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    if kind == "spikes":
        return (torch.rand(shape, generator=g) < 0.4).float()
    x = torch.randn(shape, generator=g)
    if kind == "special":
        x = (2 * x).round() / 2  # many ties between real values
        flat = x.view(-1)
        flat[::7] = float("nan")
        flat[1::5] = float("-inf")
        flat[2::11] = float("inf")
    return x


def _pool_and_grad(pool, x: torch.Tensor, k: int):
    x = x.clone().requires_grad_(True)
    out = pool(x, k)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(3))
    g.view(-1)[::9] = -0.0
    out.backward(g)
    return out.detach(), x.grad


POOLS = {
    "max": (window_max_pool2d, lambda t, k: F.max_pool2d(t, k, stride=k)),
    "avg": (window_avg_pool2d, lambda t, k: F.avg_pool2d(t, k, stride=k)),
}


@needs_kernels
@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize("kind", ["spikes", "real", "special"])
@pytest.mark.parametrize("shape,k", [((6, 5, 28, 28), 2), ((3, 4, 15, 13), 2), ((2, 3, 14, 17), 3), ((5, 9, 9), 2)])
def test_compiled_window_pool_equals_torch_pool(pool, kind, shape, k):
    ours, torchs = POOLS[pool]
    x = _input(kind, shape)
    with kernels.backend("cpp"):
        out, grad = _pool_and_grad(ours, x, k)
    ref_out, ref_grad = _pool_and_grad(torchs, x, k)
    assert torch.equal(out.isnan(), ref_out.isnan())
    assert torch.equal(out.nan_to_num(), ref_out.nan_to_num())
    assert torch.equal(grad, ref_grad)
    assert torch.equal(grad.signbit(), ref_grad.signbit())  # a -0.0 gradient lands as +0.0, as in PyTorch


@needs_kernels
def test_a_max_pool_window_too_large_for_a_byte_index_takes_the_torch_path():
    x = torch.randn(1, 2, 32, 32, requires_grad=True)
    with kernels.backend("cpp"):
        out = window_max_pool2d(x, 16)
    assert out.grad_fn is not None and "WindowMaxPool" not in type(out.grad_fn).__name__
    assert torch.equal(out, F.max_pool2d(x, 16))


@needs_kernels
def test_spike_pooling_routes_the_gradient_to_the_first_spike_of_a_window():
    x = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]], requires_grad=True)  # three tied maxima
    with kernels.backend("cpp"):
        out = window_max_pool2d(x, 2)
    out.backward(torch.tensor([[[[5.0]]]]))
    assert out.item() == 1.0
    assert x.grad.tolist() == [[[[0.0, 5.0], [0.0, 0.0]]]]


@needs_kernels
@pytest.mark.parametrize("pool", ["max", "avg"])
def test_a_second_derivative_through_the_compiled_pool_is_refused(pool):
    x = torch.randn(1, 1, 4, 4, requires_grad=True)
    with kernels.backend("cpp"):
        out = POOLS[pool][0](x, 2)
    (grad,) = torch.autograd.grad((out**2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|twice"):
        grad.sum().backward()


@pytest.mark.parametrize("module,base,reference", [(WindowMaxPool2d, nn.MaxPool2d, F.max_pool2d),
                                                   (WindowAvgPool2d, nn.AvgPool2d, F.avg_pool2d)])
def test_window_pool_modules_are_torch_pools_and_take_only_non_overlapping_windows(module, base, reference):
    pool = module(2)
    assert isinstance(pool, base) and pool.stride == 2
    assert list(pool.parameters()) == [] and list(pool.buffers()) == []
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)  # float64: the PyTorch path
    assert torch.equal(pool(x), reference(x, 2))
    with pytest.raises(ValueError, match="non-overlapping"):
        module(3, stride=2)


def test_conv_block_avg_pools_with_the_window_pool():
    block = Conv2dLIF(1, 4, 3, padding=1, input_size=8, classes=10)  # BRP's block: average pooling
    assert isinstance(block.pool, WindowAvgPool2d)
    torch.manual_seed(0)
    out, spikes = block(torch.rand(3, 2, 1, 8, 8))
    assert torch.equal(out, F.avg_pool2d(spikes.flatten(0, 1), 2).view(3, 2, 4, 4, 4))


def test_conv_block_max_pools_with_the_window_pool():
    block = Conv2dLIF(1, 4, 3, padding=1, input_size=8, classes=10, neuron="plif", bias=False, batch_norm=True,
                      pool="max")
    assert isinstance(block.pool, WindowMaxPool2d)
    torch.manual_seed(0)
    x = torch.rand(3, 2, 1, 8, 8)
    out, spikes = block(x)
    assert torch.equal(out, F.max_pool2d(spikes.flatten(0, 1), 2).view(3, 2, 4, 4, 4))
