"""Plots: the saved PNG has the figure's size, is not blank, and the figure holds the expected
axes and data (a PNG magic-bytes check alone passes an empty or wrongly drawn figure)."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("matplotlib")

from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import imread  # noqa: E402

from spikedyn.cli import main  # noqa: E402
from spikedyn.plots import plot_neuron_traces, plot_training_curves  # noqa: E402


@pytest.fixture
def saved_figures(monkeypatch):
    """Every figure saved during the test, as it was at ``savefig`` (the plot functions close it after)."""
    figures = []
    original = Figure.savefig

    def record(self, *args, **kwargs):
        figures.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return figures


def check_png(path, size_px: tuple[int, int]) -> np.ndarray:
    """The PNG's pixels, checked: the figure size (height, width) in pixels and a non-blank image."""
    assert path.read_bytes()[:4] == b"\x89PNG"
    pixels = imread(path)
    assert pixels.shape[:2] == size_px
    rgb = pixels[..., :3]
    assert rgb.std() > 0.05, "the image is (nearly) one colour"
    assert (rgb.min(axis=2) < 0.5).mean() > 0.005, "almost nothing dark (lines, text) is drawn"
    return pixels


def test_training_curves_png(tmp_path, saved_figures):
    """Two panels (loss, accuracy %) each with the train and test curves of metrics.jsonl, 9 x 3.5 in at 110 dpi."""
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"epoch": e, "train_loss": 1 / e, "test_loss": 1.1 / e, "train_accuracy": 0.5 + e / 10, "test_accuracy": 0.4 + e / 10} for e in (1, 2, 3)]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = plot_training_curves(run)
    assert out == run / "curves.png"
    check_png(out, (385, 990))
    fig = saved_figures[0]
    loss, acc = fig.axes
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "accuracy (%)"]
    assert [list(line.get_ydata()) for line in loss.get_lines()] == [[1.0, 0.5, 1 / 3], [1.1, 0.55, 1.1 / 3]]
    train_acc, test_acc = (list(line.get_ydata()) for line in acc.get_lines())
    assert train_acc == pytest.approx([60.0, 70.0, 80.0]) and test_acc == pytest.approx([50.0, 60.0, 70.0])
    assert list(loss.get_lines()[0].get_xdata()) == [1, 2, 3]
    with pytest.raises(FileNotFoundError, match="no metrics.jsonl"):
        plot_training_curves(tmp_path)
    kept = tmp_path / "kept-log.jsonl"  # a metrics file kept as a log plots like its run, the PNG beside it
    kept.write_text((run / "metrics.jsonl").read_text())
    assert plot_training_curves(kept) == tmp_path / "kept-log-curves.png"
    assert saved_figures[-1]._suptitle.get_text() == "kept-log"
    assert [list(line.get_ydata()) for line in saved_figures[-1].axes[0].get_lines()][0] == [1.0, 0.5, 1 / 3]


def trace_panels(fig):
    """The figure's axes grouped per neuron: (spike raster, state with threshold, input current)."""
    axes = fig.axes
    assert len(axes) % 3 == 0
    return [tuple(axes[i : i + 3]) for i in range(0, len(axes), 3)]


def lines_by_label(ax) -> dict:
    return {line.get_label(): line for line in ax.get_lines()}


def test_neuron_traces_png(tmp_path, saved_figures):
    """Per kind three panels (8 x 3 in per kind, 110 dpi): spikes, the recorded state traces (V and U for
    the 2nd-order neuron, V for the LIF kinds) with the threshold, and the input current."""
    drive = torch.sin(torch.arange(30.0) / 3)
    out = plot_neuron_traces(["2nd-fs", "lif", "plif"], drive, tmp_path / "t.png")
    check_png(out, (990, 880))
    (fig,) = saved_figures
    panels = trace_panels(fig)
    assert [spikes.get_title(loc="left").split(":")[0] for spikes, _, _ in panels] == ["2nd-fs", "lif", "plif"]
    states = [[line.get_label() for line in state.get_lines()] for _, state, _ in panels]
    assert states == [["V", "U", "threshold 0.5"], ["V", "threshold 0.5"], ["V", "threshold 1"]]
    assert all(len(lines_by_label(state)["V"].get_ydata()) == 30 for _, state, _ in panels)


