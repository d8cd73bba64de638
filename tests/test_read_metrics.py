"""Reading a run's metrics.jsonl back (curves, run tables, reproduce): cut last line, damage, absence."""

import json

import pytest

from spikedyn.runfiles import read_metrics


def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_a_cut_last_line_is_skipped_as_the_trainer_writes_it_again(tmp_path):
    """Catches a crash of `plot curves` / `runs` on a run killed while appending its epoch line."""
    write(tmp_path / "metrics.jsonl", [json.dumps({"epoch": 1}), json.dumps({"epoch": 2}), '{"epoch": 3, "tr'])
    assert read_metrics(tmp_path) == [{"epoch": 1}, {"epoch": 2}]
    assert read_metrics(tmp_path / "metrics.jsonl") == [{"epoch": 1}, {"epoch": 2}]


def test_damage_before_the_last_line_is_an_error_not_a_silent_gap(tmp_path):
    """Catches a reader that drops an epoch from the middle of the record without a word."""
    path = write(tmp_path / "kept.jsonl", [json.dumps({"epoch": 1}), "garbage", json.dumps({"epoch": 3})])
    with pytest.raises(ValueError, match=r"kept.jsonl, line 2, is not a JSON record .*damaged"):
        read_metrics(path)
    write(path, ["[1, 2]", json.dumps({"epoch": 1})])
    with pytest.raises(ValueError, match="line 1, is not a JSON object"):
        read_metrics(path)


def test_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no metrics.jsonl in .*pass a run directory"):
        read_metrics(tmp_path)
    assert read_metrics(tmp_path, missing_ok=True) == []
