"""The compiled CPU time loops (``cpp`` back end, spikedyn.kernels.cpu) against the per-step reference.

The LIF families (decay-LIF with both input functions, both reset gradients and the three compiled
surrogates; PLIF and fixed-tau LIF with zero and non-zero reset), MDN's second-order neuron (learnable
theta, frozen presets, batch slots) and every form of the NRR cell (both channels with and without the adaptive threshold, another gamma, the
recurrent input on the membrane, no recurrence at all, a bias-only recurrent channel), both gradient forms
(BPTT and reward propagation's detached ``S_{t-1}``), in float32 and float64, at a width whose steps are not
a multiple of any vector length.  The reference is the pure step function ``nrr_step`` run by autograd, not
the PyTorch loop the compiled one replaces, so a mistake shared by both fused paths is caught too.

The bugs these tests catch: a compiled step that rounds in another order than the reference (a flipped
spike: the spikes must be equal, not close), a recurrent product that reads this step's spikes, a reset,
threshold-trace or recurrent-product term of BPTT's dL/dS left out or counted twice, the membrane gradient
left off the recurrent channel, or a cached build used for other sources.
"""

from __future__ import annotations

import os
import time
import warnings

import pytest
import torch

from spikedyn import kernels
from spikedyn.kernels import cpu
from spikedyn.neurons import LIF, PLIF, DecayLIF, RecurrentNRR, SecondOrder
from spikedyn.surrogate import ATan, RectWindow, Sigmoid, Surrogate

if cpu.compiler_missing() is not None:
    pytest.skip(f"the compiled CPU kernels cannot be built here: {cpu.compiler_missing()}", allow_module_level=True)

FORMS = {
    "nrr-bptt": dict(detach_prev=False),
    "nrr-rp": dict(detach_prev=True),
    "nrr-half-gamma-bptt": dict(gamma=0.5, alpha=0.8, beta=0.3, detach_prev=False),
    "no-adaptive-threshold": dict(adaptive=False, detach_prev=False),
    "membrane-bptt": dict(recurrent_input="membrane", detach_prev=False),
    "membrane-rp": dict(recurrent_input="membrane", detach_prev=True),
    "feed-forward-only": dict(recurrent=False, detach_prev=False),
}


def _layer(form: str, dtype: torch.dtype) -> RecurrentNRR:
    torch.manual_seed(0)
    layer = RecurrentNRR(7, 37, mask_seed=1, **FORMS[form]).to(dtype)
    if layer.fc_r is not None:
        with torch.no_grad():
            layer.fc_r.weight.mul_(3.0)  # a recurrence strong enough to make spikes of its own
        layer.apply_mask_()
    return layer


def _spikes_and_grads(layer: RecurrentNRR, run, dtype: torch.dtype):
    x = 1.5 * torch.rand(23, 19, 7, generator=torch.Generator().manual_seed(2), dtype=dtype)
    weight = torch.randn(23, 19, 37, generator=torch.Generator().manual_seed(3), dtype=dtype)
    params = [p for p in layer.parameters() if p.requires_grad]
    s = run(x)
    return s.detach(), torch.autograd.grad((s * weight).sum(), params)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("form", sorted(FORMS))
def test_compiled_nrr_loops_match_the_reference_step(form, dtype):
    layer = _layer(form, dtype)
    ref_s, ref_g = _spikes_and_grads(layer, lambda x: layer.run(x).spikes, dtype)
    with kernels.backend("cpp"):
        assert kernels.use_cpp(torch.zeros(1, dtype=dtype))
        cpp_s, cpp_g = _spikes_and_grads(layer, layer, dtype)
    with kernels.backend("torch"):
        loop_s, loop_g = _spikes_and_grads(layer, layer, dtype)
    assert torch.equal(cpp_s, ref_s)
    assert torch.equal(loop_s, ref_s)
    assert 0.05 < float((ref_s > 0).float().mean()) < 0.95
    if layer.fc_r is not None and not layer.merged:
        assert (ref_s == 2).any(), "both channels must fire together somewhere"
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    names = [n for n, p in layer.named_parameters() if p.requires_grad]
    for name, ref, got, loop in zip(names, ref_g, cpp_g, loop_g):
        assert ref.abs().sum() > 0, name
        assert float((got - ref).norm() / ref.norm()) < tolerance, name
        assert float((got - loop).norm() / loop.norm()) < tolerance, name


