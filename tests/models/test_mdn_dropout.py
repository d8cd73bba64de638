"""MDN's three-layer net with dropout of the hidden neurons on their way to the read-out."""

import pytest
import torch

from spikedyn.learning import make_rule
from spikedyn.models import MDNNet, build_model, rebuild_model


def _pair(p: float) -> tuple[MDNNet, MDNNet]:
    torch.manual_seed(0)
    plain = MDNNet(12, 30, 4, neuron="lif-identity", fast=False)
    dropped = MDNNet(12, 30, 4, neuron="lif-identity", fast=False, dropout=p)
    dropped.load_state_dict(plain.state_dict())
    return plain, dropped


def test_evaluation_sees_every_neuron():
    plain, dropped = _pair(0.5)
    x = (torch.rand(6, 3, 12) < 0.5).float()
    plain.eval(), dropped.eval()
    torch.testing.assert_close(dropped(x).spikes, plain(x).spikes, rtol=0, atol=0)


def test_training_drops_whole_neurons_for_all_steps_and_scales_the_rest():
    p, steps, batch, hidden = 0.4, 5, 3, 30
    plain, dropped = _pair(p)
    x = (torch.rand(steps, batch, 12) < 0.5).float()
    torch.manual_seed(7)
    out = dropped(x)
    torch.manual_seed(7)
    mask = torch.empty(batch, hidden).bernoulli_(1 - p)  # the draw TimeSharedDropout makes, [B, H]
    assert 0 < mask.sum() < mask.numel()
    # by hand: hidden spikes of the plain net, each sample's dropped neurons zeroed at every step, kept ones * 1/(1-p)
    hidden_spikes = plain.neuron1(plain.fc1(x))
    expected = plain.neuron2(plain.fc2(hidden_spikes * mask / (1 - p)))
    torch.testing.assert_close(out.spikes, expected)
    torch.testing.assert_close(out.taps[0], hidden_spikes)  # the rules read the spikes before the dropout


def test_a_dropped_neuron_gets_no_readout_gradient_from_that_sample():
    _, dropped = _pair(0.5)
    x = (torch.rand(8, 1, 12) < 0.6).float()
    torch.manual_seed(3)
    out = dropped(x)
    torch.manual_seed(3)
    mask = torch.empty(1, 30).bernoulli_(0.5)[0]
    # the read-out's input current: through the output neurons' surrogate, take d/dW2 of the summed potentials
    out.spikes.sum().backward()
    grad = dropped.fc2.weight.grad
    assert torch.all(grad[:, mask == 0] == 0)


def test_under_brp_no_readout_gradient_reaches_the_hidden_layer_through_the_dropout():
    _, dropped = _pair(0.3)
    make_rule("brp").attach(dropped)
    x = (torch.rand(6, 4, 12) < 0.5).float()
    dropped.train()
    dropped(x).rate.sum().backward()
    assert dropped.fc2.weight.grad.abs().sum() > 0
    assert dropped.fc1.weight.grad is None or torch.all(dropped.fc1.weight.grad == 0)


def test_config_round_trip_and_state_unchanged():
    net = build_model("mdn", (12,), 4, hidden=10, neuron="2nd-fs", dropout="0.25")
    assert net.config["dropout"] == 0.25 and net.drop1.p == 0.25
    again = rebuild_model("mdn", net.config)
    assert again.drop1.p == 0.25
    plain = build_model("mdn", (12,), 4, hidden=10, neuron="2nd-fs")
    assert "dropout" not in plain.config and plain.drop1 is None
    assert set(net.state_dict()) == set(plain.state_dict())  # checkpoints load either way


@pytest.mark.parametrize("p", [-0.1, 1.0])
def test_a_probability_outside_zero_one_is_refused(p):
    with pytest.raises(ValueError, match=r"dropout probability p must lie in \[0, 1\)"):
        MDNNet(12, 10, 4, dropout=p)
