"""``--log tensorboard``: TensorBoard event files under RUN/tensorboard/ beside metrics.jsonl.

The event files are read back with TensorBoard's own reader (``EventAccumulator``), and every
logged number is checked against an independent record of the same run: the scalars against
``metrics.jsonl``, the dynamics histograms against the theta in ``checkpoint.pt``, the firing
rate against a forward pass of the checkpoint's model.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spikedyn.cli import main
from spikedyn.tensorboard_log import TensorBoardUnavailableError, log_formats, require_tensorboard
from spikedyn.batching import Batcher, epoch_generator
from spikedyn.train import TrainConfig, Trainer, load_checkpoint

THETA = ("theta_a", "theta_b", "theta_c", "theta_d")


def tiny_digits(out: Path, **changes) -> TrainConfig:
    """Two epochs of a 64-12-10 MDN net with learnable theta on the embedded digits set (about a second)."""
    settings = dict(dataset="digits", neuron="mdn", hidden=12, steps=4, epochs=2, out=str(out), progress=False)
    return TrainConfig(**{**settings, **changes})


def read_events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    return events


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def f32(value: float) -> float:
    """``value`` as TensorBoard stores a scalar (float32)."""
    return float(np.float32(value))


def expected_scalars(record: dict) -> dict[str, float]:
    """The scalar tags a metrics.jsonl record of the MDN net must give, written out by hand."""
    out = {
        "train/loss": record["train_loss"], "train/accuracy": record["train_accuracy"],
        "test/loss": record["test_loss"], "test/accuracy": record["test_accuracy"],
        "lr/weights": record["lr"][0], "lr/dynamics": record["lr"][1], "seconds": record["seconds"],
        "train/seconds": record["train_seconds"],
    }
    for layer in ("neuron1", "neuron2"):
        for name, mean in zip(THETA, record["dynamics"][layer]):
            out[f"dynamics_mean/{layer}/{name}"] = mean
    return out


def test_tensorboard_log_holds_the_metrics_rates_and_dynamics_of_every_epoch(tmp_path):
    """Catches: a scalar that is not the epoch's metrics.jsonl number (or logged at the wrong step), a
    missing firing rate or dynamics histogram, histograms of the wrong values, and logging that changes
    training (the run without TensorBoard must give the same metrics)."""
    pytest.importorskip("tensorboard")
    run = tmp_path / "tb"
    Trainer(tiny_digits(run, log=["tensorboard"])).fit()
    assert json.loads((run / "config.json").read_text())["log"] == ["jsonl", "tensorboard"]
    records = metrics(run)
    events = read_events(run / "tensorboard")
    tags = events.Tags()

    expected = [expected_scalars(r) for r in records]
    assert set(tags["scalars"]) == set(expected[0]) | {"firing_rate/tap1"}
    for tag in expected[0]:
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [1, 2], tag
        assert [e.value for e in logged] == [f32(r[tag]) for r in expected], tag

    # the firing rate of the hidden layer after epoch 2: the checkpoint's model on the first 50 test samples
    model, config, _ = load_checkpoint(run)
    trainer = Trainer(tiny_digits(tmp_path / "unused"))
    x, _ = next(Batcher(trainer.dataset, config, torch.device("cpu")).batches(
        "test", config.batch_size, epoch_generator(config.seed, 1, purpose=2), shuffle=False))
    with torch.no_grad():
        rate = float(model.eval()(x).taps[0].mean())
    assert x.shape[1] == 50 and 0.0 < rate < 1.0
    assert events.Scalars("firing_rate/tap1")[-1].value == pytest.approx(rate, rel=1e-6)

    # histograms of theta per layer and parameter, at step 0 (initial) and after each epoch
    assert set(tags["histograms"]) == {f"dynamics/{layer}/{name}" for layer in ("neuron1", "neuron2") for name in THETA}
    for layer, size in (("neuron1", 12), ("neuron2", 10)):
        theta = model.state_dict()[f"{layer}.theta"]
        for index, name in enumerate(THETA):
            histograms = events.Histograms(f"dynamics/{layer}/{name}")
            assert [h.step for h in histograms] == [0, 1, 2]
            last = histograms[-1].histogram_value
            assert last.num == size
            assert (last.min, last.max) == (f32(theta[index].min()), f32(theta[index].max()))
            assert last.sum == pytest.approx(float(theta[index].sum()), rel=1e-5, abs=1e-6)

    plain = tmp_path / "plain"
    Trainer(tiny_digits(plain)).fit()
    assert not (plain / "tensorboard").exists()
    drop_time = lambda rows: [{k: v for k, v in r.items() if k not in ("seconds", "train_seconds")} for r in rows]  # noqa: E731
    assert drop_time(metrics(plain)) == drop_time(records)


def test_resumed_run_appends_without_duplicating_an_epoch(tmp_path):
    """A run stopped after logging epoch 2 but before its checkpoint trains epoch 2 again on resume; the
    reader must see each epoch once (purge_step), with the numbers of the final metrics.jsonl."""
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"
    Trainer(tiny_digits(run, log=["tensorboard"])).fit(stop_after=1)
    saved = tmp_path / "checkpoint-epoch1.pt"
    shutil.copy(run / "checkpoint.pt", saved)
    Trainer(tiny_digits(run, log=["tensorboard"])).fit(resume=True)
    shutil.copy(saved, run / "checkpoint.pt")  # as if killed after epoch 2 was logged, before its checkpoint
    Trainer(tiny_digits(run, log=["tensorboard"])).fit(resume=True)
    assert len(list((run / "tensorboard").iterdir())) == 3  # one event file per process, in one folder
    events = read_events(run / "tensorboard")
    records = metrics(run)
    for tag, key in (("train/loss", "train_loss"), ("test/accuracy", "test_accuracy")):
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [1, 2]
        assert [e.value for e in logged] == [f32(r[key]) for r in records]
    assert [h.step for h in events.Histograms("dynamics/neuron1/theta_a")] == [0, 1, 2]


def test_cli_log_flag_and_resuming_an_old_config_with_it(tmp_path, capsys):
    """``--log tensorboard`` on the command line; a run whose config.json predates ``log`` resumes (its
    default: jsonl only) and may add TensorBoard logging from the resumed epoch on; PLIF's tau is logged."""
    pytest.importorskip("tensorboard")
    run = tmp_path / "plif"
    common = ["train", "--neuron", "plif", "--hidden", "8", "--steps", "3", "--out", str(run), "--quiet"]
    assert main(common + ["--epochs", "1"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config.pop("log") == ["jsonl"]
    (run / "config.json").write_text(json.dumps(config))  # as written before the option existed
    assert main(common + ["--epochs", "2", "--resume", "--log", "tensorboard"]) == 0
    assert json.loads((run / "config.json").read_text())["log"] == ["jsonl", "tensorboard"]
    events = read_events(run / "tensorboard")
    assert [e.step for e in events.Scalars("test/accuracy")] == [2]
    assert events.Scalars("test/accuracy")[0].value == f32(metrics(run)[1]["test_accuracy"])
    assert {"dynamics/neuron1/tau", "dynamics/neuron2/tau"} <= set(events.Tags()["histograms"])
    tau = events.Histograms("dynamics/neuron1/tau")[0].histogram_value
    assert tau.num == 1 and tau.min == f32(metrics(run)[1]["dynamics"]["neuron1"])
    assert events.Scalars("dynamics_mean/neuron1/tau")[0].value == tau.min


def test_missing_tensorboard_package_is_a_clear_error_at_start_up(tmp_path, monkeypatch, capsys):
    """Without the package the run stops before loading any data (here: a data set whose files are
    missing, which would fail with another message), saying how to install it."""
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard now raises ImportError
    with pytest.raises(TensorBoardUnavailableError, match=r'pip install "spikedyn\[tensorboard\]"'):
        require_tensorboard()
    missing_data = tiny_digits(tmp_path / "run", dataset="mnist", data_root=str(tmp_path / "nowhere"), log="tensorboard")
    with pytest.raises(TensorBoardUnavailableError, match="tensorboard"):
        Trainer(missing_data)
    assert not (tmp_path / "run").exists()
    assert main(["train", "--log", "tensorboard", "--out", str(tmp_path / "cli"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spikedyn: error: --log tensorboard needs") and 'pip install "spikedyn[tensorboard]"' in err
    Trainer(tiny_digits(tmp_path / "plain", epochs=1))  # plain runs do not need the package


def test_log_option_values():
    """jsonl is always first and always there; unknown names are refused with the choices."""
    assert log_formats(None) == ["jsonl"]
    assert log_formats(["tensorboard"]) == ["jsonl", "tensorboard"]
    assert log_formats("tensorboard,jsonl") == ["jsonl", "tensorboard"]
    assert TrainConfig(log=["tensorboard", "tensorboard"]).resolved().log == ["jsonl", "tensorboard"]
    assert TrainConfig.from_dict({"dataset": "digits"}).log == ["jsonl"]
    with pytest.raises(ValueError, match=r"unknown log format 'csv' \(--log\); choose from jsonl, tensorboard"):
        TrainConfig(log=["csv"]).resolved()
    with pytest.raises(SystemExit):
        main(["train", "--log", "csv"])


def test_torchrun_rank_0_alone_writes_the_tensorboard_log(tmp_path):
    """Two data-parallel processes (torchrun, gloo): one event file, holding the numbers of metrics.jsonl.
    torchrun's own --log-dir/--logs-specs make ``--log`` ambiguous to it, so the README's form puts ``--``
    before spikedyn's arguments."""
    pytest.importorskip("tensorboard")
    import os
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(port),
               "-m", "spikedyn", "--", "train", "--epochs", "1", "--hidden", "12", "--steps", "4", "--neuron", "plif",
               "--quiet", "--log", "tensorboard", "--out", str(run)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list((run / "tensorboard").iterdir())) == 1
    events = read_events(run / "tensorboard")
    (record,) = metrics(run)
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(1, f32(record["train_loss"]))]
