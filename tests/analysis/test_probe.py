"""Linear probes of every layer's spike counts (``spikedyn analyze probe``)."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from tiny_runs import tiny_config, tiny_dataset

from spikedyn.analysis.probe import check_penalties, fit_probe, layer_counts, probe_run
from spikedyn.batching import Batcher
from spikedyn.cli import main
from spikedyn.train import Trainer


def tiny_trainer(tmp_path, **settings):
    dataset = tiny_dataset()
    return Trainer(tiny_config(tmp_path / "run", rule="brp", **settings), dataset), dataset


def test_counts_are_the_spikes_summed_over_the_window_and_presentations(tmp_path):
    """Catches counts taken from the wrong layer, steps or samples (batch edges, the limit), a draw
    summed twice, or predictions out of step with the labels: everything redone by hand from the
    same generator, batch by batch."""
    trainer, dataset = tiny_trainer(tmp_path)
    model, batcher = trainer.model, Batcher(dataset, trainer.config, torch.device("cpu"))
    counts, labels, predictions = layer_counts(model, batcher, "test", 4, torch.Generator().manual_seed(3),
                                               limit=10, draws=2)
    assert set(counts) == {"input", "tap1"} and counts["input"].shape == (10, 16) and counts["tap1"].shape == (10, 12)
    generator = torch.Generator().manual_seed(3)
    x_all, y_all = dataset.test.tensors
    hand_in, hand_hidden, hand_pred = [], [], []
    with torch.no_grad():
        for start in (0, 4, 8):
            x = x_all[start:min(start + 4, 10)]
            first = batcher.encode(x, generator)
            second = batcher.encode(x, generator)
            out1, out2 = model(first), model(second)
            hand_in.append(first.sum(0) + second.sum(0))
            hand_hidden.append(out1.taps[0].sum(0) + out2.taps[0].sum(0))
            hand_pred.append(out1.rate.argmax(1))
    np.testing.assert_array_equal(counts["input"], torch.cat(hand_in).numpy())
    np.testing.assert_array_equal(counts["tap1"], torch.cat(hand_hidden).numpy())
    np.testing.assert_array_equal(predictions, torch.cat(hand_pred).numpy())
    np.testing.assert_array_equal(labels, y_all[:10].numpy())
    assert counts["tap1"].max() <= 2 * trainer.config.steps


def test_the_probe_separates_what_is_separable_and_picks_c_on_held_out_samples():
    rng = np.random.default_rng(0)
    labels = np.arange(300) % 3
    counts = rng.random((300, 6)).astype(np.float32)
    counts[np.arange(300), labels] += 4.0  # unit c lit for class c
    probe = fit_probe(counts[:200], labels[:200], counts[200:], labels[200:], [0.01, 1.0])
    assert probe["test"] == 100.0 and probe["train"] == 100.0
    assert probe["C"] == max(probe["held_out"], key=probe["held_out"].get)
    noise = rng.random((300, 6)).astype(np.float32)  # no class information: about chance
    assert fit_probe(noise[:200], labels[:200], noise[200:], labels[200:])["test"] < 55.0
    with pytest.raises(ValueError, match="C must be numbers > 0"):
        check_penalties([0.1, 0.0])


def test_labels_that_are_not_one_class_per_sample_are_refused(tmp_path):
    trainer, dataset = tiny_trainer(tmp_path)
    multi = dataclasses.replace(dataset, target="multi_hot")
    batcher = Batcher(multi, trainer.config, torch.device("cpu"))
    with pytest.raises(ValueError, match="one class label per sample; tiny has 'multi_hot' targets"):
        layer_counts(trainer.model, batcher, "test", 4, torch.Generator())


def test_own_read_out_of_a_deterministic_code_is_the_logged_test_score(tmp_path, capsys):
    """Catches an own-read-out column scored on other samples or another model: with the direct code (no
    randomness) over the whole test split it equals the trainer's last logged test accuracy."""
    out = tmp_path / "direct"
    assert main(["train", "--epochs", "2", "--hidden", "24", "--steps", "5", "--encoder", "direct", "--rule", "brp",
                 "--out", str(out), "--quiet"]) == 0
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]["test_accuracy"]
    probe = probe_run(out, train_samples=None, test_samples=None, penalties=[0.1, 1.0])
    assert probe.own == pytest.approx(100 * logged)
    assert [layer["label"] for layer in probe.layers] == ["input", "FC 24"]
    assert probe.train_samples > 100 and all(0 <= layer["test"] <= 100 for layer in probe.layers)
    capsys.readouterr()
    assert main(["analyze", "probe", str(out), "--train-samples", "200", "--penalties", "0.1", "--labels", "D"]) == 0
    text = capsys.readouterr().out
    assert "D: mdn" in text and "FC 24" in text and "own read-out" in text
    saved = json.loads((out / "probe.json").read_text())
    assert saved["runs"][0]["train_samples"] == 200 and len(saved["runs"][0]["layers"]) == 2
    assert (out / "probe.png").stat().st_size > 0


def test_bad_requests_say_what_to_change(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--epochs", "1", "--hidden", "8", "--steps", "2", "--out", str(out), "--quiet"]) == 0
    with pytest.raises(ValueError, match="draws must be >= 1"):
        probe_run(out, draws=0)
    with pytest.raises(ValueError, match="train_samples must be at least 10"):
        probe_run(out, train_samples=5)
    with pytest.raises(ValueError, match="would take .* GiB; probe fewer samples"):
        import spikedyn.analysis.probe as probe_module

        limit, probe_module.MAX_BYTES = probe_module.MAX_BYTES, 1000
        try:
            probe_run(out)
        finally:
            probe_module.MAX_BYTES = limit
    assert main(["analyze", "probe", str(out), "--labels", "a", "b"]) == 2
    assert "give one per run" in capsys.readouterr().err


def test_a_penalty_at_the_end_of_the_range_is_flagged():
    from spikedyn.analysis.probe import LayerProbe

    probe = LayerProbe(run="r", label="r", model="mdn", network="4-3-2", rule="brp", dataset="x", epoch=1)
    layer = {"label": "FC 3", "features": 3, "test": 90.0, "train": 95.0, "held_out": {0.01: 80.0, 0.1: 85.0, 1.0: 88.0}}
    assert "at the end of the range tried" in probe.line({**layer, "C": 1.0})
    assert "at the end of the range tried" in probe.line({**layer, "C": 0.01})
    assert "at the end" not in probe.line({**layer, "C": 0.1})
