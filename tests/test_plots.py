import json

import pytest
import torch

pytest.importorskip("matplotlib")

from spikedyn.cli import main  # noqa: E402
from spikedyn.plots import plot_neuron_traces, plot_training_curves  # noqa: E402


def test_training_curves_png(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"epoch": e, "train_loss": 1 / e, "test_loss": 1.1 / e, "train_accuracy": 0.5 + e / 10, "test_accuracy": 0.4 + e / 10} for e in (1, 2, 3)]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = plot_training_curves(run)
    assert out == run / "curves.png" and out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(FileNotFoundError, match="no metrics.jsonl"):
        plot_training_curves(tmp_path)


def test_neuron_traces_png(tmp_path):
    out = plot_neuron_traces(["2nd-fs", "lif", "plif"], torch.sin(torch.arange(30.0) / 3), tmp_path / "t.png")
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_cli_plot_traces(tmp_path, capsys):
    assert main(["plot", "traces", "2nd-rs", "--steps", "20", "--out", str(tmp_path / "x.png")]) == 0
    assert (tmp_path / "x.png").exists()


def test_plot_dynamics_per_epoch_from_the_metrics(tmp_path, capsys):
    import json

    run = tmp_path / "run"
    assert main(["train", "--neuron", "plif", "--epochs", "2", "--hidden", "8", "--steps", "3", "--out", str(run), "--quiet"]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    taus = records[-1]["dynamics"]
    assert set(taus) == {"neuron1", "neuron2"} and all(isinstance(v, float) and v > 1.0 for v in taus.values())
    capsys.readouterr()
    assert main(["plot", "tau", str(run)]) == 0
    assert (run / "dynamics.png").stat().st_size > 5000
    lif = tmp_path / "lif"
    main(["train", "--neuron", "lif", "--epochs", "1", "--hidden", "8", "--steps", "3", "--out", str(lif), "--quiet"])
    assert "dynamics" not in (lif / "metrics.jsonl").read_text()
    assert main(["plot", "dynamics", str(lif)]) == 2
