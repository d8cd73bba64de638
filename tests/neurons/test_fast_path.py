"""The fused whole-window autograd nodes against the per-step autograd reference."""

import pytest
import torch

from spikedyn.neurons import make_neuron

KINDS = ["lif", "lif-identity", "plif", "lif-tau", "mdn", "2nd-fs", "2nd-rs", "2nd-sds", "2nd-wds"]


def drive(kind: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    scale = {"plif": 2.0, "lif-tau": 2.0}.get(kind, 1.0)
    return (torch.randn(25, 6, 40, generator=g, dtype=torch.float64) * scale).requires_grad_()


def run_both(kind: str, **kwargs):
    results = []
    for fast in (False, True):
        torch.manual_seed(0)
        layer = make_neuron(kind, 40, fast=fast, **kwargs).double()
        with torch.no_grad():  # make learnable theta heterogeneous across neurons
            if kind == "mdn":
                layer.theta.add_(0.01 * torch.randn_like(layer.theta))
        x = drive(kind)
        spikes = layer(x)
        weights = torch.linspace(-1, 1, spikes.numel(), dtype=torch.float64).reshape(spikes.shape)
        (spikes * weights).sum().backward()
        grads = {n: p.grad.clone() for n, p in layer.named_parameters()}
        results.append((spikes.detach(), x.grad.clone(), grads))
    return results


@pytest.mark.parametrize("kind", KINDS)
def test_fast_path_matches_reference(kind):
    (s_ref, gx_ref, gp_ref), (s_fast, gx_fast, gp_fast) = run_both(kind)
    assert torch.equal(s_ref, s_fast)
    assert s_ref.sum() > 0, "the drive must make the neurons fire"
    torch.testing.assert_close(gx_fast, gx_ref, rtol=1e-5, atol=1e-9)
    assert gp_ref.keys() == gp_fast.keys()
    for name in gp_ref:
        torch.testing.assert_close(gp_fast[name], gp_ref[name], rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize(
    "kind, kwargs",
    [
        ("lif-identity", {"detach_reset": True}),
        ("plif", {"detach_reset": False}),
        ("plif", {"v_reset": -0.3}),
        ("plif", {"v_reset": 0.2, "detach_reset": False}),
        ("plif", {"v_reset": 1.0, "v_th": 1.5}),  # V_reset = 1: the fused loops' "V_reset != 0" branches
    ],
)
def test_fast_path_matches_reference_with_other_reset_gradient(kind, kwargs):
    (s_ref, gx_ref, gp_ref), (s_fast, gx_fast, gp_fast) = run_both(kind, **kwargs)
    assert torch.equal(s_ref, s_fast)
    torch.testing.assert_close(gx_fast, gx_ref, rtol=1e-5, atol=1e-9)
    for name in gp_ref:
        torch.testing.assert_close(gp_fast[name], gp_ref[name], rtol=1e-5, atol=1e-9)


def test_reset_gradient_option_changes_gradients():
    (_, gx_attached, _), _ = run_both("plif", detach_reset=False)
    (_, gx_detached, _), _ = run_both("plif", detach_reset=True)
    assert not torch.allclose(gx_attached, gx_detached)


@pytest.mark.parametrize("kind", ["lif", "plif", "mdn"])
def test_fast_path_handles_conv_shaped_neurons(kind):
    shape = (3, 4, 4)
    layer = make_neuron(kind, shape)
    x = torch.randn(5, 2, *shape, requires_grad=True)
    out = layer(x)
    assert out.shape == x.shape
    out.sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("kind", ["lif", "plif", "mdn"])
@pytest.mark.parametrize("T", [1, 2])
def test_fast_path_on_very_short_windows(kind, T):
    grads = []
    for fast in (False, True):
        torch.manual_seed(0)
        layer = make_neuron(kind, 5, fast=fast).double()
        x = (torch.randn(T, 3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2).requires_grad_()
        layer(x).sum().backward()
        grads.append([x.grad] + [p.grad for p in layer.parameters()])
    for ref, fast in zip(*grads):
        torch.testing.assert_close(fast, ref)


def test_learnable_mdn_inference_without_grad_matches_reference():
    torch.manual_seed(0)
    layer = make_neuron("mdn", 8)
    x = torch.randn(12, 3, 8) * 2
    with torch.no_grad():
        fast = layer(x)
        layer.fast = False
        ref = layer(x)
    assert torch.equal(fast, ref)
