"""The trainer: learning, metrics file, atomic checkpoints and exact resume."""

import json

import pytest
import torch
from torch.utils.data import TensorDataset

from spikedyn.data import SpikeDataset, load_dataset
from spikedyn.train import TrainConfig, Trainer, load_checkpoint


def small_digits(n_train=300, n_test=100) -> SpikeDataset:
    ds = load_dataset("digits")
    xtr, ytr = ds.train.tensors
    xte, yte = ds.test.tensors
    return SpikeDataset("digits", TensorDataset(xtr[:n_train], ytr[:n_train]), TensorDataset(xte[:n_test], yte[:n_test]), 10)


def config(tmp_path, **kw) -> TrainConfig:
    values = dict(dataset="digits", neuron="2nd-fs", hidden=64, steps=8, epochs=3, batch_size=50, out=str(tmp_path / "run"), progress=False, seed=7)
    values.update(kw)
    return TrainConfig(**values)


def test_training_learns_and_writes_metrics(tmp_path):
    trainer = Trainer(config(tmp_path, epochs=5, lr=1e-2, steps=10), dataset=small_digits())
    history = trainer.fit()
    assert len(history) == 5
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["test_accuracy"] > 0.5  # chance is 0.1
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4, 5]
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["hidden"] == 64 and saved["steps"] == 10
    assert not list((tmp_path / "run").glob(".*tmp*")), "no temporary checkpoint left behind"


def test_a_silent_layer_is_reported_once(tmp_path, capsys):
    """Read-out weights and biases far below threshold: the output neurons never fire, so the rate-MSE
    loss is the one-hot target's mean square, 1 / C = 0.1, in every epoch (their sigmoid input is
    saturated, no gradient lifts them), and the trainer says so once, pointing at --lr; a silent hidden
    layer is named as such. A net that fires says nothing."""
    trainer = Trainer(config(tmp_path, epochs=2, neuron="lif", lr=1e-2), dataset=small_digits())
    with torch.no_grad():
        trainer.model.fc2.weight.fill_(-10.0)
        trainer.model.fc2.bias.fill_(-10.0)
    history = trainer.fit()
    err = capsys.readouterr().err
    assert err.count("the output layer fired no spike on the whole test set") == 1
    assert "after epoch 1 " in err and "--lr" in err and "hidden layer" not in err
    assert [h["test_loss"] for h in history] == pytest.approx([0.1, 0.1])
    assert "test_output_active" not in history[0]  # a check, not a metric of the record

    # a silent hidden layer (its weights and biases far below threshold) is named on its own
    dead = Trainer(config(tmp_path / "dead-hidden", epochs=1, neuron="lif", lr=1e-2), dataset=small_digits())
    with torch.no_grad():
        dead.model.fc1.weight.fill_(-10.0)
        dead.model.fc1.bias.fill_(-10.0)
    dead.fit()
    assert "hidden layer 1 fired no spike" in capsys.readouterr().err

    healthy = Trainer(config(tmp_path / "healthy", epochs=1, neuron="lif", lr=1e-2), dataset=small_digits())
    healthy.fit()
    assert "fired no spike" not in capsys.readouterr().err


def test_silent_layers_are_named_by_place():
    from spikedyn.train import silent_layers

    assert silent_layers({"output_active": 3.0, "hidden_active": [0.0, 5.0]}) == ["hidden layer 1 of 2"]
    assert silent_layers({"output_active": 0.0, "hidden_active": [0.0]}) == ["the output layer", "hidden layer 1"]
    assert silent_layers({"output_active": 1.0, "hidden_active": []}) == []


@pytest.mark.parametrize("neuron", ["mdn", "lif"])
def test_resume_after_interruption_matches_uninterrupted_run(tmp_path, neuron):
    data = small_digits(200, 50)
    full = Trainer(config(tmp_path / "a", neuron=neuron), dataset=data)
    full.fit()
    part = Trainer(config(tmp_path / "b", neuron=neuron), dataset=data)
    part.fit(stop_after=1)  # "interrupted" after the first epoch
    resumed = Trainer(config(tmp_path / "b", neuron=neuron), dataset=data)
    resumed.fit(resume=True)
    assert resumed.epoch == 3
    for name, p in full.model.state_dict().items():
        assert torch.equal(p, resumed.model.state_dict()[name]), name
    assert [h["test_accuracy"] for h in full.history] == [h["test_accuracy"] for h in resumed.history]


def test_existing_run_needs_resume_flag_and_matching_settings(tmp_path):
    data = small_digits(100, 50)
    Trainer(config(tmp_path, epochs=1), dataset=data).fit()
    with pytest.raises(FileExistsError, match="--resume"):
        Trainer(config(tmp_path, epochs=1), dataset=data).fit()
    with pytest.raises(ValueError, match="hidden"):
        Trainer(config(tmp_path, epochs=2, hidden=32), dataset=data).fit(resume=True)