def test_traces_threshold_line_and_input_current(tmp_path, saved_figures):
    """The threshold is a horizontal line at the spec's V_th (CASIA cells and 2nd-order 0.5, PLIF 1.0),
    the current panel holds I_t = f(z_t) (sigmoid for lif and 2nd-fs, identity for plif) with z_t beside
    it for the sigmoid kinds, and the spikes are ticks in their own panel, not lines over V."""
    drive = torch.linspace(-2.0, 2.0, 25)
    plot_neuron_traces(["lif", "2nd-fs", "plif"], drive, tmp_path / "t.png")
    (fig,) = saved_figures
    for (spikes, state, current), v_th, f in zip(
        trace_panels(fig), (0.5, 0.5, 1.0), (torch.sigmoid, torch.sigmoid, lambda z: z)
    ):
        threshold = [line for line in state.get_lines() if line.get_label().startswith("threshold")]
        assert len(threshold) == 1 and list(threshold[0].get_ydata()) == [v_th, v_th]
        assert list(threshold[0].get_xdata()) == [0, 1]  # axhline: spans the axis, in axes coordinates
        lines = lines_by_label(current)
        assert current.get_ylabel() == "I_t"
        np.testing.assert_allclose(lines["I_t"].get_ydata(), f(drive).numpy(), rtol=0, atol=1e-7)
        assert list(lines["I_t"].get_xdata()) == list(range(1, 26))
        if "z_t" in lines:
            np.testing.assert_allclose(lines["z_t"].get_ydata(), drive.numpy(), rtol=0, atol=0)
        assert ("z_t" in lines) == (f is torch.sigmoid)
        assert not state.collections  # no vertical spike lines drawn over V
        assert spikes.get_yticks().size == 0


def test_traces_spike_raster_holds_the_spike_times(tmp_path, saved_figures):
    """Decay-LIF with sigmoid input under z = 0: I = 0.5, V = 0.5, 0.6, 0.5, 0.6, ... (V_t = 0.2 V (1 - S) + I),
    so it fires (V > 0.5) at steps 2, 4, 6, drawn as ticks at those steps."""
    plot_neuron_traces(["lif"], torch.zeros(6), tmp_path / "t.png")
    (fig,) = saved_figures
    ((spikes, state, _),) = trace_panels(fig)
    (ticks,) = spikes.get_lines()
    assert list(ticks.get_xdata()) == [2, 4, 6] and ticks.get_marker() == "|" and ticks.get_linestyle() == "None"
    assert spikes.get_title(loc="left") == "lif: 3 spikes"
    np.testing.assert_allclose(lines_by_label(state)["V"].get_ydata(), [0.5, 0.6, 0.5, 0.6, 0.5, 0.6], atol=1e-7)


def test_traces_draw_a_moving_threshold_as_its_trace(tmp_path, saved_figures):
    """A layer whose threshold moves (threshold_trace returns a trace) gets that trace, not a constant line."""
    from spikedyn.neurons import DecayLIF

    class Adapting(DecayLIF):
        def threshold_trace(self, run):
            return self.v_th + 0.1 * run.spikes.cumsum(0)

    layer = Adapting(input_fn="sigmoid", shape=1)
    layer.label = "adapting"
    plot_neuron_traces([layer], torch.zeros(6), tmp_path / "t.png")
    (fig,) = saved_figures
    ((spikes, state, _),) = trace_panels(fig)
    assert spikes.get_title(loc="left") == "adapting: 3 spikes"
    threshold = lines_by_label(state)["threshold"]
    np.testing.assert_allclose(threshold.get_ydata(), [0.5, 0.6, 0.6, 0.7, 0.7, 0.8], atol=1e-7)
    assert list(threshold.get_xdata()) == [1, 2, 3, 4, 5, 6]


def test_cli_plot_traces(tmp_path, capsys, saved_figures):
    assert main(["plot", "traces", "2nd-rs", "--steps", "20", "--out", str(tmp_path / "x.png")]) == 0
    (fig,) = saved_figures
    check_png(tmp_path / "x.png", (330, 880))  # one neuron: 8 x 3 in at 110 dpi
    ((spikes, state, current),) = trace_panels(fig)
    assert spikes.get_title(loc="left").startswith("2nd-rs:")
    assert len(current.get_lines()[0].get_ydata()) == 20


def test_plot_dynamics_per_epoch_from_the_metrics(tmp_path, capsys, saved_figures):
    run = tmp_path / "run"
    assert main(["train", "--neuron", "plif", "--epochs", "2", "--hidden", "8", "--steps", "3", "--out", str(run), "--quiet"]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    taus = records[-1]["dynamics"]
    assert set(taus) == {"neuron1", "neuron2"} and all(isinstance(v, float) and v > 1.0 for v in taus.values())
    capsys.readouterr()
    assert main(["plot", "tau", str(run)]) == 0
    assert (run / "dynamics.png").stat().st_size > 5000
    fig = saved_figures[-1]
    check_png(run / "dynamics.png", (374, 462))  # one tau panel: 4.2 x 3.4 in at 110 dpi
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.get_lines()] == ["neuron1", "neuron2"]
    assert [line.get_ydata()[-1] for line in ax.get_lines()] == [taus["neuron1"], taus["neuron2"]]
    lif = tmp_path / "lif"
    main(["train", "--neuron", "lif", "--epochs", "1", "--hidden", "8", "--steps", "3", "--out", str(lif), "--quiet"])
    assert "dynamics" not in (lif / "metrics.jsonl").read_text()
    assert main(["plot", "dynamics", str(lif)]) == 2
    # two runs (paper Fig. 7: tau0 = 2 and 16) share the panel: colour per layer, line style per run
    run16 = tmp_path / "run16"  # a run started at tau0 = 16: its metrics, written as the trainer writes them
    run16.mkdir()
    (run16 / "metrics.jsonl").write_text("".join(
        json.dumps({"epoch": e, "test_accuracy": 0.5, "dynamics": {"neuron1": 16.0 - e, "neuron2": 15.5 - e}}) + "\n"
        for e in (1, 2)
    ))
    assert main(["plot", "tau", str(run), str(run16), "--labels", "tau0=2", "tau0=16"]) == 0
    assert (run / "dynamics-compare.png").stat().st_size > 5000
    (ax,) = saved_figures[-1].axes
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["tau0=2: neuron1", "tau0=2: neuron2", "tau0=16: neuron1", "tau0=16: neuron2"]
    assert [line.get_linestyle() for line in lines] == ["-", "-", "--", "--"]
    assert lines[0].get_color() == lines[2].get_color() != lines[1].get_color()
    assert list(lines[2].get_ydata()) == [15.0, 14.0] and list(lines[3].get_xdata()) == [1, 2]
    assert main(["plot", "tau", str(run), str(run16), "--labels", "one"]) == 2


