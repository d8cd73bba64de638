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
