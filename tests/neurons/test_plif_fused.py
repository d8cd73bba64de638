"""PLIF's fused whole-window node on the inputs the conv nets give it (tests/neurons/test_fast_path.py
covers the options on small layers)."""

import pytest
import torch

from spikedyn.neurons import make_neuron


def grads(fast: bool, x: torch.Tensor):
    torch.manual_seed(0)
    layer = make_neuron("plif", tuple(x.shape[2:]), fast=fast)
    x = x.detach().requires_grad_()
    spikes = layer(x.expand(4, *x.shape[1:]) if x.shape[0] == 1 else x)
    weights = torch.randn(spikes.shape, generator=torch.Generator().manual_seed(1))
    (spikes * weights).sum().backward()
    return spikes.detach(), x.grad, layer.a.grad


@pytest.mark.parametrize("static", [False, True])
def test_fused_plif_matches_reference_on_conv_maps(static):
    """Catches a fused PLIF whose spikes, input gradient or dL/da (the sum over the whole window, where
    terms of both signs meet) leave the reference path on [T, B, C, H, W] maps, also when the input is
    one step expanded over time (stride 0: the static encoder's output)."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1 if static else 6, 3, 4, 5, 5, generator=g) * 2
    s_ref, gx_ref, ga_ref = grads(False, x)
    s_fast, gx_fast, ga_fast = grads(True, x)
    assert 0 < s_ref.mean() < 1
    assert torch.equal(s_fast, s_ref)
    torch.testing.assert_close(gx_fast, gx_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ga_fast, ga_ref, rtol=1e-4, atol=1e-6)


def test_second_backward_through_the_fused_node_is_refused():
    """Catches a silent wrong gradient: backward reuses the saved potentials in place, so a second
    backward through the same graph must fail loudly (autograd's version check), not return garbage."""
    layer = make_neuron("plif", 4)
    x = torch.randn(5, 2, 4, requires_grad=True)
    out = layer(x * 2 + 0.5).sum()
    out.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()
