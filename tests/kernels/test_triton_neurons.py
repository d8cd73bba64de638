"""The fused Triton kernels against the per-step reference path, for every neuron family and option.

Without a GPU the kernels run in Triton's interpreter (``tests/conftest.py`` sets ``TRITON_INTERPRET=1``
when no CUDA device is visible); on a GPU the same tests run on the device.  Each case checks identical
spikes and input / dynamics gradients within 1e-5 relative of the reference (``fast=False``), whose own
values are pinned by the spec's traces (``tests/neurons/test_golden_traces.py``); the spec's spike counts
are also checked on the kernels directly.

The bugs these tests catch: a kernel that drops the reset-flag gradient or the ``(V_reset - H) dS/dH`` term,
reads theta at the wrong column (per neuron vs per batch slot), mis-masks the last partial block, or runs
the backward recursion in the wrong direction.
"""

from __future__ import annotations

import pytest
import torch

from spikedyn import kernels
from spikedyn.neurons import DecayLIF, ParametricLIF, SecondOrder, make_neuron
from spikedyn.surrogate import ATan, RectWindow, Sigmoid

pytest.importorskip("triton", reason="the Triton kernel tests need the triton package (pip install triton)")

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu" and not kernels.interpreter_mode():
    pytest.skip("no GPU and TRITON_INTERPRET is not set: the kernels cannot run here", allow_module_level=True)

CASES = {
    "decay-lif": lambda shape: DecayLIF(shape=shape),
    "decay-lif-detach": lambda shape: DecayLIF(detach_reset=True, shape=shape),
    "decay-lif-sigmoid-input": lambda shape: DecayLIF(input_fn="sigmoid", shape=shape),
    "decay-lif-atan": lambda shape: DecayLIF(surrogate=ATan(2.0), shape=shape),
    "decay-lif-sigmoid-surrogate": lambda shape: DecayLIF(surrogate=Sigmoid(4.0), shape=shape),
    "decay-lif-rect-wide": lambda shape: DecayLIF(surrogate=RectWindow(1.0, 0.5), decay=0.7, v_th=0.3, shape=shape),
    "plif": lambda shape: ParametricLIF(tau=2.0, shape=shape),
    "plif-tau16": lambda shape: ParametricLIF(tau=16.0, shape=shape),
    "plif-paper-reset-gradient": lambda shape: ParametricLIF(detach_reset=False, v_reset=0.2, shape=shape),
    "plif-rect": lambda shape: ParametricLIF(surrogate=RectWindow(0.5, 1.0), detach_reset=False, shape=shape),
    "lif-tau": lambda shape: ParametricLIF(tau=2.0, learnable=False, shape=shape),
    "mdn": lambda shape: make_neuron("mdn", shape),
    "2nd-fs": lambda shape: make_neuron("2nd-fs", shape),
    "2nd-rs": lambda shape: make_neuron("2nd-rs", shape),
    "2nd-sds": lambda shape: make_neuron("2nd-sds", shape),
    "mdn-batch-slots": lambda shape: SecondOrder(shape, theta_slots=3),
    "mdn-atan": lambda shape: SecondOrder(shape, surrogate=ATan(2.0)),
}
#: input scale per family: enough spikes and sub-threshold values for every gradient path to matter
SCALE = {"decay": 0.8, "plif-tau16": 6.0, "plif": 2.0, "lif-": 2.0, "mdn": 2.0, "2nd": 2.0}


def scale_of(name: str) -> float:
    return next(v for k, v in SCALE.items() if name.startswith(k))


