"""PLIF's accuracy-B protocol: a per-class validation split held out of the training set."""

import json

import pytest
import torch
from torch.utils.data import TensorDataset

from spikedyn.data import SpikeDataset, holdout_validation
from spikedyn.train import TrainConfig, Trainer


def labelled(labels: list[int]) -> SpikeDataset:
    y = torch.tensor(labels)
    x = torch.arange(len(labels), dtype=torch.float32)[:, None].repeat(1, 4)  # x[i] = i: shows which sample went where
    return SpikeDataset("toy", TensorDataset(x, y), TensorDataset(x[:2], y[:2]), 3)


def test_last_fraction_of_each_class_is_held_out_in_file_order():
    # class 0 at 0..19 (20 samples), class 1 at 20..39 (20), class 2 at 40..59 (20), interleaved below
    labels = [i % 3 for i in range(60)]
    ds = holdout_validation(labelled(labels), 0.15)
    per_class = {c: [i for i, y in enumerate(labels) if y == c] for c in range(3)}
    expect_val = sorted(i for c in range(3) for i in per_class[c][17:])  # round(0.85 * 20) = 17 train per class
    assert ds.val.tensors[0][:, 0].long().tolist() == expect_val
    assert ds.train.tensors[0][:, 0].long().tolist() == sorted(set(range(60)) - set(expect_val))
    assert len(ds.test) == 2, "the test set is untouched"


def test_bad_fraction_and_tiny_class_are_refused():
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        holdout_validation(labelled([0, 1, 2] * 4), 1.0)
    with pytest.raises(ValueError, match="class 2 has 1 training sample"):
        holdout_validation(labelled([0, 0, 0, 0, 1, 1, 1, 1, 2]), 0.25)
    with pytest.raises(ValueError, match="validation"):
        TrainConfig(validation=-0.1).resolved()


def test_trainer_scores_the_validation_split_every_epoch(tmp_path):
    from spikedyn.data import load_dataset

    digits = load_dataset("digits")
    xtr, ytr = digits.train.tensors
    data = SpikeDataset("digits", TensorDataset(xtr[:200], ytr[:200]), TensorDataset(*[t[:50] for t in digits.test.tensors]), 10)
    cfg = TrainConfig(dataset="digits", hidden=16, steps=4, epochs=2, batch_size=50, validation=0.15,
                      out=str(tmp_path / "run"), progress=False)
    trainer = Trainer(cfg, dataset=data)
    assert len(trainer.dataset.train) + len(trainer.dataset.val) == 200
    trainer.fit()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(0.0 <= r["val_accuracy"] <= 1.0 and r["val_loss"] > 0 for r in rows)
    # the val score is the metric on exactly the held-out samples
    from spikedyn.train import evaluate

    again = evaluate(trainer.model, trainer.batcher, trainer.config, "val", epoch=1)
    assert again["accuracy"] == rows[-1]["val_accuracy"]
