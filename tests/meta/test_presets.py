"""Presets files: round trip, errors, and presets as neuron kinds."""

import json
import math

import pytest
import torch

from spikedyn.cli import build_parser, main
from spikedyn.meta import load_preset_info, load_presets, nearest_paper_preset, paper_presets, save_presets
from spikedyn.models.mdn import MDNNet
from spikedyn.neurons import NeuronKindError, SecondOrder, check_neuron_kind, make_neuron

FS = (0.060, 0.219, -0.065, 0.003)  # 2nd-FS, spec mdn.md section 2.3
Z_VALUES = [-4.0, -2.0, -1.0, 0.0, 1.0, 2.0]
FS_COUNTS_T20 = [0, 0, 0, 10, 20, 20]  # spec mdn.md section 2.4
FS_F32 = torch.tensor(FS).tolist()  # layers keep theta in float32


@pytest.fixture
def fs_file(tmp_path):
    return save_presets(tmp_path / "p.json", {"fast": FS, "other": (0.01, 0.2, 0.0, 0.08)})


def test_round_trip_is_exact_and_keeps_extra(tmp_path):
    presets = {"C1": (0.1 + 0.2, 1 / 3, -0.065, 2.5e-17), "C2": (torch.tensor(0.25), 0.5, -1, 7)}
    path = save_presets(
        tmp_path / "sub" / "p.json", presets, source={"run": "r", "epoch": 5}, extra={"C1": {"nearest_paper": "2nd-FS"}}
    )
    assert path == tmp_path / "sub" / "p.json"
    loaded = load_presets(path)
    assert list(loaded) == ["C1", "C2"]
    assert loaded["C1"] == (0.1 + 0.2, 1 / 3, -0.065, 2.5e-17)  # exact floats
    assert loaded["C2"] == (0.25, 0.5, -1.0, 7.0) and all(type(x) is float for x in loaded["C2"])
    document = json.loads(path.read_text())
    assert document["format"] == "spikedyn-meta-presets" and document["version"] == 1
    assert document["source"] == {"run": "r", "epoch": 5}
    assert document["presets"]["C1"]["nearest_paper"] == "2nd-FS"
    assert load_preset_info(path)["C1"] == {
        "theta_a": 0.1 + 0.2, "theta_b": 1 / 3, "theta_c": -0.065, "theta_d": 2.5e-17, "nearest_paper": "2nd-FS"
    }
    assert [p.name for p in path.parent.iterdir()] == ["p.json"]  # no temporary file left behind


def test_save_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="4 values"):
        save_presets(tmp_path / "p.json", {"C1": (1.0, 2.0, 3.0)})
    with pytest.raises(ValueError, match="theta_c is nan"):
        save_presets(tmp_path / "p.json", {"C1": (1.0, 2.0, math.nan, 0.0)})
    with pytest.raises(ValueError, match="contain no ':'"):
        save_presets(tmp_path / "p.json", {"a:b": FS})
    with pytest.raises(ValueError, match="must not set 'theta_a'"):
        save_presets(tmp_path / "p.json", {"C1": FS}, extra={"C1": {"theta_a": 1.0}})
    with pytest.raises(ValueError, match=r"not among the presets"):
        save_presets(tmp_path / "p.json", {"C1": FS}, extra={"C9": {}})
    assert not (tmp_path / "p.json").exists()