def test_learnable_dynamics_get_their_own_learning_rate(tmp_path):
    trainer = Trainer(config(tmp_path, neuron="mdn", lr=1e-3, lr_dynamics=1e-4), dataset=small_digits(50, 10))
    groups = {g["name"]: g for g in trainer.optimizer.param_groups}
    assert groups["dynamics"]["lr"] == 1e-4 and groups["weights"]["lr"] == 1e-3
    assert sum(p.numel() for p in groups["dynamics"]["params"]) == 4 * (64 + 10)
    theta_before = trainer.model.neuron1.theta.detach().clone()
    trainer.fit()
    assert not torch.equal(theta_before, trainer.model.neuron1.theta.detach())


def test_checkpoint_round_trip(tmp_path):
    trainer = Trainer(config(tmp_path, epochs=1), dataset=small_digits(100, 50))
    trainer.fit()
    model, cfg, ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["epoch"] == 1 and cfg.neuron == "2nd-fs"
    for name, p in trainer.model.state_dict().items():
        assert torch.equal(p, model.state_dict()[name])
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nothing-here")


def test_learning_rate_schedules(tmp_path):
    data = small_digits(50, 10)
    step = Trainer(config(tmp_path / "s", epochs=3, lr=1e-2, lr_step=2, lr_gamma=0.5), dataset=data)
    step.fit()
    assert [h["lr"][0] for h in step.history] == pytest.approx([1e-2, 1e-2, 5e-3])
    cos = Trainer(config(tmp_path / "c", epochs=3, lr=1e-2, schedule="cosine", cosine_period=2), dataset=data)
    cos.fit()
    assert [h["lr"][0] for h in cos.history] == pytest.approx([1e-2, 5e-3, 0.0], abs=1e-12)
    with pytest.raises(ValueError, match="unknown schedule"):
        Trainer(config(tmp_path / "x", schedule="linear"), dataset=data)


def test_resume_restores_the_metrics_line_lost_after_the_checkpoint(tmp_path):
    """A kill between writing checkpoint.pt and appending its line to metrics.jsonl loses no epoch."""
    data = small_digits(100, 50)
    Trainer(config(tmp_path, epochs=2), dataset=data).fit()
    metrics = tmp_path / "run" / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    metrics.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])  # epoch 2's line cut mid-write
    resumed = Trainer(config(tmp_path, epochs=3), dataset=data)
    resumed.fit(resume=True)
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[1] == json.loads(lines[1]), "epoch 2's record comes back from the checkpoint, unchanged"


def test_adam_is_fused_on_cpu_and_follows_the_per_tensor_adam():
    """The trainer's Adam takes PyTorch's fused step; over several steps with two parameter groups it
    stays within float rounding of torch's reference per-tensor loop (``foreach=False``)."""
    from spikedyn.train import make_adam

    def run(build):
        torch.manual_seed(0)
        params = [torch.nn.Parameter(torch.randn(40, 30)), torch.nn.Parameter(torch.randn(7))]
        optimizer = build([{"params": params[:1], "lr": 1e-3}, {"params": params[1:], "lr": 1e-2}])
        generator = torch.Generator().manual_seed(1)
        for _ in range(5):
            for p in params:
                p.grad = torch.randn(p.shape, generator=generator)
            optimizer.step()
        return optimizer, params

    fused, ours = run(make_adam)
    assert fused.defaults["fused"] is True
    _, reference = run(lambda groups: torch.optim.Adam(groups, foreach=False))
    for a, b in zip(ours, reference):
        assert not torch.equal(a, torch.zeros_like(a))
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_weight_decay_shrinks_the_weights_only_and_decoupled(tmp_path):
    """``weight_decay`` is AdamW's decoupled decay on the weights group: with every gradient zero the Adam
    part of a step is zero, so one step scales each weight by exactly ``1 - lr * wd`` (the closed form of
    Loshchilov & Hutter's update) and leaves the learnable dynamics as they were; without it the optimiser
    stays plain Adam (checkpoints of older runs resume unchanged), and a negative decay is refused."""
    lr, wd = 1e-2, 0.5
    trainer = Trainer(config(tmp_path, neuron="mdn", lr=lr, lr_dynamics=1e-3, weight_decay=wd), dataset=small_digits(50, 10))
    assert isinstance(trainer.optimizer, torch.optim.AdamW)
    groups = {g["name"]: g for g in trainer.optimizer.param_groups}
    assert (groups["weights"]["weight_decay"], groups["dynamics"]["weight_decay"]) == (wd, 0.0)
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    for p in trainer.model.parameters():
        p.grad = torch.zeros_like(p)
    trainer.optimizer.step()
    weights = {id(p) for p in groups["weights"]["params"]}
    for name, p in trainer.model.named_parameters():
        expected = before[name] * (1 - lr * wd) if id(p) in weights else before[name]
        assert torch.allclose(p.detach(), expected, rtol=1e-6, atol=0), name
    plain = Trainer(config(tmp_path / "plain", neuron="mdn"), dataset=small_digits(50, 10))
    assert type(plain.optimizer) is torch.optim.Adam
    with pytest.raises(ValueError, match=r"weight_decay \(--weight-decay\).*>= 0, got -0.1"):
        config(tmp_path, weight_decay=-0.1).resolved()
