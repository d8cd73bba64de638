"""spike_linear against PyTorch's own Linear: the same output and gradients, the spikes saved as bytes.

Catches: a weight gradient summed over the wrong rows or chunks (e.g. the last, shorter chunk dropped),
a missing bias or input gradient, spikes saved as floats after all, and an output that is a view (a
neuron layer after it could then not write over it in place)."""

from __future__ import annotations

import importlib

import pytest
import torch
from torch import nn

from spikedyn.layers import spike_linear, time_linear

spike_linear_module = importlib.import_module("spikedyn.layers.spike_linear")  # the module (the package exports the function)


def saved_dtypes(fn):
    """The dtypes of every tensor autograd saves while ``fn()`` runs, and ``fn()``'s result."""
    dtypes = []

    def pack(t):
        dtypes.append(t.dtype)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return dtypes, out


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("rows", [1, 7, 29])  # with chunks of 8 rows (below): one short chunk, and a last short one
def test_spike_linear_equals_nn_linear(bias, rows, monkeypatch):
    monkeypatch.setattr(spike_linear_module, "CHUNK_BYTES", 8 * 13 * 4)  # 8 rows of 13 float32 inputs a chunk
    monkeypatch.setattr(spike_linear_module, "BYTES_FROM", 0)  # bytes however small the test's spikes
    torch.manual_seed(0)
    layer = nn.Linear(13, 6, bias=bias)
    spikes = torch.randint(0, 3, (rows, 2, 13)).float()  # 0 / 1 / 2, as NRR's spikes
    weight = torch.randn(rows, 2, 6)
    x_ref, x_ours = spikes.clone().requires_grad_(True), spikes.clone().requires_grad_(True)
    ref = layer(x_ref)
    ref_grads = torch.autograd.grad((ref * weight).sum(), [x_ref, *layer.parameters()])
    dtypes, ours = saved_dtypes(lambda: spike_linear(layer, x_ours))
    ours_grads = torch.autograd.grad((ours * weight).sum(), [x_ours, *layer.parameters()])
    assert torch.equal(ours, ref)
    for got, want in zip(ours_grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)  # the weight gradient summed in chunks
    assert torch.uint8 in dtypes and torch.float32 in dtypes  # the spikes as bytes, the weight as it is
    assert sum(d == torch.float32 for d in dtypes) == 1  # nothing but the weight kept in float
    assert ours._base is None  # not a view: a neuron layer may write over it in place


def test_spike_linear_is_plain_linear_without_gradient_or_under_autocast():
    layer = nn.Linear(4, 3)
    spikes = (torch.rand(5, 2, 4) < 0.5).float()
    with torch.no_grad():
        assert torch.equal(spike_linear(layer, spikes), layer(spikes))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        dtypes, out = saved_dtypes(lambda: spike_linear(layer, spikes))
        assert out.dtype == torch.bfloat16 and torch.uint8 not in dtypes


def test_time_linear_equals_nn_linear_and_returns_a_tensor_of_its_own():
    torch.manual_seed(0)
    layer = nn.Linear(13, 6)
    x = torch.randn(5, 3, 13)  # not spikes: kept as floats
    weight = torch.randn(5, 3, 6)
    ref = layer(x)
    assert ref._base is not None  # what F.linear gives on a 3-D input: a view, which a neuron may not overwrite
    ref_grads = torch.autograd.grad((ref * weight).sum(), list(layer.parameters()))
    dtypes, ours = saved_dtypes(lambda: time_linear(layer, x))
    ours_grads = torch.autograd.grad((ours * weight).sum(), list(layer.parameters()))
    assert torch.equal(ours, ref) and ours._base is None
    assert dtypes == [torch.float32, torch.float32]  # the input (by reference) and the weight
    for got, want in zip(ours_grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_small_spike_tensors_stay_float():
    """Below BYTES_FROM the conversions cost more time than the memory is worth: the spikes are kept as floats."""
    layer = nn.Linear(13, 6)
    spikes = (torch.rand(5, 2, 13) < 0.5).float()
    dtypes, _ = saved_dtypes(lambda: spike_linear(layer, spikes))
    assert torch.uint8 not in dtypes and spikes.numel() * 4 < spike_linear_module.BYTES_FROM
