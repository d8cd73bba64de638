"""Silent-neuron analysis (BRP paper section III-G, Fig. 8)."""

import importlib.util
import json
import math

import pytest
import torch
from torch import nn

from spikedyn.analysis import (
    DEFAULT_FRACTIONS,
    SilentSweep,
    alpha_for_fraction,
    rank_code,
    silent_fraction,
    silent_fractions,
    silent_sweep,
    tap_layers,
)
from spikedyn.analysis.silent import alpha_code, expected_fraction
from spikedyn.cli import main
from spikedyn.data import load_dataset
from spikedyn.models import BRPNet, MDNNet
from spikedyn.train import TrainConfig


def hand_set_fc_net() -> BRPNet:
    """3 inputs -> 4 hidden -> 2 outputs, decay-LIF (V = 0.2 V (1 - S) + W x, spike when V > 0.5), no biases.

    hidden 0 fires whenever input 0 spikes; hidden 1 whenever input 1 spikes; hidden 2 never
    (negative weights); hidden 3 never (weight 0.3: even a spike every step only charges it to
    0.3 / (1 - 0.2) = 0.375 < 0.5).
    """
    net = BRPNet("FC_4_FC_2", input_shape=(3,), classes=2)
    with torch.no_grad():
        net.blocks[0].fc.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [-1.0, -1.0, -1.0], [0.3, 0, 0]]))
        net.blocks[0].fc.bias.zero_()
    return net


def test_silent_counts_of_a_hand_set_fc_net():
    net = hand_set_fc_net()
    x = torch.zeros(3, 3, 3)  # [T, B, inputs]
    x[1, 0, 0] = 1  # sample 0: input 0 spikes once -> hidden 0 fires; 1, 2, 3 silent
    x[:, 1, 0] = 1  # sample 1: inputs 0 and 1 every step -> hidden 0, 1 fire; 2, 3 silent
    x[:, 1, 1] = 1
    # sample 2: no input at all -> all silent
    (hidden,) = silent_fractions(net, x)
    assert hidden.tolist() == [0.75, 0.5, 1.0]
    spikes = net(x).taps[0]
    assert spikes[:, 1, 3].sum() == 0  # the 0.3-weight neuron stays below threshold


def test_silent_counts_of_a_hand_set_conv_net():
    net = BRPNet("CONV_2_1_1_0_FC_3_FC_2", input_shape=(1, 2, 2), classes=2)
    with torch.no_grad():
        conv = net.blocks[0].conv
        conv.weight.copy_(torch.tensor([1.0, -1.0]).reshape(2, 1, 1, 1))  # channel 1 never fires
        conv.bias.zero_()
    x = torch.zeros(2, 2, 1, 2, 2)
    x[0, 0, 0, 0, 0] = 1  # sample 0: one pixel once -> 1 of 8 conv neurons fires
    x[:, 1, 0] = 1  # sample 1: every pixel every step -> the 4 neurons of channel 0 fire
    conv_silent, _ = silent_fractions(net, x)
    assert conv_silent.tolist() == [7 / 8, 4 / 8]
    assert silent_fraction(net(x).taps[0]).tolist() == [7 / 8, 4 / 8]
    with pytest.raises(ValueError, match=r"\[T, B"):
        silent_fraction(torch.zeros(3, 4))


def test_tap_layers_name_conv_and_fc_taps():
    brp = tap_layers(BRPNet("CONV_2_3_1_1_FC_5_FC_4_FC_2", input_shape=(1, 6, 6), classes=2))
    assert [(t.name, t.label, t.kind, t.neurons) for t in brp] == [
        ("blocks.0", "CONV 2x6x6", "conv", 72), ("blocks.1", "FC 5", "fc", 5), ("blocks.2", "FC 4", "fc", 4),
    ]
    mdn = tap_layers(MDNNet(8, 6, 3, neuron="lif"))
    assert [(t.name, t.label, t.kind) for t in mdn] == [("tap1", "FC 6", "fc")]


