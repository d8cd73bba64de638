"""The NRR net's fused recurrent path against its per-step reference, under both learning rules.

The cell-level tests (tests/neurons/test_nrr_cell.py) compare the two paths in float64 on a small
layer; these run the whole net (input projection, RFC layer, read-out, the rule's loss) in float32
at sizes where the fused kernel's buffers, per-step views and stacked channels all matter.
"""

import pytest
import torch
import torch.nn.functional as F

from spikedyn.learning import make_rule
from spikedyn.losses import rate_mse
from spikedyn.models import NRRNet

T, B, INPUTS, HIDDEN, CLASSES = 60, 8, 40, 64, 10


def run(fast: bool, rule: str, **options):
    """Hidden spikes, read-out and every parameter gradient of one forward/backward of the rule's loss."""
    torch.manual_seed(3)
    net = NRRNet(INPUTS, HIDDEN, CLASSES, mask_seed=5, fast=fast, **options)
    with torch.no_grad():  # larger weights than the default init, so that both channels fire (S = 2 occurs)
        for p in net.parameters():
            p.mul_(2.5)
    net.apply_masks_()
    learning = make_rule(rule)
    taps = learning.attach(net)
    g = torch.Generator().manual_seed(9)
    x = (torch.rand(T, B, INPUTS, generator=g) < 0.25).float()
    y = F.one_hot(torch.randint(0, CLASSES, (B,), generator=g), CLASSES).float()
    out = net(x)
    learning(out, y, rate_mse, taps).total.backward()
    return out.taps[0].detach(), out.spikes.detach(), {n: p.grad.clone() for n, p in net.named_parameters()}, net


@pytest.mark.parametrize("rule", ["bptt", "brp"])
@pytest.mark.parametrize("options", [{}, {"gamma": 0.5, "alpha": 0.8, "beta": 0.3}, {"adaptive": False}])
def test_fused_net_matches_reference_in_float32(rule, options):
    """Catches a fused-kernel change that alters the spikes (a different rounding of the membrane or
    threshold trace flips a spike) or a gradient term (reset factor, trace, recurrent product,
    membrane path) by more than 1e-5 relative, for BPTT and for reward propagation."""
    s_ref, o_ref, g_ref, _ = run(False, rule, **options)
    s_fast, o_fast, g_fast, net = run(True, rule, **options)
    assert (s_ref == 2).any() and (s_ref == 0).any(), "both channels must fire together somewhere, and not everywhere"
    assert torch.equal(s_fast, s_ref)
    torch.testing.assert_close(o_fast, o_ref, rtol=1e-6, atol=1e-6)
    assert g_fast.keys() == g_ref.keys()
    for name in g_ref:
        ref, fast = g_ref[name], g_fast[name]
        assert ref.abs().sum() > 0, name
        assert float((fast - ref).norm() / ref.norm()) < 1e-5, name
    rfc = net.rfc[0]
    assert torch.all(g_fast["rfc.0.fc_r.weight"][rfc.mask == 0] == 0)


@pytest.mark.parametrize("rule", ["bptt", "brp"])
def test_masked_weights_stay_zero_on_the_fused_path(rule):
    """Catches a fused backward whose recurrent-weight gradient leaks into masked (cut) connections."""
    torch.manual_seed(0)
    net = NRRNet(INPUTS, HIDDEN, CLASSES, mask_seed=1)
    learning = make_rule(rule)
    taps = learning.attach(net)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x = (torch.rand(T, B, INPUTS) < 0.3).float() * 3
    y = F.one_hot(torch.arange(B) % CLASSES, CLASSES).float()
    rfc = net.rfc[0]
    before = rfc.fc_r.weight.detach().clone()
    for _ in range(3):
        opt.zero_grad()
        learning(net(x), y, rate_mse, taps).total.backward()
        opt.step()
    assert torch.all(rfc.fc_r.weight[rfc.mask == 0] == 0)
    assert not torch.equal(rfc.fc_r.weight[rfc.mask == 1], before[rfc.mask == 1])


def test_fused_path_without_gradient_gives_the_same_spikes():
    """Catches a no-grad forward (which skips the buffers kept for backward) that diverges from the graded one."""
    s_ref, _, _, net = run(False, "bptt")
    g = torch.Generator().manual_seed(9)
    x = (torch.rand(T, B, INPUTS, generator=g) < 0.25).float()
    net.rfc[0].fast = True
    with torch.no_grad():
        assert torch.equal(net(x).taps[0], s_ref)


# -- recurrent input into the membrane: the plain recurrent decay-LIF on the same machinery ----------------
def test_membrane_form_reference_step_by_hand():
    """Catches a membrane form that thresholds the channels apart or forgets the recurrent input:
    two neurons, W~_r[1, 0] = 0.8, no adaptive threshold.  t=1: V = (0.7, 0), S = (1, 0);
    t=2: V_1 = 0.2*0.7*(1-1) + 0 = 0, V_2 = 0.2*0*(1-0) + 0.3 + 0.8*1 = 1.1 -> S = (0, 1) (never 2)."""
    from spikedyn.neurons import RecurrentNRR

    for fast in (False, True):
        layer = RecurrentNRR(2, 2, sparseness=0.0, adaptive=False, recurrent_input="membrane", fast=fast).double()
        with torch.no_grad():
            layer.fc_f.weight.copy_(torch.eye(2))
            layer.fc_f.bias.zero_()
            layer.fc_r.weight.copy_(torch.tensor([[0.0, 0.0], [0.8, 0.0]]))
            layer.fc_r.bias.zero_()
        x = torch.tensor([[[0.7, 0.0]], [[0.0, 0.3]], [[0.0, 0.0]]], dtype=torch.float64)
        assert layer(x)[:, 0].tolist() == [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
        if not fast:
            v = layer.run(x, record=True).traces["v"][:, 0]
            assert v[1].tolist() == pytest.approx([0.0, 1.1])


@pytest.mark.parametrize("rule", ["bptt", "brp"])
@pytest.mark.parametrize("adaptive", [False, True])
def test_membrane_form_fused_matches_reference(rule, adaptive):
    """Catches a fused membrane form whose spikes or gradients leave its reference path (the recurrent
    product's gradient must reach the membrane, not a separate channel)."""
    options = {"recurrent_input": "membrane", "adaptive": adaptive}
    s_ref, _, g_ref, _ = run(False, rule, **options)
    s_fast, _, g_fast, net = run(True, rule, **options)
    assert s_ref.max() == 1 and s_ref.sum() > 0
    assert torch.equal(s_fast, s_ref)
    for name in g_ref:
        assert g_ref[name].abs().sum() > 0, name
        assert float((g_fast[name] - g_ref[name]).norm() / g_ref[name].norm()) < 1e-5, name
    assert "recurrent input into the membrane" in net.topology
