"""NRR-SNN's two-channel adaptive-threshold recurrent cell (spec nrr.md sections 2 and 3)."""

import pytest
import torch
from torch import nn

from spikedyn.layers import SpikeTap
from spikedyn.learning import make_rule, projection_loss, teaching_signal
from spikedyn.losses import step_mse
from spikedyn.models.mdn import NetOutput
from spikedyn.neurons import NRRParams, NRRState, RecurrentNRR, nrr_step, sparse_recurrent_mask
from spikedyn.surrogate import RectWindow

# (V^f_t, a_t, S_t), t = 1..8: one neuron, gamma = 1, no recurrent input, constant drive 0.6 (spec nrr.md 2)
REFERENCE_TRACE = [
    (0.6, 0.0, 1), (0.5, 0.1, 0), (0.61, 0.09, 1), (0.419, 0.181, 0),
    (0.5209, 0.1629, 1), (0.3534, 0.2466, 0), (0.4487, 0.2219, 0), (0.49, 0.1998, 0),
]


def zero_state(n: int = 1, dtype=torch.float64) -> NRRState:
    z = torch.zeros(1, n, dtype=dtype)
    return NRRState(z, z, z)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_step_function_reference_trace(dtype):
    state = zero_state(dtype=dtype)
    zf = torch.full((1, 1), 0.6, dtype=dtype)
    for vf, a, s in REFERENCE_TRACE:
        spikes, state = nrr_step(zf, state, None, None, NRRParams(gamma=1.0), RectWindow(0.5, 1.0))
        assert state.v.item() == pytest.approx(vf, abs=1e-4)
        assert state.a.item() == pytest.approx(a, abs=1e-4)
        assert spikes.item() == s


def unit_layer(fast: bool, recurrent: bool = True, **kwargs) -> RecurrentNRR:
    """One neuron driven by W_f x + b_f = x (a single neuron has no recurrent connection: no self-loops)."""
    layer = RecurrentNRR(1, 1, recurrent=recurrent, fast=fast, **kwargs).double()
    with torch.no_grad():
        layer.fc_f.weight.fill_(1.0)
        layer.fc_f.bias.zero_()
        if recurrent:
            layer.fc_r.bias.zero_()
    return layer


@pytest.mark.parametrize("recurrent", [True, False])
def test_layer_reference_trace_on_both_paths(recurrent):
    x = torch.full((8, 1, 1), 0.6, dtype=torch.float64)
    layer = unit_layer(fast=False, recurrent=recurrent)
    run = layer.run(x, record=True)
    assert run.traces["v"][:, 0, 0].tolist() == pytest.approx([t[0] for t in REFERENCE_TRACE], abs=1e-4)
    assert run.traces["a"][:, 0, 0].tolist() == pytest.approx([t[1] for t in REFERENCE_TRACE], abs=1e-4)
    expected = [float(t[2]) for t in REFERENCE_TRACE]
    assert run.spikes[:, 0, 0].tolist() == expected
    assert layer(x)[:, 0, 0].tolist() == expected
    assert unit_layer(fast=True, recurrent=recurrent)(x)[:, 0, 0].tolist() == expected


@pytest.mark.parametrize("options", [{"gamma": 0.0}, {"adaptive": False}])
def test_without_threshold_term_fires_every_step(options):
    x = torch.full((8, 1, 1), 0.6, dtype=torch.float64)
    run = unit_layer(fast=False, **options).run(x, record=True)
    assert run.traces["v"][:, 0, 0].tolist() == pytest.approx([0.6] * 8)
    assert run.spikes.sum().item() == 8
    assert unit_layer(fast=True, **options)(x).sum().item() == 8


