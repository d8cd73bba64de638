"""`spikedyn sweep`: data sets x neurons x rules x seeds through the reproduce runner, resumable."""

import json

import pytest

from spikedyn.cli import main
from spikedyn.reproduce.sweep import sweep_table

TINY = ["--set", "hidden=8", "--set", "steps=3", "--set", "batch_size=200", "--quiet", "--jobs", "1"]


def test_sweep_trains_every_cell_then_continues_instead_of_rerunning(tmp_path, capsys):
    base = ["sweep", "tiny", "--dataset", "digits", "--neurons", "lif", "--rules", "bptt", "brp", "--seeds", "1",
            "--out", str(tmp_path)] + TINY
    assert main(base + ["--epochs", "1"]) == 0
    assert "cells: 2 trained now, 0 finished before" in capsys.readouterr().out
    runs = {rule: tmp_path / "tiny" / f"digits-{rule}" / "lif" / "seed3154" for rule in ("bptt", "brp")}
    for rule, run in runs.items():
        assert json.loads((run / "config.json").read_text())["rule"] == rule
    assert main(base + ["--epochs", "1"]) == 0  # the same command again: nothing is retrained
    assert "cells: 0 trained now, 2 finished before" in capsys.readouterr().out
    assert main(base + ["--epochs", "2"]) == 0  # more epochs: each cell resumes from its checkpoint
    out = capsys.readouterr().out
    assert "resuming" in out and "cells: 2 trained now" in out
    for run in runs.values():
        assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    doc = json.loads((tmp_path / "tiny.json").read_text())
    assert {r["label"] for r in doc["rows"]} == {"digits, bptt", "digits, brp"}
    assert all(r["ours"]["lif"]["seeds_finished"] == 1 for r in doc["rows"])


def test_sweep_refuses_bad_settings():
    with pytest.raises(ValueError, match="rule"):
        sweep_table("x", ["digits"], ["lif"], ["backprop"])
    with pytest.raises(ValueError, match="seed"):
        sweep_table("x", ["digits"], ["lif"], train_options={"seed": 3})
    with pytest.raises(ValueError, match="plain folder name"):
        sweep_table("../x", ["digits"], ["lif"])
