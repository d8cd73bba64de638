"""Learning rules in the trainer and the CLI: MDNNet's tap, training, checkpoints and resume."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from spikedyn.cli import main
from spikedyn.data import SpikeDataset, load_dataset
from spikedyn.learning import make_rule
from spikedyn.models import MDNNet
from spikedyn.train import TrainConfig, Trainer, load_checkpoint


def digits(n_train: int = 300, n_test: int = 100) -> SpikeDataset:
    ds = load_dataset("digits")
    (xtr, ytr), (xte, yte) = ds.train.tensors, ds.test.tensors
    train, test = TensorDataset(xtr[:n_train], ytr[:n_train]), TensorDataset(xte[:n_test], yte[:n_test])
    return SpikeDataset("digits", train, test, 10)


def config(tmp_path, **kw) -> TrainConfig:
    values = dict(dataset="digits", neuron="lif-identity", hidden=64, steps=8, epochs=2, batch_size=50, lr=1e-2,
                  rule="brp", out=str(tmp_path / "run"), progress=False, seed=7)
    values.update(kw)
    return TrainConfig(**values)


def test_mdn_net_tap_keeps_the_weights_a_seed_gave_before_taps():
    torch.manual_seed(11)
    fc1, fc2 = nn.Linear(5, 7), nn.Linear(7, 3)  # the draws of the net before the tap existed
    torch.manual_seed(11)
    net = MDNNet(5, 7, 3, neuron="lif-identity")
    assert torch.equal(net.fc1.weight, fc1.weight) and torch.equal(net.fc2.bias, fc2.bias)
    assert net.tap1.projection is None and not net.tap1.local  # B_l is drawn only for reward propagation
    make_rule("brp").attach(net)
    assert net.tap1.projection.shape == (3, 7) and net.tap1.local
    out = net(torch.rand(4, 2, 5))
    assert len(out.taps) == 1 and out.taps[0].shape == (4, 2, 7)


def test_checkpoint_without_projection_still_loads():
    """State dicts written before MDNNet had a tap lack ``tap1.projection``: they load strictly."""
    torch.manual_seed(0)
    old = MDNNet(5, 7, 3, neuron="lif-identity").state_dict()
    assert "tap1.projection" not in old  # a BPTT model holds no B_l
    net = MDNNet(5, 7, 3, neuron="lif-identity")
    drawn = make_rule("brp").attach(net)[0].projection.clone()
    result = net.load_state_dict(old)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert torch.equal(net.fc1.weight, old["fc1.weight"]) and torch.equal(net.tap1.projection, drawn)
    # a state dict with the key restores it; other missing keys are still reported
    full = {**old, "tap1.projection": torch.ones(3, 7)}
    net.load_state_dict(full)
    assert torch.equal(net.tap1.projection, torch.ones(3, 7))
    fresh = MDNNet(5, 7, 3, neuron="lif-identity")  # no B_l drawn yet: the saved one is restored
    fresh.load_state_dict(full)
    assert torch.equal(fresh.tap1.projection, torch.ones(3, 7))
    del full["fc2.bias"]
    with pytest.raises(RuntimeError, match="fc2.bias"):
        net.load_state_dict(full)


def test_brp_trains_the_mdn_net_on_digits(tmp_path):
    trainer = Trainer(config(tmp_path, epochs=6), dataset=digits())
    assert trainer.model.tap1.local
    history = trainer.fit()
    assert history[-1]["train_loss"] < 0.8 * history[0]["train_loss"]  # the read-out loss
    assert history[-1]["test_accuracy"] > 0.5  # chance is 0.1
    assert set(history[-1]["train_parts"]) == {"tap0"}
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["rule"] == "brp"
    model, cfg, ckpt = load_checkpoint(tmp_path / "run")
    assert cfg.rule == "brp" and model.tap1.local
    assert torch.equal(ckpt["model"]["tap1.projection"], trainer.model.tap1.projection)


def test_resumed_brp_run_matches_the_uninterrupted_run(tmp_path):
    data = digits(100, 50)
    full = Trainer(config(tmp_path / "a"), dataset=data)
    full.fit()
    part = Trainer(config(tmp_path / "b"), dataset=data)
    part.fit(stop_after=1)
    resumed = Trainer(config(tmp_path / "b"), dataset=data)
    resumed.fit(resume=True)
    assert resumed.epoch == 2 and resumed.model.tap1.local
    for name, p in full.model.state_dict().items():
        assert torch.equal(p, resumed.model.state_dict()[name]), name
    assert [h["test_accuracy"] for h in full.history] == [h["test_accuracy"] for h in resumed.history]


def test_resume_restores_the_projection_from_the_checkpoint(tmp_path):
    data = digits(50, 20)
    Trainer(config(tmp_path), dataset=data).fit(stop_after=1)
    path = tmp_path / "run" / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=False)
    marked = torch.linspace(-1, 1, 10 * 64).reshape(10, 64)  # not what the seed would draw again
    ckpt["model"]["tap1.projection"] = marked
    torch.save(ckpt, path)
    resumed = Trainer(config(tmp_path), dataset=data)
    assert resumed.resume()
    assert torch.equal(resumed.model.tap1.projection, marked)
    with pytest.raises(ValueError, match="rule='brp'.*rule='err'"):
        Trainer(config(tmp_path, rule="err"), dataset=data).fit(resume=True)


def test_checkpoint_from_before_rules_resumes_as_bptt(tmp_path):
    data = digits(50, 20)
    Trainer(config(tmp_path, rule="bptt"), dataset=data).fit(stop_after=1)
    path = tmp_path / "run" / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=False)
    del ckpt["config"]["rule"]
    ckpt["model"].pop("tap1.projection", None)  # as written before rules and taps existed
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="rule='bptt'"):
        Trainer(config(tmp_path, rule="brp"), dataset=data).fit(resume=True)
    resumed = Trainer(config(tmp_path, rule="bptt"), dataset=data)
    resumed.fit(resume=True)
    assert resumed.epoch == 2 and not resumed.model.tap1.local


def test_unknown_rule_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown learning rule 'hebb'; choose one of bptt, brp, err, sign"):
        TrainConfig(rule="hebb").resolved()
    with pytest.raises(SystemExit):
        main(["train", "--rule", "hebb"])
    assert "invalid choice: 'hebb'" in capsys.readouterr().err


def test_cli_rule_option(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--rule", "sign", "--epochs", "1", "--hidden", "8", "--steps", "3", "--out", str(out),
               "--quiet"])
    assert rc == 0
    assert "rule sign" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["rule"] == "sign"
    assert TrainConfig(rule="err").resolved().out.endswith("digits-2nd-fs-err-seed3154")
    assert TrainConfig().resolved().out.endswith("digits-2nd-fs-seed3154")


def test_the_papers_local_difference_trains_and_is_saved_and_resumed_with_its_form(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--rule", "brp", "--local-loss", "difference", "--hidden", "8", "--steps", "3", "--out", str(out),
            "--quiet"]
    assert main([*args, "--epochs", "1"]) == 0
    assert json.loads((out / "config.json").read_text())["local_loss"] == "difference"
    _, cfg, _ = load_checkpoint(out)
    assert cfg.local_loss == "difference"
    with pytest.raises(ValueError, match="trained with local_loss='difference'"):  # not continued with another form
        Trainer(TrainConfig(rule="brp", hidden=8, steps=3, epochs=2, out=str(out), progress=False)).resume()
    with pytest.raises(ValueError, match="rule 'bptt' has none"):
        TrainConfig(local_loss="difference").resolved()