def test_rank_code_spikes_an_exact_fraction_from_the_encoder_values():
    g = torch.Generator().manual_seed(0)
    p = torch.zeros(5, 4, 10)
    p[..., :6] = torch.linspace(0.1, 1.0, 6)  # 6 positive units, 4 zero units
    spikes = rank_code(p, 0.3, g)
    assert spikes.shape == p.shape and spikes.sum((2,)).eq(3).all()
    assert spikes[..., 6:].sum() == 0  # zero-valued units stay off while positive ones remain
    full = rank_code(p, 0.8, g)  # 8 of 10: all 6 positive units plus 2 background ones
    assert full.sum(2).eq(8).all() and full[..., :6].eq(1).all()
    capped = rank_code(p, 0.8, g, fill_background=False)
    assert capped.sum(2).eq(6).all()
    assert rank_code(p, 0.0, g).sum() == 0
    # brighter units spike more often (the Bernoulli rule p > alpha u with alpha set per step)
    many = rank_code(p[:1, :1].expand(1, 4000, 10), 0.2, g).mean((0, 1))
    assert many[5] > many[2] > many[0] > 0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rank_code(p, 1.5, g)


def test_alpha_for_fraction_matches_the_expected_encoder_fraction():
    p = torch.tensor([[0.0, 0.0, 0.2, 0.5, 1.0], [0.0, 0.1, 0.3, 0.6, 0.9]])
    alpha, ok = alpha_for_fraction(p, 0.3)
    assert ok and expected_fraction(p, alpha) == pytest.approx(0.3, abs=1e-6)
    assert alpha_for_fraction(p, 0.0) == (math.inf, True)
    assert alpha_for_fraction(p, 0.9) == (0.0, False)  # only 7 of 10 values are positive
    g = torch.Generator().manual_seed(1)
    drawn = alpha_code(p.expand(2000, 2, 5), alpha, g)
    assert float(drawn.mean()) == pytest.approx(0.3, abs=0.01)
    assert alpha_code(p, math.inf).sum() == 0 and alpha_code(p, 0.0).sum() == 7


def digits_setup(steps=3):
    dataset = load_dataset("digits", flatten=False)
    config = TrainConfig(dataset="digits", steps=steps, model="brp", progress=False).resolved()
    torch.manual_seed(0)
    net = BRPNet("CONV_3_3_1_1_FC_8_FC_10", input_shape=(1, 8, 8), classes=10)
    return dataset, config, net


def test_sweep_zero_input_silences_a_bias_free_net_and_fractions_are_exact():
    dataset, config, net = digits_setup()
    with torch.no_grad():
        for block in net.blocks:
            (block.conv if hasattr(block, "conv") else block.fc).bias.zero_()
            (block.conv if hasattr(block, "conv") else block.fc).weight.mul_(4)  # so that layers fire at all
    sweep = silent_sweep(net, dataset, config, fractions=[0.0, 0.25, 0.5], samples=40, batch_size=16)
    assert isinstance(sweep, SilentSweep) and sweep.samples == 40 and sweep.steps == 3
    assert [layer.label for layer in sweep.layers] == ["CONV 3x8x8", "FC 8"]
    zero, quarter, half = sweep.points
    assert zero.input_fraction == 0.0 and all(v == 1.0 for v in zero.silent.values())
    assert all(v == 0.0 for v in zero.rate.values())
    for point, k in ((quarter, 16), (half, 32)):  # exactly k of the 64 pixels per step and sample
        assert point.input_fraction == point.input_fraction_min == point.input_fraction_max == k / 64
        assert point.reachable
    assert quarter.silent["CONV 3x8x8"] < 1.0
    assert 0.0 <= half.accuracy <= 1.0
    d = sweep.to_dict()
    assert d["paper_at_40"] is None and d["method"] == "rank" and len(d["points"]) == 3
    json.dumps(d)
    assert "silent CONV 3x8x8 %" in sweep.table()


def test_sweep_of_the_mdn_net_reads_its_one_tap():
    dataset = load_dataset("digits")
    config = TrainConfig(dataset="digits", steps=3, progress=False).resolved()
    torch.manual_seed(0)
    sweep = silent_sweep(MDNNet(64, 12, 10, neuron="lif"), dataset, config, fractions=[0.0, 0.4], samples=10)
    assert [layer.label for layer in sweep.layers] == ["FC 12"]
    assert sweep.points[1].input_fraction == round(0.4 * 64) / 64


def test_sweep_alpha_method_reports_the_measured_fraction():
    dataset, config, net = digits_setup()
    sweep = silent_sweep(net, dataset, config, fractions=[0.0, 0.2, 0.95], samples=30, method="alpha")
    zero, fifth, most = sweep.points
    assert zero.alpha == math.inf and zero.input_fraction == 0.0
    assert fifth.reachable and fifth.input_fraction == pytest.approx(0.2, abs=0.03)
    assert fifth.input_fraction_min < fifth.input_fraction_max  # one alpha: samples differ
    assert not most.reachable and most.alpha == 0.0 and most.input_fraction < 0.95
    assert sweep.to_dict()["points"][0]["alpha"] == "inf"


