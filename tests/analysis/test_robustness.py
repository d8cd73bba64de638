"""NRR-SNN's noise test (spec nrr.md section 5): multiplicative +-p input noise, accuracy against p,
RobustRatio; training on noisy input (``nrr`` option ``input_noise``)."""

import json

import pytest
import torch

from spikedyn.analysis.robustness import (
    NoisyInput,
    convolve_every_step,
    noise_curve_run,
    noise_sweep,
    robust_ratio,
    robust_ratios,
)
from spikedyn.cli import main
from spikedyn.layers import InputNoise, multiplicative_noise
from spikedyn.models import build_model
from spikedyn.train import TrainConfig, Trainer, evaluate


def test_noise_scales_every_value_by_one_plus_or_minus_p():
    x = torch.rand(20, 8, 30) + 0.5
    noisy = multiplicative_noise(x, 0.3, torch.Generator().manual_seed(1))
    factor = noisy / x
    up = torch.isclose(factor, torch.tensor(1.3))
    down = torch.isclose(factor, torch.tensor(0.7))
    assert torch.all(up | down)
    assert 0.45 < up.float().mean() < 0.55  # xi = +-1 with probability 1/2
    assert not torch.equal(up[0], up[1])  # fresh signs at every step
    assert torch.equal(noisy, multiplicative_noise(x, 0.3, torch.Generator().manual_seed(1)))
    assert multiplicative_noise(x, 0.0) is x
    for bad in (-0.1, 1.5, "0.2", True):
        with pytest.raises(ValueError, match="noise proportion"):
            multiplicative_noise(x, bad)


def test_input_noise_is_active_in_training_mode_only():
    noise = InputNoise(0.5)
    x = torch.ones(4, 2, 3)
    assert not torch.equal(noise(x), x)
    noise.eval()
    assert noise(x) is x
    net = build_model("nrr", (3,), 2, hidden=4, input_noise=0.2)
    assert net.noise.p == 0.2 and net.config["input_noise"] == 0.2
    assert "input_noise" not in build_model("nrr", (3,), 2, hidden=4).config


def small_run(tmp_path, name, **options):
    cfg = TrainConfig(model="nrr", model_options={"hidden": 16, "mask_seed": 0, **options}, steps=5, epochs=2,
                      batch_size=50, lr=1e-2, out=str(tmp_path / name), progress=False, seed=2, eval_batch_size=200)
    trainer = Trainer(cfg)
    trainer.fit()
    return trainer


def test_sweep_at_zero_is_the_plain_evaluation_and_noise_changes_the_score(tmp_path):
    trainer = small_run(tmp_path, "clean")
    clean = evaluate(trainer.model, trainer.batcher, trainer.config)
    points = noise_sweep(trainer.model, trainer.batcher, trainer.config, levels=[0.0, 0.5])
    assert points[0] == {"p": 0.0, **clean}
    assert points[1]["loss"] != clean["loss"] and "sample_accuracy" in points[1]
    again = noise_sweep(trainer.model, trainer.batcher, trainer.config, levels=[0.5])
    assert again[0] == points[1]  # seeded noise: reproducible
    assert NoisyInput(trainer.model, 0.1).readout_kind == "step"


def test_static_conv_blocks_convolve_every_step_during_the_sweep():
    net = build_model("nrr", (81,), 3, hidden=6, deep=True, conv_channels=2)
    assert net.conv.static
    x = torch.rand(1, 2, 81).expand(4, 2, 81)
    noisy = NoisyInput(net, 0.3, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="steps of its input differ"):
        noisy(x)
    with convolve_every_step(net):
        assert noisy(x).spikes.shape == (4, 2, 3)
    assert net.conv.static
    assert not build_model("nrr", (81,), 3, hidden=6, deep=True, input_noise=0.1).conv.static


def test_robust_ratio_and_the_command(tmp_path, capsys):
    small_run(tmp_path, "clean")
    small_run(tmp_path, "noisy", input_noise=0.3)
    clean = noise_curve_run(tmp_path / "clean", levels=[0.0, 0.3])
    noisy = noise_curve_run(tmp_path / "noisy", levels=[0.0, 0.3])
    assert (clean.label, noisy.label) == ("BP-RSNN", "BP-RSNN, trained at p = 30 %") and noisy.train_noise == 0.3
    [row] = robust_ratios(clean, [noisy])
    assert row["p"] == 0.3 and row["robust_ratio"] == pytest.approx(clean.at(0.3)["accuracy"] / noisy.at(0.3)["accuracy"])
    assert robust_ratio(0.5, 0.0) != robust_ratio(0.5, 0.0)  # NaN
    with pytest.raises(KeyError, match="add it to the levels"):
        clean.at(0.2)
    out = tmp_path / "noise"
    rc = main(["analyze", "noise", str(tmp_path / "clean"), "--noisy-trained", str(tmp_path / "noisy"),
               "--levels", "0,0.3", "--out", str(out)])
    assert rc == 0
    result = json.loads((out / "noise_robustness.json").read_text())
    assert result["runs"][0]["points"][1]["accuracy"] == clean.at(0.3)["accuracy"]
    assert result["robust_ratio"]["BP-RSNN"][0]["robust_ratio"] == pytest.approx(row["robust_ratio"])
    assert (out / "noise_robustness.png").stat().st_size > 0
    assert "RobustRatio at p = 30%" in capsys.readouterr().out