def _write(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    return path


def _doc(presets):
    return json.dumps({"format": "spikedyn-meta-presets", "version": 1, "presets": presets})


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", r"bad.json is not valid JSON \(line 1"),
        ('{"format": "other", "presets": {}}', r"bad.json is not a spikedyn presets file.*found format 'other'"),
        ("[1, 2]", "not a spikedyn presets file"),
        ('{"format": "spikedyn-meta-presets", "version": 9, "presets": {"a": {}}}', "version 9, newer"),
        (_doc({}), "needs a non-empty object"),
        (_doc({"C1": {"theta_a": 1, "theta_b": 2}}), r"preset 'C1' in .*bad.json lacks theta_c, theta_d"),
        (_doc({"C1": {"theta_a": 1, "theta_b": 2, "theta_c": "x", "theta_d": 0}}), "theta_c must be a number"),
        (_doc({"C1": {"theta_a": 1, "theta_b": 2, "theta_c": 0, "theta_d": float("inf")}}), "theta_d is inf"),
        (_doc({"C1": [1, 2, 3, 4]}), "must be an object"),
    ],
)
def test_load_errors_name_the_file_and_the_fix(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        load_presets(_write(tmp_path, text))


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope.json not found: write one with `spikedyn meta cluster"):
        load_presets(tmp_path / "nope.json")


def test_file_kind_is_a_frozen_second_order_with_fs_spike_counts(fs_file):
    layer = make_neuron(f"{fs_file}:fast", 6)
    assert isinstance(layer, SecondOrder) and not layer.learnable
    assert list(layer.parameters()) == [] and not layer.theta.requires_grad
    assert layer.theta[:, 0].tolist() == FS_F32
    z = torch.tensor(Z_VALUES, dtype=torch.float64).expand(20, 1, 6).contiguous()
    for fast in (True, False):
        layer = make_neuron(f"{fs_file}:fast", 6, fast=fast).double()
        assert layer(z).sum(0)[0].tolist() == FS_COUNTS_T20


def test_file_kind_in_the_network(fs_file):
    net = MDNNet(64, hidden=8, classes=10, neuron=f"{fs_file}:fast")
    assert net.dynamic_parameters() == []
    assert net.neuron1.theta.shape == (4, 8) and net.neuron2.theta[:, 3].tolist() == FS_F32


def test_unknown_name_lists_the_names_in_the_file(fs_file):
    with pytest.raises(ValueError, match=r"no preset 'C7' in .*p.json; the file holds: fast, other"):
        make_neuron(f"{fs_file}:C7", 3)
    assert make_neuron(f"{fs_file}:FAST", 1).theta[:, 0].tolist() == FS_F32  # unique case-insensitive match


def test_check_neuron_kind(fs_file):
    assert check_neuron_kind("2nd-FS") == "2nd-fs" and check_neuron_kind("LIF") == "lif"
    assert check_neuron_kind(f"{fs_file}:fast") == f"{fs_file}:fast"
    with pytest.raises(NeuronKindError, match=r"unknown neuron kind 'izh'; choose one of lif, .*mdn.*PATH:NAME"):
        check_neuron_kind("izh")
    with pytest.raises(ValueError, match="the file holds: fast, other"):
        check_neuron_kind(f"{fs_file}:slow")
    with pytest.raises(ValueError, match="not found"):
        check_neuron_kind(f"{fs_file}.missing:fast")
    with pytest.raises(ValueError, match="PATH:NAME"):
        check_neuron_kind(f"{fs_file}:")


def test_cli_reports_bad_kinds_with_the_reason(fs_file, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["plot", "traces", f"{fs_file}:slow"])
    assert "the file holds: fast, other" in capsys.readouterr().err
    args = build_parser().parse_args(["plot", "traces", "2nd-RS", f"{fs_file}:fast"])
    assert args.kinds == ["2nd-rs", f"{fs_file}:fast"]


def test_cli_plot_traces_of_a_preset(fs_file, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "t.png"
    assert main(["plot", "traces", f"{fs_file}:fast", "--steps", "10", "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_paper_presets_and_nearest():
    presets = paper_presets()
    assert presets["2nd-FS"] == FS and presets["2nd-WDS"] == (0.005, 0.158, -0.058, 0.065)
    presets["2nd-FS"] = (0, 0, 0, 0)
    assert paper_presets()["2nd-FS"] == FS  # a copy
    assert nearest_paper_preset(FS) == ("2nd-FS", 0.0)
    # RS differs from FS only in (c, d): distance to RS = |(-0.065 - -0.010, 0.003 - 0.050)| by hand
    name, distance = nearest_paper_preset((0.06, 0.219, -0.02, 0.045))
    assert name == "2nd-RS" and distance == pytest.approx(math.hypot(0.01, 0.005))
    assert nearest_paper_preset((0, 0, 0, 0), {"x": (3, 4, 0, 0), "y": (0, 0, 0, 6)}) == ("x", 5.0)