@pytest.mark.parametrize("fast", [False, True])
def test_both_channels_fire_and_the_reset_factor_flips_the_sign(fast):
    # neuron 0 drives neuron 1's recurrent channel (W_r[1, 0] = 0.8); neuron 1's own drive also fires at t = 2
    layer = RecurrentNRR(2, 2, sparseness=0.0, fast=fast).double()
    with torch.no_grad():
        layer.fc_f.weight.copy_(torch.eye(2))
        layer.fc_f.bias.zero_()
        layer.fc_r.weight.copy_(torch.tensor([[0.0, 0.0], [0.8, 0.0]]))
        layer.fc_r.bias.zero_()
    x = torch.tensor([[[0.7, 0.0]], [[0.0, 0.7]], [[0.0, 0.0]]], dtype=torch.float64)
    spikes = layer(x)
    assert spikes[:, 0].tolist() == [[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]
    if not fast:
        v = layer.run(x, record=True).traces["v"][:, 0]
        # t = 2: V_1 = V^f (0.7) + V^r (0.8);  t = 3: a = 0.1 * 2, V^f = 0.2 * 1.5 * (1 - 2) - 0.2
        assert v[1].tolist() == pytest.approx([-0.1, 1.5])
        assert v[2].tolist() == pytest.approx([-0.11, -0.5])


def test_step_function_reset_factor_is_minus_one_after_two_spikes():
    state = NRRState(torch.tensor([[0.3]]), torch.tensor([[2.0]]), torch.tensor([[0.0]]))
    _, new = nrr_step(torch.tensor([[0.1]]), state, None, None, NRRParams(gamma=0.0), RectWindow(0.5, 1.0))
    assert new.v.item() == pytest.approx(0.2 * 0.3 * (1 - 2) + 0.1)
    assert new.a.item() == pytest.approx(0.2)


# -- sparse recurrent mask ------------------------------------------------------------------------
def test_mask_has_no_self_loops_and_cuts_the_drawn_positions():
    n, p = 30, 0.5
    mask = sparse_recurrent_mask(n, p, torch.Generator().manual_seed(4))
    assert torch.all(mask.diagonal() == 0)
    chosen = torch.randperm(n * n, generator=torch.Generator().manual_seed(4))[: int(p * n * n)]
    cut = set(chosen.tolist()) | {i * n + i for i in range(n)}
    assert int((mask == 0).sum()) == len(cut)
    assert set(torch.nonzero(mask.view(-1) == 0).view(-1).tolist()) == cut
    assert torch.all(sparse_recurrent_mask(n, 0.0) == 1.0 - torch.eye(n))
    assert sparse_recurrent_mask(n, 1.0).sum() == 0
    with pytest.raises(ValueError):
        sparse_recurrent_mask(n, 1.5)


def test_mask_is_seeded_saved_and_restored():
    a, b = RecurrentNRR(3, 20, mask_seed=1), RecurrentNRR(3, 20, mask_seed=1)
    assert torch.equal(a.mask, b.mask)
    other = RecurrentNRR(3, 20, mask_seed=2)
    assert not torch.equal(a.mask, other.mask)
    assert "mask" in a.state_dict()
    other.load_state_dict(a.state_dict())
    assert torch.equal(other.mask, a.mask)
    assert torch.all(a.fc_r.weight[a.mask == 0] == 0)


@pytest.mark.parametrize("fast", [False, True])
def test_masked_weights_stay_exactly_zero_under_adam(fast):
    torch.manual_seed(0)
    layer = RecurrentNRR(4, 12, mask_seed=3, fast=fast)
    with torch.no_grad():
        layer.fc_r.weight.mul_(4.0)
    before = layer.fc_r.weight.detach().clone()
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2, weight_decay=1e-5)
    x = torch.rand(10, 5, 4) * 2
    for _ in range(5):
        opt.zero_grad()
        out = layer(x)
        (out * torch.linspace(-1, 1, out.shape[-1])).sum().backward()
        assert torch.all(layer.fc_r.weight.grad[layer.mask == 0] == 0)
        opt.step()
    w = layer.fc_r.weight.detach()
    assert torch.all(w[layer.mask == 0] == 0)
    assert not torch.equal(w[layer.mask == 1], before[layer.mask == 1])


# -- fused path against the per-step reference --------------------------------------------------------
def active_layer(fast: bool, detach_prev: bool, seed: int = 0, **kwargs) -> RecurrentNRR:
    torch.manual_seed(seed)
    layer = RecurrentNRR(5, 16, detach_prev=detach_prev, mask_seed=seed, fast=fast, **kwargs).double()
    with torch.no_grad():
        if layer.fc_r is not None:
            layer.fc_r.weight.mul_(5.0)
    return layer


