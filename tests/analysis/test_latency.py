"""Accuracy against presentation length (``spikedyn analyze latency``): a trained run scored with each
test sample presented for T steps, without retraining."""

import json

import pytest
import torch

from spikedyn.analysis.latency import check_steps, latency_curve_run
from spikedyn.batching import run_dataset
from spikedyn.cli import main
from spikedyn.train import load_checkpoint


def train_digits(tmp_path, name: str, *flags: str):
    out = tmp_path / name
    assert main(["train", "--epochs", "2", "--hidden", "32", "--steps", "6", "--seed", "7", "--out", str(out),
                 "--quiet", *flags]) == 0
    return out


def read_metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_the_point_at_the_trained_steps_is_the_logged_test_score(tmp_path, capsys):
    """Catches a sweep that scores another model, split or encoding randomness: at the run's own T = 6
    the score and loss equal what the trainer logged for its last epoch (rate code, fresh draws), while
    other lengths differ; the command writes the JSON and the plot and marks the trained T."""
    run = train_digits(tmp_path, "rate")
    logged = read_metrics(run)[-1]
    out = tmp_path / "latency"
    capsys.readouterr()
    assert main(["analyze", "latency", str(run), "--steps", "30,1,6", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "T =    6" in printed and "(trained)" in printed
    result = json.loads((out / "latency.json").read_text())
    [curve] = result["runs"]
    assert [p["steps"] for p in curve["points"]] == [1, 6, 30] and curve["trained_steps"] == 6
    at6 = curve["points"][1]
    assert (at6["accuracy"], at6["loss"]) == (logged["test_accuracy"], logged["test_loss"])
    assert len({p["loss"] for p in curve["points"]}) == 3
    assert curve["label"] == "rate" and (out / "latency.png").stat().st_size > 0


def test_each_length_presents_the_samples_for_that_many_steps(tmp_path):
    """With the deterministic direct code, the score at T equals the model run by hand on each test image
    repeated T times (catches a sweep that ignores T or reuses one length's batches)."""
    run = train_digits(tmp_path, "direct", "--encoder", "direct")
    curve = latency_curve_run(run, steps=[2, 6, 15])
    model, config, _ = load_checkpoint(str(run), device="cpu")
    x, y = run_dataset(config).test.tensors[:2]
    model.eval()
    with torch.no_grad():
        for point in curve.points:
            t = point["steps"]
            correct = int((model(x.float().unsqueeze(0).expand(t, *x.shape)).rate.argmax(1) == y).sum())
            assert round(point["accuracy"] * len(y)) == correct, f"T = {t}"
    assert len({p["loss"] for p in curve.points}) == 3


def test_bad_steps_and_labels_are_clear_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match=">= 1"):
        check_steps([0, 5])
    with pytest.raises(ValueError, match=">= 1"):
        check_steps([])
    with pytest.raises(SystemExit):
        main(["analyze", "latency", str(tmp_path), "--steps", "5,x"])
    assert "--steps takes comma-separated whole numbers >= 1" in capsys.readouterr().err
    run = train_digits(tmp_path, "run")
    assert main(["analyze", "latency", str(run), "--labels", "a", "b", "--no-plot"]) == 2
    assert "--labels gives 2 label(s) for 1 run(s)" in capsys.readouterr().err
