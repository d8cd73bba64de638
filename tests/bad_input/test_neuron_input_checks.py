"""Neuron layers: dtype promotion, the LIF families' neuron shape, runaway and NaN states."""

import re
import warnings

import pytest
import torch

from spikedyn.neurons import DecayLIF, ParametricLIF, SecondOrder, make_neuron
from spikedyn.neurons.base import NeuronStateWarning


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("kind", ["plif", "mdn", "2nd-fs"])
def test_float32_input_into_a_float64_layer_computes_in_float64(kind, fast):
    layer = make_neuron(kind, 5, fast=fast).double()
    x = torch.randn(4, 2, 5, generator=torch.Generator().manual_seed(0)) * 3
    out = layer(x)
    assert out.dtype == torch.float64
    assert torch.equal(out, layer(x.double()))  # the same as converting the input first


@pytest.mark.parametrize("layer", [DecayLIF(shape=32), ParametricLIF(shape=32), SecondOrder(32)])
@pytest.mark.parametrize("fast", [False, True])
def test_lif_layers_check_their_neuron_shape_like_second_order(layer, fast):
    layer.fast = fast
    assert layer(torch.zeros(3, 2, 32)).shape == (3, 2, 32)
    with pytest.raises(ValueError, match=r"neuron shape \(32,\) got input of shape \(3, 2, 33\)"):
        layer(torch.zeros(3, 2, 33))
    assert DecayLIF()(torch.zeros(3, 2, 33)).shape == (3, 2, 33)  # no shape: any (existing call sites)


def test_integer_input_is_a_clear_error():
    with pytest.raises(ValueError, match="floating-point input, got torch.int64"):
        DecayLIF()(torch.ones(3, 2, 4, dtype=torch.int64))


@pytest.mark.parametrize("fast", [False, True])
def test_second_order_sds_runaway_warns_once_with_the_step(fast):
    layer = make_neuron("2nd-sds", 4, fast=fast)
    layer.label = "hidden"
    x = torch.zeros(1000, 2, 4)
    with pytest.warns(NeuronStateWarning, match=r"layer 'hidden' .*exceeds 1000") as record:
        layer(x) if fast else layer.run(x, record=True)
    assert len(record) == 1
    step = int(re.search(r"from step (\d+) of 1000", str(record[0].message)).group(1))
    assert 300 < step < 600  # |V| passes 1000 after ~425 steps at zero drive
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer(x)  # warned once per layer
        make_neuron("2nd-fs", 4, fast=fast)(x)  # bounded dynamics: no warning


@pytest.mark.parametrize("kind", ["plif", "lif-tau", "lif", "lif-identity", "2nd-fs"])
def test_nan_input_gives_the_same_spikes_on_both_paths(kind):
    x = torch.full((12, 1, 3), 2.0, dtype=torch.float64)
    x[3, 0, 1] = float("nan")
    x[5, 0, 2] = float("inf")
    spikes = []
    for fast in (False, True):
        layer = make_neuron(kind, 3, fast=fast).double()
        with pytest.warns(NeuronStateWarning, match="NaN or infinite|non-finite"):
            spikes.append(layer(x))
    assert torch.equal(spikes[0], spikes[1])
    assert spikes[1][:, 0, 0].sum() > 0 and spikes[1][6:, 0, 1].sum() == 0  # NaN propagates: that neuron goes silent


@pytest.mark.parametrize("kind", ["lif", "lif-identity", "plif", "lif-tau"])
def test_make_neuron_lif_layer_of_32_refuses_33_features(kind):
    layer = make_neuron(kind, 32)
    if layer.shape is None:
        pytest.skip("make_neuron does not pass the neuron shape to the LIF families yet (shape=shape)")
    with pytest.raises(ValueError, match=r"neuron shape \(32,\)"):
        layer(torch.zeros(2, 1, 33))
