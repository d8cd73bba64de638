"""Learning rules on tiny hand-made nets: spec closed forms, locality, the authors' formulation."""

from __future__ import annotations

import pytest
import torch
from learning_helpers import TinyNet, UntappedNet, tiny_batch, tiny_net

from spikedyn.learning import RULES, make_rule, projection_loss, teaching_signal
from spikedyn.learning.base import RuleLoss
from spikedyn.losses import rate_mse, step_mse
from spikedyn.models.mdn import NetOutput

REWARD_RULES = ("brp", "err", "sign")


def spec_signal(rule: str, rate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The teaching signal E of spec brp.md section 4, step 4 (G_l = E B_l)."""
    return {"brp": target, "err": rate - target, "sign": torch.sign(rate - target)}[rule]


def window(v: torch.Tensor) -> torch.Tensor:
    """RectWindow(0.5, 0.5) at threshold 0.5: 1[|V - 0.5| < 0.5]."""
    return ((v - 0.5).abs() < 0.5).to(v.dtype)


def grads(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() if p.grad is not None else torch.zeros_like(p) for name, p in net.named_parameters()}


def rule_gradients(net: TinyNet, rule_name: str, x, y, loss_fn=rate_mse) -> tuple[NetOutput, RuleLoss]:
    rule = make_rule(rule_name)
    taps = rule.attach(net)
    net.zero_grad()
    out = net(x)
    result = rule(out, y, loss_fn, taps)
    result.total.backward()
    return out, result


@pytest.mark.parametrize("rule", REWARD_RULES)
def test_single_step_hidden_gradient_is_the_closed_form(rule):
    """spec brp.md 4: dL/dW_ij = sum_b G[b,i] 1[|V_i - 0.5| < 0.5] x_j[b] for T = 1, each hidden layer."""
    net = tiny_net()
    x, y = tiny_batch(steps=1, batch=6)
    out, _ = rule_gradients(net, rule, x, y)
    # the forward pass recomputed from the weights (T = 1: V = W x + b, no state)
    v1 = x[0] @ net.fc1.weight.T + net.fc1.bias
    s1 = (v1 > 0.5).to(x.dtype)
    v2 = s1 @ net.fc2.weight.T + net.fc2.bias
    s2 = (v2 > 0.5).to(x.dtype)
    v3 = s2 @ net.fc3.weight.T + net.fc3.bias
    rate = (v3 > 0.5).to(x.dtype)
    torch.testing.assert_close(out.rate, rate, rtol=0, atol=0)
    signal = spec_signal(rule, rate, y)
    for fc, tap, v, inp in ((net.fc1, net.tap1, v1, x[0]), (net.fc2, net.tap2, v2, s1)):
        g = signal @ tap.projection
        local = g * window(v)  # dL/dV_i[b]
        assert 0 < window(v).sum() < window(v).numel(), "the case should have neurons in and out of the window"
        torch.testing.assert_close(fc.weight.grad, torch.einsum("bi,bj->ij", local, inp), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(fc.bias.grad, local.sum(0), rtol=1e-12, atol=1e-12)
        assert fc.weight.grad.abs().sum() > 0
    # output layer: the true gradient of L_out = mean_{b,k} (r - y)^2 through its own surrogate only
    batch, classes = y.shape
    local3 = 2.0 / (batch * classes) * (rate - y) * window(v3)
    torch.testing.assert_close(net.fc3.weight.grad, local3.T @ s2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(net.fc3.bias.grad, local3.sum(0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rule", REWARD_RULES)
def test_the_papers_local_difference_has_its_closed_form(rule):
    """spec brp.md 4 [P], Eq. 8-9 read as the spikes pulled toward G_l: L_l = 1/2 ||S_l - G_l||^2, so for T = 1
    dL/dW_ij = sum_b (S_i[b] - G[b,i]) 1[|V_i - 0.5| < 0.5] x_j[b]; the output layer's gradient is unchanged."""
    net = tiny_net()
    x, y = tiny_batch(steps=1, batch=6)
    rule_obj = make_rule(rule, local_loss="difference")
    taps = rule_obj.attach(net)
    net.zero_grad()
    out = net(x)
    result = rule_obj(out, y, rate_mse, taps)
    result.total.backward()
    v1 = x[0] @ net.fc1.weight.T + net.fc1.bias
    s1 = (v1 > 0.5).to(x.dtype)
    v2 = s1 @ net.fc2.weight.T + net.fc2.bias
    s2 = (v2 > 0.5).to(x.dtype)
    rate = ((s2 @ net.fc3.weight.T + net.fc3.bias) > 0.5).to(x.dtype)
    signal = spec_signal(rule, rate, y)
    for index, (fc, tap, v, s, inp) in enumerate(((net.fc1, net.tap1, v1, s1, x[0]), (net.fc2, net.tap2, v2, s2, s1))):
        g = signal @ tap.projection
        local = (s - g) * window(v)
        torch.testing.assert_close(fc.weight.grad, torch.einsum("bi,bj->ij", local, inp), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(fc.bias.grad, local.sum(0), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(result.parts[f"tap{index}"], 0.5 * ((s - g) ** 2).sum(), rtol=1e-12, atol=1e-12)
    inject = make_rule(rule)  # the authors' form on the same pass differs: G_l alone
    assert inject.local_loss == "inject" and rule_obj.local_loss == "difference"


def test_the_local_difference_leaves_out_masked_steps():
    """Per-step targets (NRR): padded steps (mask 0) add nothing, neither G nor the pull of S toward 0."""
    from spikedyn.learning.reward import difference_loss

    spikes = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]]])  # [T=2, B=1, N=2]
    teaching = torch.tensor([[[0.5, 0.25]], [[3.0, 3.0]]])
    mask = torch.tensor([[1.0], [0.0]])
    assert float(difference_loss(spikes, teaching, mask)) == pytest.approx(0.5 * (0.25 + 0.0625))
    assert float(difference_loss(spikes, teaching[0])) == pytest.approx(0.5 * (0.25 + 0.0625 + 0.25 + 0.5625))


