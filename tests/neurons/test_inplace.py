"""DecayLIF(inplace=True), PLIF(inplace=True): the spikes written over the input current, nothing else changed.

On every back end (PyTorch loops, compiled CPU loops, and the Triton kernels in Triton's interpreter
or on a GPU) the in-place layer must give the spikes and gradients of the ordinary one, return the
input's own storage, and leave alone what it may not overwrite: a leaf that requires a gradient or a
non-contiguous current.  Catches: spikes written before the step's current was read, a missing
mark_dirty (autograd would then not know the current changed), and in-place writes where they
break autograd."""

from __future__ import annotations

import pytest
import torch

from spikedyn import kernels
from spikedyn.neurons import LIF, PLIF, DecayLIF
from spikedyn.models import MDNNet

BACKENDS = ["torch", "cpp"] + (["triton"] if kernels.triton_importable() and (
    torch.cuda.is_available() or kernels.interpreter_mode()) else [])
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def spikes_and_grads(layer, x0, weight, backend):
    w = torch.randn(x0.shape[-1], x0.shape[-1], generator=torch.Generator().manual_seed(5)).to(x0.device)
    w.requires_grad_(True)
    layer = layer.to(x0.device)
    with kernels.backend(backend):
        current = x0 @ w  # a fresh tensor that is not a leaf, as a synapse's output
        storage = current.data_ptr()
        s = layer(current)
        grads = torch.autograd.grad((s * weight).sum(), [w, *layer.parameters()])
    return s.detach(), grads, s.data_ptr() == storage


