"""BRP networks: topology strings, the Table II shapes, taps, read-out, neurons and gradients."""

import math

import pytest
import torch

from spikedyn.layers import Conv1dLIF, Conv2dLIF, FCLIF, set_local, spike_taps
from spikedyn.models import BRP_PRESETS, BRPNet, TopologyError, format_topology, parse_topology
from spikedyn.models.brp import ConvLayer, FCLayer

# spec brp.md section 3: (conv neurons, pooled conv output = FC input, hidden FC, classes)
TABLE_II = {
    "mnist": ((32, 28, 28), 6272, 1000, 10),
    "cifar10": ((32, 32, 32), 8192, 1000, 10),
    "tidigits-1d": ((100, 30), 1000, 1000, 10),
    "fsdd-1d": ((100, 30), 1000, 1000, 10),
    "tidigits-2d": ((32, 30, 30), 7200, 1000, 10),
    "fsdd-2d": ((32, 30, 30), 7200, 1000, 10),
    "dvsgesture": ((32, 32, 32), 8192, 1000, 11),
}


def test_parse_the_authors_topology_strings():
    assert parse_topology("CONV_32_5_1_2_FC_1000_FC_10") == (
        ConvLayer(2, 32, 5, 1, 2), FCLayer(1000), FCLayer(10),
    )
    assert parse_topology("C_100_3_1_1_FC_1000_FC_10")[0] == ConvLayer(1, 100, 3, 1, 1)
    assert format_topology(parse_topology("conv_4_3_1_0_fc_2")) == "CONV_4_3_1_0_FC_2"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty topology"),
        ("POOL_2_FC_10", "unknown layer 'POOL'"),
        ("CONV_32_5_1_FC_10", r"takes 4 whole number\(s\)"),
        ("FC_ten", r"takes 1 whole number\(s\)"),
        ("CONV_32_5_1_-1_FC_10", r"takes 4 whole number\(s\)"),
        ("FC_10_", "unknown layer ''"),
        ("FC_0", "units must be >= 1"),
        ("CONV_32_0_1_2_FC_10", "kernel must be >= 1"),
        ("FC_10_CONV_32_5_1_2_FC_10", "after an FC layer"),
        ("C_4_3_1_1_CONV_4_3_1_1_FC_2", "mixes Conv1d"),
        ("CONV_32_5_1_2", "must end with the output layer"),
    ],
)
def test_malformed_topologies_are_rejected_with_the_reason(text, message):
    with pytest.raises(TopologyError, match=message):
        parse_topology(text)


@pytest.mark.parametrize("name", sorted(TABLE_II))
def test_table_ii_shapes(name):
    conv_neurons, fc_in, hidden, classes = TABLE_II[name]
    net = BRPNet(name)
    conv, fc, out = net.blocks
    assert isinstance(conv, Conv1dLIF if len(conv_neurons) == 2 else Conv2dLIF)
    assert conv.neuron_shape == conv_neurons and math.prod(conv.out_shape) == fc_in
    assert isinstance(fc, FCLIF) and fc.fc.in_features == fc_in and fc.fc.out_features == hidden
    assert out.fc.out_features == classes and out.tap is None and net.classes == classes
    # the taps and their projections B_l [C, N_l] (spec brp.md section 4: N_l = 25088 for MNIST, 3000 for TIDigits 1D)
    assert [tap.ensure_projection().shape for tap in spike_taps(net)] == [(classes, math.prod(conv_neurons)), (classes, hidden)]


def test_forward_taps_in_tap_order_with_the_neuron_shapes_and_rate_is_count_over_t():
    torch.manual_seed(0)
    net = BRPNet("CONV_3_3_1_1_FC_6_FC_4", input_shape=(2, 6, 6))
    T = 3
    x = (torch.rand(T, 2, 72) < 0.5).float()  # flat per-step input, reshaped to [2, 6, 6]
    out = net(x)
    assert out.spikes.shape == (T, 2, 4) and out.rate.shape == (2, 4)
    torch.testing.assert_close(out.rate, out.spikes.sum(0) / T)
    taps = spike_taps(net)
    assert [tuple(s.shape) for s in out.taps] == [(T, 2, *tap.shape) for tap in taps] == [(T, 2, 3, 6, 6), (T, 2, 6)]
    assert all(s.requires_grad for s in out.taps)


