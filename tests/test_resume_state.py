"""Resume restores the whole training state, including the learning-rate schedule, and only the same run.

The basic resume test (tests/test_train.py) never crosses a learning-rate step (the default
StepLR period is 50 epochs), so a resume that left the scheduler fresh passed it.  Here the
schedule decays during the resumed part of the run.
"""

import json

import pytest
import torch
from torch.utils.data import TensorDataset

from spikedyn.data import SpikeDataset, load_dataset
from spikedyn.train import TrainConfig, Trainer


def tiny_digits(n_train: int = 100, n_test: int = 40) -> SpikeDataset:
    ds = load_dataset("digits")
    xtr, ytr = ds.train.tensors
    xte, yte = ds.test.tensors
    return SpikeDataset("digits", TensorDataset(xtr[:n_train], ytr[:n_train]), TensorDataset(xte[:n_test], yte[:n_test]), 10)


def config(out, **kw) -> TrainConfig:
    values = dict(dataset="digits", neuron="lif", hidden=16, steps=4, epochs=3, batch_size=50, lr=1e-2,
                  out=str(out), progress=False, seed=7)
    values.update(kw)
    return TrainConfig(**values)


def metrics_lr(run) -> list[float]:
    return [json.loads(line)["lr"][0] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    "schedule, expected_lr",
    [
        # StepLR(2, 0.5): epochs 1, 2 at 1e-2, epoch 3 at 5e-3.  A fresh scheduler after the resume
        # (counting from 0 again at epoch 2) would keep 1e-2 for epoch 3.
        ({"lr_step": 2, "lr_gamma": 0.5}, [1e-2, 1e-2, 5e-3]),
        # cosine with period 2: 1e-2, 5e-3, 0 (plif.md section 4 schedule, shortened)
        ({"schedule": "cosine", "cosine_period": 2}, [1e-2, 5e-3, 0.0]),
    ],
    ids=["step", "cosine"],
)
def test_resume_continues_the_learning_rate_schedule(tmp_path, schedule, expected_lr):
    """Catches a resume that skips the scheduler's state: the lr of epoch 3 and the weights differ.

    Uninterrupted: 3 epochs.  Interrupted: 1 epoch, then a new Trainer resumes for the last 2.
    """
    data = tiny_digits()
    full = Trainer(config(tmp_path / "full", **schedule), dataset=data)
    full.fit()
    Trainer(config(tmp_path / "part", **schedule), dataset=data).fit(stop_after=1)
    resumed = Trainer(config(tmp_path / "part", **schedule), dataset=data)
    resumed.fit(resume=True)
    assert [h["lr"][0] for h in full.history] == pytest.approx(expected_lr, abs=1e-12)
    assert [h["lr"][0] for h in resumed.history] == pytest.approx(expected_lr, abs=1e-12)
    assert metrics_lr(tmp_path / "part") == pytest.approx(expected_lr, abs=1e-12)
    assert resumed.scheduler.state_dict() == full.scheduler.state_dict()
    for name, p in full.model.state_dict().items():
        assert torch.equal(p, resumed.model.state_dict()[name]), name


def test_resume_with_another_seed_is_refused(tmp_path):
    """Catches a resume that no longer checks the seed (the run's randomness would silently change).

    The message names the setting, both values and the way out.
    """
    data = tiny_digits(50, 20)
    Trainer(config(tmp_path / "run", epochs=1), dataset=data).fit()
    other = Trainer(config(tmp_path / "run", epochs=2, seed=8), dataset=data)
    with pytest.raises(ValueError) as info:
        other.fit(resume=True)
    message = str(info.value)
    assert "it was trained with seed=7" in message and "this run asks for seed=8" in message
    assert "another --out directory or the same settings" in message
    assert other.epoch == 0 and len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 1


def test_cli_resume_with_another_seed_is_refused(tmp_path, capsys):
    """The command line refuses ``--resume --seed 8`` for a seed-7 run before training anything."""
    from spikedyn.cli import main

    run = tmp_path / "run"
    flags = ["--epochs", "1", "--hidden", "8", "--steps", "2", "--batch-size", "300", "--quiet", "--out", str(run)]
    assert main(["train", *flags, "--seed", "7"]) == 0
    capsys.readouterr()
    assert main(["train", *flags, "--epochs", "2", "--seed", "8", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "--seed 8 (the run has seed=7)" in err and "Traceback" not in err
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


def test_resume_without_a_checkpoint_starts_a_new_run(tmp_path, capsys):
    """``resume()`` is False for an empty run directory and ``fit(resume=True)`` says it starts afresh."""
    trainer = Trainer(config(tmp_path / "new", epochs=1), dataset=tiny_digits(50, 20))
    assert trainer.resume() is False and trainer.epoch == 0
    trainer.fit(resume=True)
    out = capsys.readouterr().out
    assert "to resume; starting a new run there" in out and "resumed from" not in out
    assert trainer.epoch == 1


def test_resume_of_a_checkpoint_older_than_a_setting(tmp_path):
    """A checkpoint written before a run-defining setting existed resumes with that setting's default
    (catches treating the missing key as a conflict, which would refuse every older run)."""
    data = tiny_digits(50, 20)
    Trainer(config(tmp_path / "run", epochs=1), dataset=data).fit()
    path = tmp_path / "run" / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=False)
    for key in ("input_view", "theta_per_batch_slot", "encoder"):
        del ckpt["config"][key]
    torch.save(ckpt, path)
    resumed = Trainer(config(tmp_path / "run", epochs=2), dataset=data)
    assert resumed.resume() is True and resumed.epoch == 1