def grads_of(fast: bool, detach_prev: bool, T: int = 20, **kwargs):
    layer = active_layer(fast, detach_prev, **kwargs)
    g = torch.Generator().manual_seed(7)
    x = (torch.rand(T, 4, 5, generator=g, dtype=torch.float64) * 2).requires_grad_()
    spikes = layer(x)
    weights = torch.randn(spikes.shape, generator=g, dtype=torch.float64)
    (spikes * weights).sum().backward()
    return spikes.detach(), {"x": x.grad, **{n: p.grad for n, p in layer.named_parameters()}}


@pytest.mark.parametrize("detach_prev", [False, True])
@pytest.mark.parametrize(
    "options", [{}, {"recurrent": False}, {"adaptive": False}, {"gamma": 0.5, "alpha": 0.8, "beta": 0.3}]
)
def test_fast_path_matches_reference(detach_prev, options):
    s_ref, g_ref = grads_of(False, detach_prev, **options)
    s_fast, g_fast = grads_of(True, detach_prev, **options)
    assert torch.equal(s_fast, s_ref)
    assert s_ref.sum() > 0
    if options.get("recurrent", True):
        assert (s_ref == 2).any(), "both channels must fire together somewhere"
    assert g_ref.keys() == g_fast.keys()
    for name in g_ref:
        torch.testing.assert_close(g_fast[name], g_ref[name], rtol=1e-5, atol=1e-9, msg=name)


@pytest.mark.parametrize("T", [1, 2])
@pytest.mark.parametrize("detach_prev", [False, True])
def test_fast_path_on_very_short_windows(T, detach_prev):
    _, g_ref = grads_of(False, detach_prev, T=T)
    _, g_fast = grads_of(True, detach_prev, T=T)
    for name in g_ref:
        torch.testing.assert_close(g_fast[name], g_ref[name], msg=name)


def test_detach_setting_changes_the_gradient():
    _, attached = grads_of(True, False)
    _, detached = grads_of(True, True)
    assert not torch.allclose(attached["fc_r.weight"], detached["fc_r.weight"])


@pytest.mark.parametrize("fast", [False, True])
def test_detached_recurrent_gradient_is_own_step_plus_membrane_path(fast):
    """A teaching signal at step t0 alone reaches W_r through step t0's recurrent channel and,
    backwards in time, only through the membrane path V_{t-1} -> V^f_t (factor lambda (1 - S_{t-1}))."""
    layer = active_layer(fast, detach_prev=True)
    g = torch.Generator().manual_seed(11)
    T, t0 = 12, 9
    x = torch.rand(T, 4, 5, generator=g, dtype=torch.float64) * 2
    signal = torch.randn(4, 16, generator=g, dtype=torch.float64)
    (layer(x)[t0] * signal).sum().backward()

    with torch.no_grad():
        run = layer.run(x, record=True)
        w, b = layer.recurrent_weight(), layer.fc_r.bias
        s = run.spikes
        s_prev = torch.cat([torch.zeros_like(s[:1]), s[:-1]])
        vr = s_prev @ w.t() + b
        vf = run.traces["v"] - vr
        window = lambda v: ((v - 0.5).abs() < 0.5).double()  # noqa: E731
        carry = signal * window(vf[t0])  # dL/dV^f_t0
        expected_w = (signal * window(vr[t0])).t() @ s_prev[t0]
        expected_f = carry.t() @ x[t0]
        for t in range(t0 - 1, -1, -1):
            carry = 0.2 * (1 - s[t]) * carry  # dL/dV_t = dL/dV^f_t = dL/dV^r_t
            expected_w += carry.t() @ s_prev[t]
            expected_f += carry.t() @ x[t]
    assert expected_w.abs().sum() > 0
    torch.testing.assert_close(layer.fc_r.weight.grad, expected_w * layer.mask)
    torch.testing.assert_close(layer.fc_f.weight.grad, expected_f)