def test_training_curves_of_several_runs_share_the_axes(tmp_path, saved_figures):
    """PLIF paper Fig. 6 style: two runs' test curves (solid) and train curves (dashed) on shared axes,
    one colour per run, named by --labels; a one-epoch run still shows (markers)."""
    runs = []
    for name, acc in (("plif", [0.6, 0.8, 0.9]), ("lif", [0.3])):
        run = tmp_path / name
        run.mkdir()
        rows = [{"epoch": e + 1, "train_loss": 1 - a, "test_loss": 1.1 - a, "train_accuracy": a + 0.05, "test_accuracy": a}
                for e, a in enumerate(acc)]
        (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        runs.append(run)
    assert main(["plot", "curves", *map(str, runs), "--labels", "PLIF", "LIF tau=16"]) == 0
    out = runs[0] / "compare.png"
    check_png(out, (385, 990))
    (fig,) = saved_figures
    loss, acc = fig.axes
    losses = {line.get_label(): line for line in loss.get_lines()}
    assert set(losses) == {"PLIF train", "PLIF test", "LIF tau=16 train", "LIF tau=16 test"}
    assert list(losses["PLIF test"].get_ydata()) == pytest.approx([0.5, 0.3, 0.2])  # test loss too: solid
    assert losses["PLIF test"].get_linestyle() == "-" and losses["PLIF train"].get_linestyle() == "--"
    lines = {line.get_label(): line for line in acc.get_lines()}
    assert set(lines) == {"PLIF train", "PLIF test", "LIF tau=16 train", "LIF tau=16 test"}
    assert list(lines["PLIF test"].get_ydata()) == pytest.approx([60.0, 80.0, 90.0])
    assert list(lines["LIF tau=16 test"].get_ydata()) == pytest.approx([30.0]) and lines["LIF tau=16 test"].get_marker() == "."
    assert lines["PLIF train"].get_color() == lines["PLIF test"].get_color() != lines["LIF tau=16 test"].get_color()
    with pytest.raises(ValueError, match="one label per run"):
        plot_training_curves(runs, labels=["only one"])


def test_training_curves_target_zoom_and_long_runs(tmp_path, saved_figures):
    """--target draws a dotted line at that accuracy, --accuracy-min starts the accuracy axis there, a
    run of more than 40 epochs is drawn without markers, and several runs get one legend entry each
    (plus the two line styles and the target) on the loss panel; bad percentages are refused."""
    runs = []
    for name, n in (("wide", 60), ("narrow", 60)):
        run = tmp_path / name
        run.mkdir()
        rows = [{"epoch": e, "train_loss": 1 / e, "test_loss": 1.1 / e, "train_accuracy": 0.9 + e / 1000,
                 "test_accuracy": 0.89 + e / 1000} for e in range(1, n + 1)]
        (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        runs.append(run)
    args = ["plot", "curves", *map(str, runs), "--target", "97", "--accuracy-min", "93", "--title", "two widths"]
    assert main(args) == 0
    (fig,) = saved_figures
    loss, acc = fig.axes
    assert fig._suptitle.get_text() == "two widths"
    target = [line for line in acc.get_lines() if line.get_label() == "target 97 %"]
    assert len(target) == 1 and list(target[0].get_ydata()) == [97, 97] and target[0].get_linestyle() == ":"
    assert acc.get_ylim() == pytest.approx((93.0, 97.3))  # top: the target, above the best train 96 %, + 0.3
    assert {line.get_marker() for line in acc.get_lines()} == {"None"}
    legend = [t.get_text() for t in loss.get_legend().get_texts()]
    assert legend == ["wide", "narrow", "train", "test", "target 97 %"] and acc.get_legend() is None
    with pytest.raises(ValueError, match=r"percentage in \[0, 100\)"):
        plot_training_curves(runs, target=0.97e3)