def test_a_local_loss_needs_a_reward_rule_and_a_known_form():
    with pytest.raises(ValueError, match="rule 'bptt' has none"):
        make_rule("bptt", local_loss="difference")
    with pytest.raises(ValueError, match="unknown local loss 'delta'; choose inject .* or difference"):
        make_rule("brp", local_loss="delta")


def test_brp_sends_no_gradient_from_the_layers_above():
    """With brp a hidden layer learns from y* B_l alone: the layers above do not change its gradient."""
    x, y = tiny_batch(steps=5)
    base = tiny_net()
    out, result = rule_gradients(base, "brp", x, y)
    w1 = base.fc1.weight.grad.clone()
    assert w1.abs().sum() > 0
    # the gradient of the hidden layer's auxiliary term alone, and none at all from L_out
    again = base(x)  # the taps are still local
    aux = projection_loss(again.taps[0], teaching_signal(base.tap1, y))
    (alone,) = torch.autograd.grad(aux, base.fc1.weight)
    torch.testing.assert_close(w1, alone, rtol=0, atol=0)
    (readout,) = torch.autograd.grad(rate_mse(again.spikes, y), base.fc1.weight, allow_unused=True)
    assert readout is None
    assert set(result.parts) == {"readout", "tap0", "tap1"}
    torch.testing.assert_close(result.total.detach(), sum(result.parts.values()), rtol=1e-12, atol=0)
    # perturbing the upper layers changes their outputs but not the hidden layer's gradient
    perturbed = tiny_net()
    with torch.no_grad():
        perturbed.fc2.weight.mul_(-1.7).add_(0.3)
        perturbed.fc3.weight.mul_(3.0)
    out_p, _ = rule_gradients(perturbed, "brp", x, y)
    assert not torch.equal(out_p.spikes, out.spikes)
    assert torch.equal(perturbed.fc1.weight.grad, w1) and torch.equal(perturbed.fc1.bias.grad, base.fc1.bias.grad)
    # whereas under BPTT the same perturbation does change it (the check above is not vacuous)
    bptt_a, bptt_b = tiny_net(), tiny_net()
    with torch.no_grad():
        bptt_b.fc2.weight.mul_(-1.7).add_(0.3)
        bptt_b.fc3.weight.mul_(3.0)
    rule_gradients(bptt_a, "bptt", x, y)
    rule_gradients(bptt_b, "bptt", x, y)
    assert not torch.allclose(bptt_a.fc1.weight.grad, bptt_b.fc1.weight.grad)


class ReplaceGradient(torch.autograd.Function):
    """The authors' hook: identity forward; backward discards the incoming gradient and returns G_l."""

    @staticmethod
    def forward(ctx, spikes, box):  # type: ignore[override]
        ctx.box = box
        return spikes.clone()

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        g = ctx.box["G"]  # [B, *shape], the same at every step
        return g.unsqueeze(0).expand_as(grad).to(grad.dtype), None


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("rule", REWARD_RULES)
def test_detach_and_auxiliary_loss_equal_the_gradient_replacing_hook(rule, fast):
    """spec common.md 6: both formulations give the same gradients for every parameter (T > 1)."""
    x, y = tiny_batch(steps=6, batch=5, seed=3)
    net = tiny_net(seed=4, fast=fast, weight_scale=1.5)
    rule_gradients(net, rule, x, y)
    ours = grads(net)

    hooked = tiny_net(seed=4, fast=fast, weight_scale=1.5)
    make_rule("bptt").attach(hooked)  # taps transparent: the hook alone cuts the path
    boxes = [{}, {}]
    out = hooked(x, replace=lambda i, s: ReplaceGradient.apply(s, boxes[i]))
    signal = spec_signal(rule, out.rate.detach(), y)
    for box, tap in zip(boxes, (net.tap1, net.tap2)):  # the same B_l as the detach + auxiliary run
        box["G"] = (signal @ tap.projection).reshape(len(y), *tap.shape)
    rate_mse(out.spikes, y).backward()
    theirs = grads(hooked)

    assert theirs["fc1.weight"].abs().sum() > 0 and theirs["fc2.weight"].abs().sum() > 0
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=1e-6, msg=name)