def test_sweep_refuses_models_without_taps_and_bad_fractions():
    dataset, config, net = digits_setup()

    class NoTaps(nn.Module):
        def forward(self, x):  # pragma: no cover - never reached
            raise AssertionError

    with pytest.raises(ValueError, match="no SpikeTap"):
        silent_sweep(NoTaps(), dataset, config)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        silent_sweep(net, dataset, config, fractions=[0.1, 2.0])
    with pytest.raises(ValueError, match="method"):
        silent_sweep(net, dataset, config, method="bogus")


def test_paper_values_belong_to_mnist_and_spoken_digits():
    def paper(name):
        return SilentSweep([], [], "rank", 1, 1, dataset=name).paper

    assert paper("mnist")["layers"] == {"conv": ("CONV", 0.5326), "fc": ("FC1000", 0.4852)}
    assert paper("fsdd")["task"] == paper("tidigits")["task"] == "TIDigits"
    assert paper("fsdd")["layers"]["conv"][1] == 0.7550 and paper("fsdd")["layers"]["fc"][1] == 0.4932
    assert paper("digits") is None and paper("cifar10") is None
    assert DEFAULT_FRACTIONS[0] == 0.0 and DEFAULT_FRACTIONS[-1] == 0.4 and len(DEFAULT_FRACTIONS) == 9


def test_cli_analyze_silent_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([
        "train", "--model", "brp", "--model-option", "topology=CONV_4_3_1_1_FC_16_FC_10", "--data-option",
        "flatten=false", "--epochs", "1", "--steps", "4", "--rule", "brp", "--out", str(run), "--quiet",
    ]) == 0
    capsys.readouterr()
    out = tmp_path / "silent"
    assert main(["analyze", "silent", str(run), "--fractions", "0,0.2,0.4", "--samples", "25", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "silent CONV 4x8x8 %" in printed and "silent FC 16 %" in printed
    result = json.loads((out / "silent_neurons.json").read_text())
    assert result["dataset"] == "digits" and result["rule"] == "brp" and result["samples"] == 25
    assert result["network"] == "CONV_4_3_1_1_FC_16_FC_10" and result["epoch"] == 1
    assert [p["target"] for p in result["points"]] == [0.0, 0.2, 0.4]
    assert [layer["label"] for layer in result["layers"]] == ["CONV 4x8x8", "FC 16"]
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "silent_neurons.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit):
        main(["analyze", "silent", str(run), "--fractions", "0,2"])
    assert "numbers in [0, 1]" in capsys.readouterr().err


def test_sweep_of_sequence_data_feeds_step_t_its_own_values():
    from torch.utils.data import TensorDataset

    from spikedyn.data import SpikeDataset

    x = torch.zeros(12, 5, 6)  # [N, T_stored, F]: only step 1 has positive values
    x[:, 1] = torch.rand(12, 6) + 0.1
    y = torch.arange(12) % 2
    dataset = SpikeDataset("toy-seq", TensorDataset(x, y), TensorDataset(x, y), 2, kind="sequence", encoder="direct")
    config = TrainConfig(dataset="toy-seq", steps=4, model="brp", progress=False).resolved()
    net = BRPNet("C_4_3_1_1_FC_8_FC_2", input_shape=(1, 6), classes=2)
    sweep = silent_sweep(net, dataset, config, fractions=[0.5], samples=0, method="alpha")
    (point,) = sweep.points
    assert sweep.samples == 12 and sweep.steps == 4
    # only step 1 of the 4 fed has positive values: at most 6 of 24 unit-steps can spike
    assert not point.reachable and point.input_fraction == point.input_fraction_max == 0.25
    assert "analog" in sweep.run_encoder
    exact = silent_sweep(net, dataset, config, fractions=[0.5], samples=0).points[0]
    assert exact.input_fraction == exact.input_fraction_min == 0.5 and exact.background == pytest.approx(0.75)
    capped = silent_sweep(net, dataset, config, fractions=[0.5], samples=0, fill_background=False).points[0]
    assert capped.input_fraction == pytest.approx(0.125) and capped.background == 0 and not capped.reachable