LAYERS = {  # the families with an inplace option; PLIF's Triton kernel ignores it
    "decay-lif": (lambda detach_reset, **kw: DecayLIF(detach_reset=detach_reset, **kw), True),
    "plif": (lambda detach_reset, **kw: PLIF(2.0, v_th=0.6, detach_reset=detach_reset, **kw), False),
    "lif-tau": (lambda detach_reset, **kw: LIF(4.0, v_th=0.3, detach_reset=detach_reset, **kw), False),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("family", sorted(LAYERS))
def test_inplace_gives_the_ordinary_layers_spikes_and_gradients(backend, detach_reset, family):
    if backend == "cpp" and DEVICE == "cuda":
        pytest.skip("the compiled loops are for CPU tensors")
    make, on_triton = LAYERS[family]
    torch.manual_seed(0)
    x0 = (1.2 * torch.rand(9, 4, 16)).to(DEVICE)
    weight = torch.randn(9, 4, 16).to(DEVICE)
    ref_s, ref_g, ref_same = spikes_and_grads(make(detach_reset), x0, weight, backend)
    s, g, same = spikes_and_grads(make(detach_reset, inplace=True), x0, weight, backend)
    assert torch.equal(s, ref_s) and 0.05 < float(ref_s.mean()) < 0.95
    for got, want in zip(g, ref_g):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
    # the spikes live in the current's storage only with inplace=True
    assert same == (backend != "triton" or on_triton) and not ref_same


@pytest.mark.parametrize("backend", BACKENDS)
def test_inplace_leaves_a_leaf_and_a_strided_current_alone(backend):
    if backend == "cpp" and DEVICE == "cuda":
        pytest.skip("the compiled loops are for CPU tensors")
    layer = DecayLIF(inplace=True)
    leaf = torch.rand(5, 2, 3, device=DEVICE, requires_grad=True)
    strided = torch.rand(5, 3, 2, device=DEVICE).transpose(1, 2)
    with kernels.backend(backend):
        for current in (leaf, strided):
            before = current.detach().clone()
            s = layer(current)
            assert torch.equal(current.detach(), before)  # untouched
            assert torch.equal(s.detach(), DecayLIF()(before))


def test_the_mdn_net_runs_its_lif_layers_in_place_with_unchanged_results():
    torch.manual_seed(0)
    net = MDNNet(20, 30, 10, neuron="lif-identity")
    assert net.neuron1.inplace and net.neuron2.inplace
    assert MDNNet(20, 30, 10, neuron="2nd-fs").neuron1.inplace
    assert MDNNet(20, 30, 10, neuron="plif").neuron1.inplace
    plain = MDNNet(20, 30, 10, neuron="lif-identity")
    plain.load_state_dict(net.state_dict())
    plain.neuron1.inplace = plain.neuron2.inplace = False
    x = (torch.rand(7, 4, 20) < 0.5).float()
    outs = [m(x) for m in (net, plain)]
    assert torch.equal(outs[0].spikes, outs[1].spikes) and torch.equal(outs[0].taps[0], outs[1].taps[0])
    grads = [torch.autograd.grad(o.spikes.sum() + o.taps[0].sum(), list(m.parameters())) for o, m in zip(outs, (net, plain))]
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind, float_windows", [("lif-identity", 1), ("2nd-fs", 1), ("plif", 1)])
def test_the_mdn_net_keeps_hidden_spikes_as_bytes(kind, float_windows, monkeypatch):
    """LIF, the 2nd-order neurons and PLIF rebuild their spikes in backward (from V, or PLIF's H from its drive D),
    so fc2 keeps the hidden spikes as bytes, and the hidden layer keeps one window-sized float tensor (V, or D;
    the 2nd-order neurons solve their sigmoid input's I from the state instead of keeping it)."""
    import importlib

    monkeypatch.setattr(importlib.import_module("spikedyn.layers.spike_linear"), "BYTES_FROM", 0)  # tiny test spikes too
    net = MDNNet(20, 30, 10, neuron=kind)
    saved = []
    x = (torch.rand(7, 4, 20) < 0.5).float()
    with kernels.backend("cpp"), torch.autograd.graph.saved_tensors_hooks(
        lambda t: saved.append((t.dtype, tuple(t.shape))) or t, lambda t: t
    ):
        net(x)
    assert (torch.uint8, (7, 4, 30)) in saved
    assert saved.count((torch.float32, (7, 4, 30))) == float_windows


@pytest.mark.parametrize("kind", ["2nd-fs", "mdn"])
def test_second_order_inplace_with_the_sigmoid_inside_the_compiled_loops(kind):
    """S over the pre-sigmoid current Z (the node computes sigmoid(Z) over Z and keeps neither): same spikes and
    gradients as the ordinary layer, the output in Z's storage."""
    from spikedyn.neurons import make_neuron

    torch.manual_seed(0)
    x0 = torch.randn(9, 4, 16)
    weight = torch.randn(9, 4, 16)
    ordinary = make_neuron(kind, 16)
    inplace = make_neuron(kind, 16, inplace=True)
    inplace.load_state_dict(ordinary.state_dict())
    results = []
    for layer in (ordinary, inplace):
        ref_s, ref_g, same = spikes_and_grads(layer, x0, weight, "cpp")
        results.append((ref_s, ref_g, same))
    (s0, g0, same0), (s1, g1, same1) = results
    assert torch.equal(s0, s1) and 0.02 < float(s0.mean()) < 0.98
    torch.testing.assert_close(g1, g0, rtol=1e-6, atol=0)
    assert same1 and not same0


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigmoid_input_lif_inplace_never_overwrites_the_sigmoids_output(backend):
    """With the sigmoid input applied by PyTorch (PyTorch loops, Triton), its output is kept by its own
    backward and must not take the spikes; with the sigmoid inside the compiled node, S goes over Z."""
    if backend == "cpp" and DEVICE == "cuda":
        pytest.skip("the compiled loops are for CPU tensors")
    torch.manual_seed(0)
    x0 = torch.randn(9, 4, 16).to(DEVICE)
    weight = torch.randn(9, 4, 16).to(DEVICE)
    ref_s, ref_g, _ = spikes_and_grads(DecayLIF(input_fn="sigmoid"), x0, weight, backend)
    s, g, _ = spikes_and_grads(DecayLIF(input_fn="sigmoid", inplace=True), x0, weight, backend)
    assert torch.equal(s, ref_s) and 0.05 < float(ref_s.mean()) < 0.95
    torch.testing.assert_close(g, ref_g, rtol=1e-6, atol=0)
