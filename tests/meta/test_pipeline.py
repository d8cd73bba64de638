"""MDN phases 1-3 end to end (spikedyn meta pipeline) and the meta dynamics command."""

import json

import pytest

from spikedyn.cli import main
from spikedyn.meta import load_presets
from spikedyn.meta.pipeline import PipelineConfig, compare_with_paper, run_pipeline
from spikedyn.meta.dynamics import sine_drive
from spikedyn.neurons import META_NEURON_PRESETS

pytest.importorskip("matplotlib")


def test_pipeline_writes_report_and_reuses_a_finished_phase_one(tmp_path):
    out = tmp_path / "pipe"
    config = PipelineConfig(dataset="digits", epochs=2, hidden=24, steps=6, out=str(out), progress=False)
    summary = run_pipeline(config)
    for name in ("report.md", "pipeline.json", "phase2/presets.json", "phase2/clusters.png", "phase3/dynamics.png",
                 "phase3/filter.json", "phase1/theta_history.pt"):
        assert (out / name).exists(), name
    n_cand = summary["clusters"]["ab"]["m"] * summary["clusters"]["cd"]["m"]
    assert len(summary["candidates"]) == n_cand
    kept = summary["kept"]
    assert kept and set(kept) <= {c["name"] for c in summary["candidates"]}
    assert set(load_presets(out / "meta-neurons.json")) == set(kept)
    report = (out / "report.md").read_text()
    assert all(f"**{k}**" in report for k in kept) and "clusters.png" in report
    # a second call reuses the finished phase-1 run: no new epoch is trained
    metrics = (out / "phase1" / "metrics.jsonl").read_text()
    run_pipeline(config)
    assert (out / "phase1" / "metrics.jsonl").read_text() == metrics
    # the kept meta neurons train as neuron kinds
    run = tmp_path / "run"
    kind = f"{out / 'meta-neurons.json'}:{kept[0]}"
    assert main(["train", "--neuron", kind, "--epochs", "1", "--hidden", "8", "--steps", "4", "--out", str(run), "--quiet"]) == 0
    assert json.loads((run / "config.json").read_text())["neuron"] == kind


def test_paper_presets_are_closest_to_themselves():
    drive = sine_drive()
    comp = compare_with_paper(dict(META_NEURON_PRESETS), ["2nd-FS", "2nd-RS", "2nd-SDS", "2nd-WDS"], drive)
    for name in ("2nd-FS", "2nd-RS", "2nd-SDS", "2nd-WDS"):
        assert comp[name]["closest_by_dynamics"] == name
        assert comp[name]["to_paper"][name] == {"theta_distance": 0.0, "spike_distance": 0.0}


def test_meta_dynamics_command_flags_m3_and_keeps_the_paper_neurons(tmp_path, capsys):
    out = tmp_path / "dyn.png"
    assert main(["meta", "dynamics", "2nd-fs", "2nd-rs", "2nd-m3", "2nd-sds", "2nd-wds", "--out", str(out)]) == 0
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["kept"] == ["2nd-FS", "2nd-RS", "2nd-SDS", "2nd-WDS"]
    assert summary["dropped"]["2nd-M3"].startswith("non-sensitive")
    assert out.stat().st_size > 10_000
    assert main(["meta", "dynamics", "lif"]) == 2
    assert "not a 2nd-order meta neuron" in capsys.readouterr().err