def test_bias_only_recurrent_channel_and_a_single_step():
    """No recurrent weights but a recurrent bias (the channel fires from b_r alone), and T = 1 (no recursion)."""
    layer = _layer("nrr-bptt", torch.float64)
    b_r = layer.fc_r.bias.detach().clone().fill_(0.7)
    from spikedyn.neurons.adaptive import _NRRSequence, nrr_step

    for steps in (1, 6):
        z = torch.randn(steps, 5, 37, dtype=torch.float64, generator=torch.Generator().manual_seed(steps))
        z.requires_grad_(True)
        state = layer.initial_state(z[0])
        ref = []
        for z_t in z:
            s_t, state = nrr_step(z_t, state, None, b_r, layer.params, layer.surrogate)
            ref.append(s_t)
        ref = torch.stack(ref)
        got = _NRRSequence.apply(z, None, b_r, layer.params, layer.surrogate, False, False, True)
        assert torch.equal(got, ref) and (got == 2).any()
        g_ref, = torch.autograd.grad(ref.sum(), z)
        g_got, = torch.autograd.grad(got.sum(), z)
        torch.testing.assert_close(g_got, g_ref, rtol=1e-12, atol=1e-12)


def test_the_build_is_cached_per_source_and_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKEDYN_KERNEL_CACHE", str(tmp_path))
    first = cpu.build_directory()
    assert first.parent == tmp_path
    monkeypatch.setattr(cpu, "cpu_signature", lambda: "another CPU")
    assert cpu.build_directory() != first


def test_a_build_lock_left_by_a_killed_build_is_removed_and_a_fresh_one_kept(tmp_path):
    lock = tmp_path / "lock"
    lock.touch()  # a build in progress elsewhere: the loader waits for it
    assert not cpu.clear_stale_lock(tmp_path) and lock.exists()
    old = time.time() - cpu.STALE_LOCK_SECONDS - 60
    os.utime(lock, (old, old))  # its builder was killed long ago: PyTorch's loader would wait forever
    with pytest.warns(RuntimeWarning, match="removing the CPU kernels' build lock .*did not finish"):
        assert cpu.clear_stale_lock(tmp_path)
    assert not lock.exists()
    assert not cpu.clear_stale_lock(tmp_path)  # no lock: nothing to do


def test_a_finished_build_is_loaded_without_the_builder(monkeypatch):
    assert cpu.available()  # built (or loaded) by this session's first fast path
    import torch.utils.cpp_extension as ext

    def no_builder(*args, **kwargs):
        raise AssertionError("a finished build must load without the builder (and its lock)")

    monkeypatch.setattr(ext, "load", no_builder)
    cpu._build()  # loads the cached library directly


