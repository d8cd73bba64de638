"""Choosing a model's surrogate gradients (``--surrogate``, ``TrainConfig.surrogate``).

The checks pin behaviour against the spec's equations, not against the code under test: at T = 1
MDN's 2nd-order neuron starts from ``V_0 = 0, U_0 = 0.08, S_0 = 0`` (mdn.md), so its first
membrane value is ``V_1 = I - 0.08`` with ``I = sigmoid(z)``, and a rectangular window of half-width
``w`` gives ``dS/dz = 1[|V_1 - 0.5| < w] * sigmoid'(z)`` (common.md section 2).
"""

import json

import pytest
import torch

from spikedyn.cli import main
from spikedyn.models import MDNNet
from spikedyn.models.registry import build_model
from spikedyn.neurons import make_neuron
from spikedyn.surrogate import (
    ATan,
    RectWindow,
    Sigmoid,
    check_surrogate_assignments,
    parse_surrogate,
    set_surrogates,
    surrogate_layers,
)
from spikedyn.train import TrainConfig, Trainer, load_checkpoint


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("rect", RectWindow(0.5, 1.0)),
        ("rect:0.25", RectWindow(0.25, 1.0)),
        ("RECT:0.5:2", RectWindow(0.5, 2.0)),
        (" atan:3 ", ATan(3.0)),
        ("atan", ATan(2.0)),
        ("sigmoid:5", Sigmoid(5.0)),
    ],
)
def test_parse_surrogate_specs(spec, expected):
    assert parse_surrogate(spec) == expected


@pytest.mark.parametrize(
    "spec, words",
    [
        ("tanh", "unknown surrogate 'tanh'"),
        ("rect:abc", "half_width must be a number"),
        ("rect:0", "must be a finite number > 0"),
        ("rect:-1", "must be a finite number > 0"),
        ("atan:inf", "must be a finite number > 0"),
        ("atan:1:2", "at most 1 parameter"),
        ("", "a surrogate spec is a string"),
    ],
)
def test_bad_surrogate_specs_say_what_is_wrong(spec, words):
    with pytest.raises(ValueError, match=words):
        parse_surrogate(spec)


def test_assignments_are_checked():
    assert check_surrogate_assignments(None) == []
    assert check_surrogate_assignments("rect:0.2") == ["rect:0.2"]
    assert check_surrogate_assignments([" neuron1 = rect:0.1", "atan"]) == ["neuron1=rect:0.1", "atan"]
    with pytest.raises(ValueError, match="every layer is given twice"):
        check_surrogate_assignments(["rect:0.1", "atan"])
    with pytest.raises(ValueError, match="layer 'neuron1' is given twice"):
        check_surrogate_assignments(["neuron1=rect:0.1", "neuron1=atan"])
    with pytest.raises(ValueError, match="names no layer"):
        check_surrogate_assignments(["=rect:0.1"])


def test_make_neuron_reads_a_spec_string():
    for kind in ("lif", "lif-identity", "plif", "lif-tau", "mdn", "2nd-fs"):
        assert make_neuron(kind, 3, surrogate="rect:0.1").surrogate == RectWindow(0.1, 1.0)


def test_set_surrogates_every_layer_and_by_name():
    net = MDNNet(6, 4, 3)
    assert set(surrogate_layers(net)) == {"neuron1", "neuron2"}
    set_surrogates(net, ["atan:3", "neuron1=rect:0.1"])  # the named layer wins over the every-layer spec
    assert net.neuron1.surrogate == RectWindow(0.1, 1.0) and net.neuron2.surrogate == ATan(3.0)
    set_surrogates(net, [])  # nothing asked: nothing changed
    assert net.neuron1.surrogate == RectWindow(0.1, 1.0)
    with pytest.raises(ValueError, match="no spiking layer 'neuron3'.*neuron1, neuron2"):
        set_surrogates(net, ["neuron3=rect:0.1"])
    with pytest.raises(ValueError, match="no spiking layer with a surrogate"):
        set_surrogates(torch.nn.Linear(2, 2), ["rect:0.1"])