def test_spoken_digits_1d_input_maps_step_t_to_a_one_channel_conv1d_input():
    net = BRPNet("tidigits-1d")
    x = torch.rand(4, 2, 30)  # [T, B, F]: row t of each sample's spectrogram at step t
    adapted = net.adapt_input(x)
    assert adapted.shape == (4, 2, 1, 30)
    assert torch.equal(adapted[2, 1, 0], x[2, 1])
    conv = net.blocks[0].conv
    out = net(x)
    expected = net.blocks[0].neuron(torch.stack([conv(x_t.unsqueeze(1)) for x_t in x]))  # x_t [B, 30] -> [B, 1, 30]
    assert torch.equal(out.taps[0], expected)
    with pytest.raises(ValueError, match="reads 30 values per step"):
        net(torch.rand(4, 2, 31))


@pytest.mark.parametrize("name", ["mnist", "dvsgesture"])
def test_presets_run_on_flat_frames(name):
    net = BRPNet(name)
    out = net(torch.rand(2, 1, math.prod(BRP_PRESETS[name].input_shape)))
    assert out.rate.shape == (1, BRP_PRESETS[name].classes)


def test_any_neuron_kind_can_replace_the_brp_cell():
    torch.manual_seed(1)
    net = BRPNet("CONV_2_3_1_1_FC_5_FC_3", input_shape=(1, 4, 4), neuron="2nd-fs")
    out = net(torch.rand(3, 2, 1, 4, 4))
    assert out.rate.shape == (2, 3) and ((out.rate >= 0) & (out.rate <= 1)).all()
    assert net.dynamic_parameters() == []  # frozen meta neuron: theta is a buffer
    plif = BRPNet("CONV_2_3_1_1_FC_5_FC_3", input_shape=(1, 4, 4), neuron="plif")
    dynamics, weights = plif.dynamic_parameters(), plif.weight_parameters()
    assert len(dynamics) == 3 and all(p.dim() == 0 for p in dynamics)
    assert len(dynamics) + len(weights) == len(list(plif.parameters()))
    assert len(BRPNet("FC_4_FC_2", input_shape=(3,), neuron="mdn").learned_dynamics()) == 2


def test_gradient_reaches_the_conv_weights_in_bptt_mode_and_not_with_local_taps():
    torch.manual_seed(2)
    net = BRPNet("CONV_4_3_1_1_FC_16_FC_3", input_shape=(1, 6, 6))
    x = torch.rand(4, 3, 1, 6, 6)
    net(x).rate.sum().backward()
    conv_grad = net.blocks[0].conv.weight.grad
    assert conv_grad is not None and conv_grad.abs().sum() > 0
    net.zero_grad(set_to_none=True)
    set_local(net, True)
    net(x).rate.sum().backward()
    assert net.blocks[0].conv.weight.grad is None  # the output loss stops at the taps
    assert net.blocks[1].fc.weight.grad is None
    assert net.blocks[2].fc.bias.grad.abs().sum() > 0  # the output layer still learns from it


def test_config_rebuilds_the_network():
    net = BRPNet("tidigits-1d", neuron="lif", neuron_options={"decay": 0.3})
    assert net.config == {
        "topology": "C_100_3_1_1_FC_1000_FC_10", "input_shape": [1, 30], "classes": 10, "neuron": "lif",
        "neuron_options": {"decay": 0.3},
    }
    again = BRPNet(**net.config)
    again.load_state_dict(net.state_dict())
    assert again.blocks[0].neuron.decay == 0.3


def test_constructor_errors():
    with pytest.raises(ValueError, match="needs input_shape"):
        BRPNet("CONV_2_3_1_1_FC_2")
    with pytest.raises(ValueError, match=r"input_shape must be \(C, H, W\)"):
        BRPNet("CONV_2_3_1_1_FC_2", input_shape=(16,))
    with pytest.raises(ValueError, match="has 10 output neurons but classes=11"):
        BRPNet("mnist", classes=11)
