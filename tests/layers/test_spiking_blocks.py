"""Spiking blocks: output and neuron shapes, the decay-LIF trace through a conv, taps, errors."""

import pytest
import torch

from spikedyn.layers import FCLIF, Conv1dLIF, Conv2dLIF, SpikeTap, conv_output_size, pool_output_size


def test_output_size_formulas():
    assert conv_output_size(28, 5, 1, 2) == 28
    assert conv_output_size(32, 3, 2, 1) == 16  # floor((32 + 2 - 3) / 2) + 1
    assert pool_output_size(30, 3) == 10
    assert pool_output_size(7, 2) == 3
    with pytest.raises(ValueError, match="does not fit"):
        conv_output_size(3, 5)


@pytest.mark.parametrize("fast", [True, False])
def test_conv2d_lif_with_a_1x1_kernel_reproduces_the_decay_lif_trace(fast):
    # I = 0.5 x + 0.2 per pixel; V_t = 0.2 V_{t-1} (1 - S_{t-1}) + I, S_t = 1[V_t > 0.5]  (spec common.md 3)
    block = Conv2dLIF(1, 1, 1, input_size=2, classes=2, fast=fast)
    with torch.no_grad():
        block.conv.weight.fill_(0.5)
        block.conv.bias.fill_(0.2)
    image = torch.tensor([[0.5, 0.5], [1.0, 0.0]])  # I = 0.45, 0.45, 0.7, 0.2
    x = image.expand(4, 1, 1, 2, 2)  # constant over T = 4
    out, spikes = block(x)
    # I = 0.45: V = 0.45, 0.54 (spike), 0.45 (carried V zeroed), 0.54 (spike)
    # I = 0.7: V = 0.7 every step (spikes every step); I = 0.2: V = 0.2, 0.24, 0.248, 0.2496 (silent)
    expected_spikes = [[[0, 0], [1, 0]], [[1, 1], [1, 0]], [[0, 0], [1, 0]], [[1, 1], [1, 0]]]
    assert spikes[:, 0, 0].tolist() == expected_spikes
    run = block.neuron.run(block.conv(x.reshape(4, 1, 2, 2)).reshape(4, 1, 1, 2, 2), record=True)
    expected_v = {(0, 0): [0.45, 0.54, 0.45, 0.54], (1, 0): [0.7] * 4, (1, 1): [0.2, 0.24, 0.248, 0.2496]}
    for (i, j), trace in expected_v.items():
        assert run.traces["v"][:, 0, 0, i, j].tolist() == pytest.approx(trace, abs=1e-6)
    # AvgPool2d(2, 2) of the spikes: the fraction of the 4 pixels that fired
    assert out.shape == (4, 1, 1, 1, 1)
    assert out.flatten().tolist() == [0.25, 0.75, 0.25, 0.75]


def test_conv2d_lif_shapes_and_tap():
    block = Conv2dLIF(3, 4, 5, 1, 2, input_size=(8, 6), classes=7)
    assert block.neuron_shape == (4, 8, 6) and block.out_shape == (4, 4, 3)
    assert block.tap.projection is None and block.tap.ensure_projection().shape == (7, 4 * 8 * 6)
    out, spikes = block(torch.rand(2, 3, 3, 8, 6))
    assert out.shape == (2, 3, 4, 4, 3) and spikes.shape == (2, 3, 4, 8, 6)


def test_conv1d_lif_pools_with_the_conv_kernel_size():
    block = Conv1dLIF(1, 5, 3, 1, 1, input_size=30, classes=10)
    assert isinstance(block.tap, SpikeTap)
    assert block.neuron_shape == (5, 30) and block.out_shape == (5, 10)
    out, spikes = block(torch.rand(2, 2, 1, 30))
    assert out.shape == (2, 2, 5, 10) and spikes.shape == (2, 2, 5, 30)


def test_plif_style_conv_block_batch_norm_max_pool_no_bias():
    block = Conv2dLIF(2, 3, 3, 1, 1, input_size=4, classes=2, neuron="plif", bias=False, batch_norm=True, pool="max")
    assert block.conv.bias is None
    out, spikes = block(torch.rand(2, 3, 2, 4, 4))
    assert out.shape == (2, 3, 3, 2, 2)
    assert torch.equal(out, torch.nn.functional.max_pool2d(spikes.flatten(0, 1), 2).reshape(out.shape))


def test_fc_lif_hidden_and_output():
    hidden = FCLIF(12, 4, classes=3)
    out, spikes = hidden(torch.rand(2, 5, 3, 2, 2))  # flattened to 12 per step
    assert out.shape == spikes.shape == (2, 5, 4)
    output = FCLIF(4, 3, hidden=False)
    assert output.tap is None
    out, spikes = output(out)
    assert out is spikes and out.shape == (2, 5, 3)
    with pytest.raises(ValueError, match="needs classes"):
        FCLIF(4, 3)


def test_local_tap_detaches_what_the_next_layer_reads_but_not_the_tapped_spikes():
    block = Conv2dLIF(1, 2, 3, 1, 1, input_size=4, classes=2)
    block.tap.local = True
    x = torch.rand(2, 1, 1, 4, 4)
    out, spikes = block(x)
    assert not out.requires_grad and spikes.requires_grad


def test_blocks_reject_wrong_shapes_and_options():
    block = Conv2dLIF(1, 2, 5, 1, 2, input_size=28, classes=10)
    with pytest.raises(ValueError, match=r"Conv2dLIF expects input \[T, B, 1, 28, 28\]"):
        block(torch.rand(2, 1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"FCLIF expects input \[T, B, 6\]"):
        FCLIF(6, 2, classes=2)(torch.rand(2, 1, 5))
    with pytest.raises(ValueError, match="does not fit"):
        Conv2dLIF(1, 2, 7, input_size=4, classes=2)
    with pytest.raises(ValueError, match="pool must be"):
        Conv2dLIF(1, 2, 3, input_size=4, classes=2, pool="sum")
    with pytest.raises(ValueError, match="out_channels"):
        Conv1dLIF(1, 0, 3, input_size=4, classes=2)