def test_a_failed_build_falls_back_with_one_warning_or_errors_when_insisted_on(monkeypatch):
    monkeypatch.setattr(cpu, "_state", {})
    monkeypatch.setattr(cpu, "compiler_missing", lambda: "no C++ compiler ('c++' is not on PATH; set CXX or install g++)")
    x = torch.zeros(3, 2, dtype=torch.float32)
    with kernels.backend("auto"), pytest.warns(RuntimeWarning, match="compiled CPU kernels are not available .no C"):
        assert not kernels.use_cpp(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # decided once: no second warning
        with kernels.backend("auto"):
            assert not kernels.use_cpp(x)
    with kernels.backend("cpp"), pytest.raises(RuntimeError, match="SPIKEDYN_KERNELS=cpp.*no C\\+\\+ compiler"):
        kernels.use_cpp(x)
    layer = _layer("nrr-bptt", torch.float32)  # the layer still runs, on the PyTorch loops
    x = 1.5 * torch.rand(5, 3, 7, generator=torch.Generator().manual_seed(4))
    with kernels.backend("auto"):
        assert torch.equal(layer(x), layer.run(x).spikes)


def test_other_back_ends_and_devices_never_take_the_compiled_loops():
    with kernels.backend("torch"):
        assert not kernels.use_cpp(torch.zeros(2))
    with kernels.backend("triton"):
        assert not kernels.use_cpp(torch.zeros(2))
    with kernels.backend("auto"):
        assert not kernels.use_cpp(torch.zeros(2, dtype=torch.bfloat16))


# -- the LIF families: decay-LIF, PLIF and fixed-tau LIF ------------------------------------------------------
LIF_FORMS = {
    "decay-lif-rect": lambda: DecayLIF(),
    "decay-lif-detached-reset": lambda: DecayLIF(detach_reset=True),
    "decay-lif-sigmoid-input-atan": lambda: DecayLIF(input_fn="sigmoid", surrogate=ATan(2.0), v_th=0.3),
    "decay-lif-sigmoid-surrogate": lambda: DecayLIF(surrogate=Sigmoid(4.0)),
    "plif": lambda: PLIF(2.0, v_th=0.6),
    "plif-reset-differentiated": lambda: PLIF(3.0, v_th=0.5, detach_reset=False),
    "plif-nonzero-reset-rect": lambda: PLIF(2.0, v_th=0.5, v_reset=-0.2, surrogate=RectWindow(0.5, 1.0)),
    "lif-tau-fixed": lambda: LIF(8.0, v_th=0.1),
}


def _three_paths(make_layer, x: torch.Tensor, weight: torch.Tensor) -> dict:
    """Spikes and gradients (input first, then the layer's learnable parameters, as float64) of a fresh
    ``make_layer()`` on ``x`` with the loss ``sum(S * weight)``: the per-step reference in float32 (``ref``)
    and float64 (``exact``), the fused path on the compiled loops (``cpp``) and on the PyTorch loops (``loop``)."""

    def run(fast: bool, backend: str, dtype=torch.float32):
        layer = make_layer().to(dtype)
        layer.fast = fast
        inp = x.to(dtype).requires_grad_(True)
        params = [inp, *[p for p in layer.parameters() if p.requires_grad]]
        with kernels.backend(backend):
            s = layer(inp)
        return s.detach(), [g.double() for g in torch.autograd.grad((s * weight.to(dtype)).sum(), params)]

    return {"ref": run(False, "torch"), "cpp": run(True, "cpp"), "loop": run(True, "torch"),
            "exact": run(False, "torch", torch.float64)}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _assert_matches_reference(paths: dict) -> None:
    """Spikes equal to the reference's; dL/dX within 1e-5 of both float32 paths; every learnable parameter's
    gradient (rows of a stacked parameter one by one) as close to the float64 reference as the float32
    reference is, at twice its error or 2e-5."""
    (ref_s, ref_g), (cpp_s, cpp_g), (loop_s, loop_g), (_, exact_g) = (paths[k] for k in ("ref", "cpp", "loop", "exact"))
    assert torch.equal(cpp_s, ref_s) and torch.equal(loop_s, ref_s)
    assert 0.05 < float(ref_s.mean()) < 0.95
    assert ref_g[0].abs().sum() > 0
    assert _rel(cpp_g[0], ref_g[0]) < 1e-5 and _rel(cpp_g[0], loop_g[0]) < 1e-5  # dL/dX
    for ref, got, exact in zip(ref_g[1:], cpp_g[1:], exact_g[1:]):
        for row in (range(len(exact)) if exact.dim() > 1 else [...]):
            assert exact[row].abs().sum() > 0
            assert _rel(got[row], exact[row]) <= max(2 * _rel(ref[row], exact[row]), 2e-5), row


@pytest.mark.parametrize("form", sorted(LIF_FORMS))
def test_compiled_lif_loops_match_the_reference_step(form):
    """Spikes equal to the per-step reference (same rounding); the input's gradient within 1e-5 of it.  PLIF's
    dL/dk is one sum over every element and step, with terms of both signs: in float32 the reference path
    itself is off the float64 reference by up to 2e-5 here, so dL/dk is held to the float64 reference, at
    most twice the float32 reference's own error (or 2e-5)."""
    x = 1.2 * torch.randn(13, 5, 3, 7, generator=torch.Generator().manual_seed(2))  # conv-like [T, B, C, W]
    weight = torch.randn(13, 5, 3, 7, generator=torch.Generator().manual_seed(3))
    _assert_matches_reference(_three_paths(LIF_FORMS[form], x, weight))


@pytest.mark.parametrize("make", [DecayLIF, lambda: PLIF(2.0)], ids=["decay-lif", "plif"])
def test_compiled_lif_backward_overwrites_its_buffer_so_a_second_backward_is_refused(make):
    layer = make()
    x = torch.randn(6, 4, 9, requires_grad=True)
    with kernels.backend("cpp"):
        s = layer(x)
    s.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        s.sum().backward()


def test_other_surrogates_and_float64_keep_the_pytorch_loops():
    class Custom(Surrogate):
        def grad(self, x):
            return torch.ones_like(x)

    with kernels.backend("cpp"):
        assert kernels.use_cpp(torch.zeros(2), ATan())
        assert not kernels.use_cpp(torch.zeros(2), Custom())
        assert not kernels.use_cpp(torch.zeros(2, dtype=torch.float64), ATan())
        assert kernels.use_cpp(torch.zeros(2, dtype=torch.float64))  # the NRR loops take float64 too
    layer = DecayLIF(surrogate=Custom())
    x = torch.randn(5, 3, 4)
    with kernels.backend("cpp"):
        assert torch.equal(layer(x), DecayLIF(fast=False, surrogate=Custom())(x))


# -- MDN's second-order neuron: learnable per-neuron theta, frozen presets, batch slots -----------------------
SECOND_ORDER_FORMS = {
    "learnable-theta": lambda: SecondOrder((3, 7)),
    "preset-2nd-fs": lambda: SecondOrder.preset("2nd-FS", (3, 7)),
    "preset-2nd-sds-atan": lambda: SecondOrder.preset("2nd-SDS", (3, 7), surrogate=ATan(2.0)),
    "batch-slots-wrapping": lambda: SecondOrder((3, 7), theta_slots=3),  # 5 samples over 3 slots
}


@pytest.mark.parametrize("form", sorted(SECOND_ORDER_FORMS))
def test_compiled_second_order_loops_match_the_reference_step(form):
    """Spikes equal to the per-step reference; dL/dI (through the sigmoid input) within 1e-5 of it; theta's
    gradient (sums over batch and steps), row by row, held to the float64 reference as the float32 one is."""
    torch.manual_seed(0)
    template = SECOND_ORDER_FORMS[form]()
    if template.learnable:
        with torch.no_grad():  # neurons that differ, so that a theta read from the wrong neuron shows
            template.theta.add_(0.01 * torch.randn_like(template.theta))

    def make_layer():
        layer = SECOND_ORDER_FORMS[form]()
        layer.load_state_dict(template.state_dict())
        return layer

    x = 3.0 * torch.randn(13, 5, 3, 7, generator=torch.Generator().manual_seed(2))
    weight = torch.randn(13, 5, 3, 7, generator=torch.Generator().manual_seed(3))
    paths = _three_paths(make_layer, x, weight)
    assert len(paths["cpp"][1]) == (2 if template.learnable else 1)
    _assert_matches_reference(paths)


def test_the_sigmoid_computed_inside_the_second_order_loop_is_as_accurate_as_torch_sigmoid():
    """With the sigmoid input inside, the compiled forward computes I = sigmoid(Z) in its own pass.  At T = 1,
    v0 = u0 = 0 the membrane V_0 = (I + 0 * 0) - 0 is that I exactly, so it can be read against the float64
    sigmoid: at most 1.5 float32 eps relative error over z in [-87, 87] (torch.sigmoid's own is 1.24 eps there),
    equal to torch.sigmoid's rounding for nearly every z, and the limits and NaN as torch gives them."""
    assert cpu.available()
    z = torch.cat([torch.linspace(-87.0, 87.0, 400_001), torch.tensor([0.0, 88.0, 100.0, float("inf"), float("nan")])])
    n = z.numel()
    zeros = torch.zeros(n)
    v, u, s = torch.empty(1, n), torch.empty(2, n), torch.empty(1, n)
    cpu.ops().second_order_forward(z[None].contiguous(), True, zeros, zeros, torch.ones(n), zeros, v, u, s, 0.0, 0.0, 1e9)
    ours = v[0]
    exact = torch.sigmoid(z.double())
    inside = z.abs() <= 87
    eps = torch.finfo(torch.float32).eps
    assert ((ours.double() - exact) / exact)[inside].abs().max() <= 1.5 * eps
    assert (ours == torch.sigmoid(z))[inside].float().mean() > 0.97
    assert ours[-4:-1].tolist() == [1.0, 1.0, 1.0] and torch.isnan(ours[-1])
    assert ours[-5] == 0.5 and 0.0 < float(ours[0]) < 1e-37  # sigmoid(0); sigmoid(-87) = 1.6e-38


def test_compiled_second_order_theta_gradient_with_a_plain_current():
    """The compiled backward has two ways to U'_t for theta's gradient: solved from V_t and the fused sigmoid's
    I_t (the test above), or rebuilt from V when the node is given the current itself.  The second, against the
    float64 per-step reference on the same input: equal spikes, theta's gradient as close as the float32
    reference's."""
    torch.manual_seed(0)
    layer = SecondOrder((3, 7))
    with torch.no_grad():
        layer.theta.add_(0.01 * torch.randn_like(layer.theta))
    z = 3.0 * torch.randn(13, 5, 3, 7, generator=torch.Generator().manual_seed(2))
    weight = torch.randn(13, 5, 3, 7, generator=torch.Generator().manual_seed(3))

    def theta_grad(run, dtype=torch.float32):
        layer.to(dtype)
        layer.theta.grad = None
        s = run(z.to(dtype))
        (grad,) = torch.autograd.grad((s * weight.to(dtype)).sum(), [layer.theta])
        layer.to(torch.float32)
        return s.detach().float(), grad.double()

    def reference(x):
        layer.fast = False
        return layer(x)

    def compiled_plain(x):
        with kernels.backend("cpp"):
            return layer.fast_sequence(torch.sigmoid(x))  # the current given, not the fused sigmoid's Z

    s_ref, g_ref = theta_grad(reference)
    s_exact, g_exact = theta_grad(reference, torch.float64)
    s_cpp, g_cpp = theta_grad(compiled_plain)
    assert torch.equal(s_cpp, s_ref)
    for row in range(4):
        allowed = max(2 * _rel(g_ref[row], g_exact[row]), 2e-5)
        assert _rel(g_cpp[row], g_exact[row]) <= allowed, f"theta row {row}"