# -- reward propagation --------------------------------------------------------------------------------
class TinyNRRNet(nn.Module):
    """RecurrentNRR -> non-spiking linear read-out at every step."""

    def __init__(self, inputs=6, hidden=12, classes=3, fast=True):
        super().__init__()
        self.rnn = RecurrentNRR(inputs, hidden, classes, mask_seed=0, fast=fast)
        self.readout = nn.Linear(hidden, classes)

    def forward(self, x):
        s = self.rnn(x)
        out = self.readout(self.rnn.tap(s))
        return NetOutput(rate=out.mean(0), spikes=out, taps=[s])


def test_tap_locality_sets_detach_prev():
    net = TinyNRRNet()
    assert make_rule("brp").attach(net) == [net.rnn.tap] and net.rnn.detach_prev
    make_rule("bptt").attach(net)
    assert not net.rnn.detach_prev
    assert RecurrentNRR(3, 4, 2, detach_prev=True).detach_prev


class _ReplaceGradient(torch.autograd.Function):
    """The authors' identity op: backward discards the incoming gradient and returns G."""

    @staticmethod
    def forward(ctx, spikes, teaching):
        ctx.save_for_backward(teaching)
        return spikes.clone()

    @staticmethod
    def backward(ctx, grad):
        (teaching,) = ctx.saved_tensors
        return teaching.expand_as(grad).clone(), None


def test_detach_formulation_equals_gradient_replacement():
    torch.manual_seed(0)
    net = TinyNRRNet(hidden=16).double()
    with torch.no_grad():
        net.rnn.fc_r.weight.mul_(4.0)
    make_rule("brp").attach(net)
    g = torch.Generator().manual_seed(5)
    x = torch.rand(10, 4, 6, generator=g, dtype=torch.float64) * 2
    y = torch.nn.functional.one_hot(torch.arange(4) % 3, 3).double()
    teaching = teaching_signal(net.rnn.tap, y)

    out = net(x)
    (step_mse(out.spikes, y) + projection_loss(out.taps[0], teaching)).backward()
    detached = {n: p.grad.clone() for n, p in net.named_parameters()}

    net.zero_grad()
    rnn = net.rnn
    w, b, zf = rnn.recurrent_weight(), rnn.fc_r.bias, rnn.drive(x)
    state, outs = rnn.initial_state(zf[0]), []
    for t in range(zf.shape[0]):  # full BPTT, every reuse of S through the replacing op
        s, state = nrr_step(zf[t], state, w, b, rnn.params, rnn.surrogate, detach_prev=False)
        s = _ReplaceGradient.apply(s, teaching)
        state = state._replace(s=s)
        outs.append(s)
    step_mse(net.readout(torch.stack(outs)), y).backward()
    assert torch.stack(outs).eq(2).any()
    for n, p in net.named_parameters():
        torch.testing.assert_close(p.grad, detached[n], rtol=1e-6, atol=1e-6, msg=n)


def test_brp_training_reduces_the_readout_loss():
    torch.manual_seed(0)
    net = TinyNRRNet(inputs=6, hidden=24, classes=3)
    rule = make_rule("brp")
    taps = rule.attach(net)
    assert isinstance(taps[0], SpikeTap) and net.rnn.detach_prev
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(12) % 3
    patterns = torch.rand(3, 6, generator=g)
    x = (patterns[labels] + 0.3 * torch.rand(8, 12, 6, generator=g)).contiguous()
    y = torch.nn.functional.one_hot(labels, 3).float()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        result = rule(net(x), y, step_mse, taps)
        result.total.backward()
        opt.step()
        losses.append(result.parts["readout"].item())
    assert net.rnn.fc_f.weight.grad.abs().sum() > 0
    assert losses[-1] < 0.75 * losses[0]
    assert torch.all(net.rnn.fc_r.weight[net.rnn.mask == 0] == 0)


def test_input_checks():
    layer = RecurrentNRR(3, 4)
    with pytest.raises(ValueError, match=r"\[T, B, 3\]"):
        layer(torch.zeros(5, 2, 4))
    with pytest.raises(ValueError, match="floating-point"):
        layer(torch.zeros(5, 2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="time step"):
        layer(torch.zeros(0, 2, 3))
