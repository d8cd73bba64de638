"""The model registry: building MDN and BRP nets for a data set, rebuilding from config, errors."""

import pytest
import torch
from torch import nn

from spikedyn.models import (
    MODELS,
    BRPNet,
    MDNNet,
    UnknownModelError,
    build_model,
    model_names,
    rebuild_model,
    register_model,
)


def test_both_models_are_registered():
    assert {"mdn", "brp"} <= set(model_names())
    assert MODELS["brp"].model_class is BRPNet and MODELS["mdn"].model_class is MDNNet


def test_mdn_is_built_on_the_flattened_input():
    net = build_model("mdn", (1, 28, 28), 10, hidden=20, neuron="lif")
    assert isinstance(net, MDNNet)
    assert net.fc1.in_features == 784 and net.fc1.out_features == 20 and net.fc2.out_features == 10
    assert net(torch.rand(2, 3, 1, 28, 28)).rate.shape == (3, 10)


def test_brp_from_a_preset_and_from_a_string():
    net = build_model("brp", (784,), 10, topology="mnist")  # flat MNIST feeds the 1x28x28 conv
    assert isinstance(net, BRPNet) and net.input_shape == (1, 28, 28)
    assert build_model("brp", (30,), 10, topology="tidigits-1d").input_shape == (1, 30)
    assert build_model("brp", (64,), 3, topology="CONV_2_3_1_1_FC_3").input_shape == (1, 8, 8)
    assert build_model("brp", (2, 5), 3, topology="C_2_3_1_1_FC_3").input_shape == (2, 5)
    cifar = build_model("brp", (3072,), 10, topology="CONV_2_5_1_2_FC_10", input_shape=(3, 32, 32))
    assert cifar.input_shape == (3, 32, 32)


def test_brp_build_errors_name_the_problem():
    with pytest.raises(ValueError, match="needs topology="):
        build_model("brp", (784,), 10)
    with pytest.raises(ValueError, match=r"reads 900 values per step .*static view"):
        build_model("brp", (30,), 10, topology="tidigits-2d")  # the 2D net needs the whole spectrogram
    with pytest.raises(ValueError, match="pass input_shape"):
        build_model("brp", (3072,), 10, topology="CONV_2_5_1_2_FC_10")
    with pytest.raises(ValueError, match="has 10 output neurons but classes=11"):
        build_model("brp", (1024,), 11, topology="CONV_2_5_1_2_FC_10")


def test_unknown_model_and_unknown_options_list_the_choices():
    with pytest.raises(UnknownModelError, match="unknown model 'resnet'; choose one of .*brp.*mdn"):
        build_model("resnet", (784,), 10)
    with pytest.raises(ValueError, match="has no option.*hiden.*it takes hidden, neuron"):
        build_model("mdn", (784,), 10, hiden=10)


@pytest.mark.parametrize(
    "name, options",
    [("mdn", {"hidden": 6, "neuron": "mdn", "neuron_options": {"theta_slots": 2}}),
     ("brp", {"topology": "CONV_2_3_1_1_FC_4_FC_3", "neuron": "plif"})],
)
def test_rebuild_from_config_restores_the_state(name, options):
    torch.manual_seed(0)
    net = build_model(name, (1, 4, 4), 3, **options)
    again = rebuild_model(name, net.config, fast=False)
    again.load_state_dict(net.state_dict())
    x = torch.rand(3, 2, 16)
    torch.testing.assert_close(again(x).spikes, net(x).spikes)


def test_register_model_decorator():
    class Tiny(nn.Module):
        def __init__(self, inputs: int, classes: int) -> None:
            super().__init__()
            self.config = {"inputs": inputs, "classes": classes}

    @register_model("tiny-test", Tiny)
    def build_tiny(inputs_shape, classes):
        return Tiny(inputs_shape[0], classes)

    try:
        assert "tiny-test" in model_names()
        assert build_model("tiny-test", 5, 2).config == {"inputs": 5, "classes": 2}
        assert rebuild_model("tiny-test", {"inputs": 5, "classes": 2}).config["inputs"] == 5
        with pytest.raises(ValueError, match="already registered"):
            register_model("tiny-test", Tiny)(build_tiny)
    finally:
        MODELS.pop("tiny-test", None)