@pytest.mark.parametrize("loss_fn", [rate_mse, step_mse])
def test_bptt_is_the_plain_readout_gradient(loss_fn):
    x, y = tiny_batch(steps=5)
    net = tiny_net()
    make_rule("brp").attach(net)  # bptt must undo a previous rule's detaching taps
    out, result = rule_gradients(net, "bptt", x, y, loss_fn)
    assert not any(tap.local for tap in (net.tap1, net.tap2))
    plain = tiny_net()
    loss = loss_fn(plain(x).spikes, y)
    loss.backward()
    assert torch.equal(result.total, loss) and set(result.parts) == {"readout"}
    for name, g in grads(plain).items():
        assert torch.equal(grads(net)[name], g), name
    assert net.fc1.weight.grad.abs().sum() > 0  # the read-out gradient reached the first layer


def test_multi_hot_targets_and_float32():
    net = TinyNet()
    x, _ = tiny_batch(steps=3, dtype=torch.float32)
    y = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    out, result = rule_gradients(net, "brp", x, y)
    g = teaching_signal(net.tap2, y)
    assert g.shape == (4, 4) and g.dtype == torch.float32
    torch.testing.assert_close(g, y @ net.tap2.projection)
    expected = (out.taps[1].sum(0) * g).sum()
    torch.testing.assert_close(result.parts["tap1"], expected.detach())


def test_projection_is_fixed_and_drawn_in_the_kaiming_uniform_bound():
    net = TinyNet(hidden=(300, 4))
    bound = (6.0 / 300) ** 0.5
    assert net.tap1.projection is None  # drawn when a reward-propagation rule attaches
    rule = make_rule("brp")
    taps = rule.attach(net)
    b = net.tap1.projection
    assert b.shape == (3, 300) and b.abs().max() <= bound and b.abs().max() > 0.9 * bound
    assert all(p is not b for p in net.parameters())  # a buffer: no optimiser trains it
    before = b.clone()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
    x, y = tiny_batch(steps=3, dtype=torch.float32)
    rule(net(x), y, rate_mse, taps).total.backward()
    optimizer.step()
    assert torch.equal(net.tap1.projection, before)


def test_rules_registry_and_unknown_names():
    assert list(RULES) == ["bptt", "brp", "err", "sign"]
    assert {name: make_rule(name).local for name in RULES} == {"bptt": False, "brp": True, "err": True, "sign": True}
    with pytest.raises(ValueError, match=r"unknown learning rule 'dfa'; choose one of bptt, brp, err, sign"):
        make_rule("dfa")


@pytest.mark.parametrize("rule", REWARD_RULES)
def test_reward_rules_need_taps(rule):
    with pytest.raises(ValueError, match="UntappedNet has none"):
        make_rule(rule).attach(UntappedNet())
    make_rule("bptt").attach(UntappedNet())  # BPTT needs no taps


def test_tap_count_mismatch_and_missing_attach_are_clear_errors():
    net = TinyNet()
    x, y = tiny_batch(steps=2, dtype=torch.float32)
    rule = make_rule("err")
    taps = rule.attach(net)
    out = net(x)
    with pytest.raises(ValueError, match=r"returned 1 tapped spike tensor\(s\) .* has 2 SpikeTap"):
        rule(NetOutput(out.rate, out.spikes, out.taps[:1]), y, rate_mse, taps)
    with pytest.raises(ValueError, match="needs the model's SpikeTaps"):
        rule(out, y, rate_mse, [])
    fresh = TinyNet()
    with pytest.raises(RuntimeError, match="call rule.attach"):
        make_rule("brp")(fresh(x), y, rate_mse, [fresh.tap1, fresh.tap2])
    with pytest.raises(RuntimeError, match="call rule.attach"):
        make_rule("bptt")(out, y, rate_mse, taps)  # taps still local from the err rule
    with pytest.raises(ValueError, match="does not fit a tap projecting 3 classes"):
        teaching_signal(net.tap1, torch.zeros(4, 5))
