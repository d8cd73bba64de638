"""The non-spiking baseline of the NRR paper's noise figures (Figs. 4, 6, 7): model ``nrr`` with
``spiking=False``, a tanh (or ReLU) RNN of the same sizes over the same sparse mask, trained by
BPTT through the same trainer and per-step read-out, and tested under input noise."""

import json

import pytest
import torch

from spikedyn.analysis.robustness import noise_curve_run, run_label
from spikedyn.cli import main
from spikedyn.models import NRRNet, build_model, rebuild_model
from spikedyn.models.nrr import AnalogRecurrent
from spikedyn.neurons import sparse_recurrent_mask
from spikedyn.readout import readout_of
from spikedyn.train import TrainConfig, Trainer


def test_baseline_has_the_nrr_sizes_and_mask_and_no_spikes():
    spiking = build_model("nrr", (39,), 10, hidden=20, mask_seed=4)
    analog = build_model("nrr", (39,), 10, hidden=20, mask_seed=4, spiking=False)
    assert isinstance(analog, NRRNet) and isinstance(analog.rfc[0], AnalogRecurrent)
    assert readout_of(analog).kind == "step" and analog.topology == "RNN20-FC10 (non-spiking tanh)"
    shapes = lambda net: sorted((k, tuple(v.shape)) for k, v in net.state_dict().items())  # noqa: E731
    assert shapes(analog) == shapes(spiking)  # W_f, b_f, W_r, b_r, mask, W_o, b_o
    torch.testing.assert_close(analog.rfc[0].mask, spiking.rfc[0].mask)
    torch.testing.assert_close(analog.rfc[0].mask, sparse_recurrent_mask(20, 0.5, torch.Generator().manual_seed(4)))
    assert torch.all(analog.rfc[0].fc_r.weight[analog.rfc[0].mask == 0] == 0)
    out = analog(torch.rand(6, 3, 39))
    assert out.spikes.shape == (6, 3, 10) and out.taps[0].shape == (6, 3, 20)
    h = out.taps[0]
    assert h.abs().max() < 1 and not set(h.unique().tolist()) <= {0.0, 1.0, 2.0}  # analog tanh values
    again = rebuild_model("nrr", analog.config)
    again.load_state_dict(analog.state_dict())
    x = torch.rand(4, 2, 39)
    torch.testing.assert_close(again(x).spikes, analog(x).spikes)


def test_baseline_recurrence_and_options():
    net = build_model("nrr", (3,), 2, hidden=4, spiking=False, sparseness=0.0)
    layer = net.rfc[0]
    x = torch.rand(3, 1, 3)
    z = layer.fc_f(x)
    w = layer.fc_r.weight * layer.mask
    h1 = torch.tanh(z[0] + layer.fc_r.bias)
    h2 = torch.tanh(z[1] + h1 @ w.t() + layer.fc_r.bias)
    torch.testing.assert_close(layer(x)[:2], torch.stack([h1, h2]))
    relu = build_model("nrr", (3,), 2, hidden=4, spiking=False, recurrent=False, activation="relu")
    assert relu.rfc[0].fc_r is None and relu.topology == "DNN4-FC2 (non-spiking relu)"
    assert (relu.rfc[0](x) >= 0).all()
    with pytest.raises(ValueError, match="shallow net only"):
        build_model("nrr", (81,), 3, hidden=4, spiking=False, deep=True)
    with pytest.raises(ValueError, match="activation must be one of tanh, relu"):
        build_model("nrr", (3,), 2, hidden=4, spiking=False, activation="sigmoid")
    assert run_label("nrr", "bptt", 0.0, {"spiking": False}) == "non-spiking RNN (tanh)"
    assert run_label("nrr", "bptt", 0.2, {"spiking": False, "recurrent": False, "activation": "relu"}) == (
        "non-spiking DNN (relu), trained at p = 20 %")
    assert run_label("nrr", "brp", 0.0, {}) == "NRR-SNN"


def train_run(tmp_path, name, rule="bptt", **options):
    cfg = TrainConfig(model="nrr", model_options={"hidden": 16, "mask_seed": 0, **options}, steps=5, epochs=1,
                      batch_size=50, lr=1e-2, out=str(tmp_path / name), progress=False, seed=2, eval_batch_size=200,
                      rule=rule)
    trainer = Trainer(cfg)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    return trainer, before


def test_baseline_trains_by_bptt_and_the_noise_test_plots_all_three(tmp_path, capsys):
    trainer, before = train_run(tmp_path, "rnn", spiking=False)
    layer = trainer.model.rfc[0]
    for key in ("rfc.0.fc_f.weight", "rfc.0.fc_r.weight", "out.weight"):
        assert not torch.equal(trainer.model.state_dict()[key], before[key]), key  # every layer learned
    assert torch.all(layer.fc_r.weight[layer.mask == 0] == 0)  # masked weights stay exactly 0
    record = json.loads((tmp_path / "rnn" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["metric"] == "frame-accuracy" and 0 <= record["test_accuracy"] <= 1
    train_run(tmp_path, "nrr", rule="brp")
    train_run(tmp_path, "bp")
    curve = noise_curve_run(tmp_path / "rnn", levels=[0.0, 0.5])
    assert curve.label == "non-spiking RNN (tanh)" and curve.network == "RNN16-FC10 (non-spiking tanh)"
    assert curve.points[1]["loss"] != curve.points[0]["loss"]  # the noise reaches the baseline
    out = tmp_path / "noise"
    rc = main(["analyze", "noise", str(tmp_path / "nrr"), str(tmp_path / "bp"), str(tmp_path / "rnn"),
               "--levels", "0,0.5", "--out", str(out)])
    assert rc == 0
    result = json.loads((out / "noise_robustness.json").read_text())
    assert [r["label"] for r in result["runs"]] == ["NRR-SNN", "BP-RSNN", "non-spiking RNN (tanh)"]
    assert (out / "noise_robustness.png").read_bytes()[:4] == b"\x89PNG"
    assert "non-spiking RNN (tanh): nrr RNN16-FC10" in capsys.readouterr().out