def compare(layer, x: torch.Tensor) -> None:
    """Identical spikes and gradients within 1e-5 relative: Triton kernels vs the per-step reference."""
    layer = layer.to(DEVICE)
    x = x.to(DEVICE)
    params = [p for p in layer.parameters() if p.requires_grad]
    weight = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(DEVICE)

    def spikes_and_grads(run):
        xg = x.clone().requires_grad_()
        s = run(xg)
        grads = torch.autograd.grad((s * weight).sum(), [xg, *params])
        return s.detach(), grads

    ref_s, ref_g = spikes_and_grads(lambda xg: layer.run(xg).spikes)
    with kernels.backend("triton"):
        assert kernels.use_triton(x, getattr(layer, "surrogate", None))
        tri_s, tri_g = spikes_and_grads(layer)
    assert torch.equal(tri_s, ref_s)
    assert 0.02 < float(ref_s.mean()) < 0.98  # the case exercises both spiking and silent neurons
    for name, r, t in zip(["input", *[n for n, p in layer.named_parameters() if p.requires_grad]], ref_g, tri_g):
        assert r.abs().max() > 0, f"{name}: the reference gradient is zero, the case tests nothing"
        torch.testing.assert_close(t, r, rtol=1e-5, atol=1e-5 * float(r.abs().max()), msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel_matches_reference_on_an_mlp_layer(name):
    x = scale_of(name) * torch.randn(13, 3, 37, generator=torch.Generator().manual_seed(0)) + 0.3
    compare(CASES[name](37), x)


@pytest.mark.parametrize("name", ["decay-lif", "plif", "mdn"])
def test_kernel_covers_several_blocks_of_a_conv_map(name):
    # 3 x 5 x 23 x 17 = 5865 neurons per step: several kernel blocks, the last one partial
    x = scale_of(name) * torch.randn(6, 3, 5, 23, 17, generator=torch.Generator().manual_seed(2)) + 0.3
    compare(CASES[name]((5, 23, 17)), x)


def test_kernels_give_the_specs_spike_counts():
    """Spike counts over T = 20 for constant z (spec mdn.md 2.4), computed by the kernels."""
    counts = {"2nd-fs": [0, 0, 0, 10, 20, 20], "2nd-rs": [0, 0, 0, 6, 12, 14], "lif": [0, 0, 0, 10, 20, 20]}
    z = torch.tensor([-4.0, -2.0, -1.0, 0.0, 1.0, 2.0]).expand(20, 1, 6).contiguous().to(DEVICE)
    with kernels.backend("triton"):
        for kind, expected in counts.items():
            assert make_neuron(kind, 6).to(DEVICE)(z).sum(0)[0].tolist() == expected


def test_plif_kernel_trace_from_the_spec():
    """(S_t) of PLIF tau 2 at constant X = 1.5 (spec plif.md section 2): 0, 1, 0, 1, 0."""
    with kernels.backend("triton"):
        s = ParametricLIF(tau=2.0).to(DEVICE)(torch.full((5, 1, 1), 1.5, device=DEVICE))
    assert s[:, 0, 0].tolist() == [0, 1, 0, 1, 0]


def test_kernel_path_warns_on_a_non_finite_membrane():
    from spikedyn.neurons.base import read_deferred_state_checks

    x = torch.zeros(4, 2, 3, device=DEVICE)
    x[2, 1, 0] = float("nan")
    layer = DecayLIF()
    # on a GPU the check is read later, without stopping the device at every call, so the step is not known
    expected = "at the end of a recent call" if DEVICE == "cuda" else "from step 3 of 4"
    with kernels.backend("triton"), pytest.warns(RuntimeWarning, match=expected):
        s = layer(x)
        read_deferred_state_checks(layer)
    assert s[2:, 1, 0].tolist() == [0.0, 0.0]  # NaN propagates through V, no spikes after it


def test_a_training_step_of_the_mdn_net_is_the_same_on_both_back_ends():
    from spikedyn.models import MDNNet

    torch.manual_seed(0)
    net = MDNNet(20, 16, 4, neuron="mdn").to(DEVICE)
    x = (torch.rand(8, 5, 20, generator=torch.Generator().manual_seed(3)) < 0.4).float().to(DEVICE)

    def grads():
        net.zero_grad()
        out = net(x)
        ((out.rate - 0.5) ** 2).mean().backward()
        return [p.grad.clone() for p in net.parameters()]

    with kernels.backend("torch"):
        ref = grads()
    with kernels.backend("triton"):
        tri = grads()
    for r, t in zip(ref, tri):
        torch.testing.assert_close(t, r, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["decay-lif", "plif-paper-reset-gradient", "mdn"])
@pytest.mark.parametrize("steps, neurons", [(1, 5), (2, 1)])
def test_kernel_edge_sizes(name, steps, neurons):
    """One time step, or one neuron (sizes the compiler may treat as constants)."""
    x = scale_of(name) * torch.randn(steps, 4, neurons, generator=torch.Generator().manual_seed(4)) + 0.6
    layer = CASES[name](neurons).to(DEVICE)
    with kernels.backend("triton"):
        xt = x.to(DEVICE).requires_grad_()
        st = layer(xt)
        st.sum().backward()
    xr = x.to(DEVICE).requires_grad_()
    sr = layer.run(xr).spikes
    sr.sum().backward()
    assert torch.equal(st, sr)
    torch.testing.assert_close(xt.grad, xr.grad, rtol=1e-5, atol=1e-6)