def test_set_surrogates_reaches_nested_layers_of_every_model():
    brp = build_model("brp", (1, 28, 28), 10, topology="CONV_4_5_1_2_FC_8_FC_10")
    names = list(surrogate_layers(brp))
    assert len(names) == 3 and all("." in n for n in names)  # the blocks' neurons
    first = names[0].split(".")[0]
    chosen = set_surrogates(brp, [f"{first}=rect:0.2"])
    assert chosen and all(n.startswith(first + ".") for n in chosen)
    nrr = build_model("nrr", (5,), 3, hidden=7)
    chosen = set_surrogates(nrr, ["rect:0.3"])
    assert chosen and all(layer == RectWindow(0.3, 1.0) for layer in chosen.values())


@pytest.mark.parametrize("fast", [True, False], ids=["compiled", "reference"])
@pytest.mark.parametrize("half_width", [0.05, 0.2, 0.5])
def test_hidden_window_gradient_matches_the_closed_form(fast, half_width):
    """T = 1: d(sum of hidden spikes)/dz = 1[|sigmoid(z) - 0.08 - 0.5| < w] sigmoid'(z), per neuron."""
    torch.manual_seed(0)
    net = MDNNet(5, 400, 3, fast=fast)
    set_surrogates(net, [f"neuron1=rect:{half_width}"])
    x = torch.randn(1, 2, 5)
    z = torch.nn.functional.linear(x, net.fc1.weight, net.fc1.bias).detach()
    net.fc1.weight.requires_grad_(False)
    net.fc1.bias.requires_grad_(True)
    net(x).taps[0].sum().backward()
    i = torch.sigmoid(z[0])
    window = ((i - 0.08 - 0.5).abs() < half_width).float()
    expected = (window * i * (1 - i)).sum(0)  # the bias gradient sums dS/dz over the batch
    torch.testing.assert_close(net.fc1.bias.grad, expected, rtol=1e-5, atol=1e-7)
    assert 0 < window.mean() < 1  # the window both opens and closes on these inputs


def test_trainer_applies_resumes_and_loads_the_choice(tmp_path):
    out = tmp_path / "run"
    config = TrainConfig(dataset="digits", hidden=16, epochs=1, steps=4, surrogate=["neuron1=rect:0.1"],
                         out=str(out), progress=False).resolved()
    trainer = Trainer(config)
    assert trainer.model.neuron1.surrogate == RectWindow(0.1, 1.0)
    assert trainer.model.neuron2.surrogate == RectWindow(0.5, 1.0)
    trainer.fit()
    assert json.loads((out / "config.json").read_text())["surrogate"] == ["neuron1=rect:0.1"]
    model, loaded, _ = load_checkpoint(out)
    assert loaded.surrogate == ["neuron1=rect:0.1"] and model.neuron1.surrogate == RectWindow(0.1, 1.0)
    resumed = Trainer(TrainConfig.from_dict({**loaded.__dict__, "epochs": 2}).resolved())
    assert resumed.resume() and resumed.model.neuron1.surrogate == RectWindow(0.1, 1.0)
    other = Trainer(TrainConfig.from_dict({**loaded.__dict__, "surrogate": ["rect:0.2"]}).resolved())
    with pytest.raises(ValueError, match="surrogate"):
        other.resume()


def test_cli_surrogate_flag(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["train", "--dataset", "digits", "--hidden", "8", "--steps", "3", "--epochs", "1", "--quiet",
                 "--surrogate", "atan:4", "neuron1=rect:0.2", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["surrogate"] == ["atan:4", "neuron1=rect:0.2"]
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "digits", "--surrogate", "rect:zero", "--out", str(tmp_path / "bad")])
    assert "half_width must be a number" in capsys.readouterr().err
