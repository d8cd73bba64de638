"""``spikedyn runs``: one table of many runs, read from their config.json and metrics.jsonl."""

import csv
import io
import json

import pytest

from spikedyn.analysis.run_table import differing_settings, flatten_settings, read_run, render_table, run_table
from spikedyn.cli import main


def make_run(folder, tests, trains=None, config=None, vals=None, seconds=30.0, metric=None):
    """A run folder with hand-written records: epoch i has test score tests[i] (fractions)."""
    folder.mkdir(parents=True)
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    lines = []
    for i, test in enumerate(tests):
        record = {"epoch": i + 1, "train_loss": 0.1, "train_accuracy": (trains or tests)[i], "test_loss": 0.1,
                  "test_accuracy": test, "lr": [1e-3], "seconds": seconds, "train_seconds": seconds - 1}
        if vals is not None:
            record["val_accuracy"] = vals[i]
        if metric is not None:
            record["metric"] = metric
        lines.append(json.dumps(record))
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return folder


BASE = {"dataset": "mnist", "model": "mdn", "neuron": "2nd-fs", "rule": "brp", "hidden": 500, "lr": 1e-3,
        "epochs": 4, "model_options": {}, "out": "x", "data_root": "d", "device": "auto", "progress": True}


def test_scores_best_epoch_and_time_come_from_the_records(tmp_path):
    """Catches an off-by-one epoch, the last score shown as the best, or the time of one epoch only."""
    run = make_run(tmp_path / "a", [0.90, 0.95, 0.93], trains=[0.8, 0.9, 0.97], config=BASE, seconds=40.0)
    row = read_run(run)
    assert (row.epochs, row.planned, row.last, row.best, row.best_epoch, row.train_last) == (3, 4, 0.93, 0.95, 2, 0.97)
    assert row.seconds == pytest.approx(120.0)
    text = render_table([row], ["hidden"])
    assert "| a | 500 | 3 of 4 | 93.00 | 95.00 (2) | 97.00 | 2 min |" in text


def test_only_the_settings_that_differ_become_columns(tmp_path):
    """Catches columns for settings every run shares, for paths or devices, or a dict option left unflattened."""
    make_run(tmp_path / "r" / "small", [0.9], config={**BASE, "out": "r/small", "device": "cpu"})
    make_run(tmp_path / "r" / "wide", [0.95], config={**BASE, "hidden": 2000, "model_options": {"dropout": 0.2}})
    rows, columns = run_table([tmp_path / "r"])
    assert [r.name for r in rows] == ["small", "wide"]
    assert columns == ["hidden", "model_options.dropout"]
    text = render_table(rows, columns)
    assert "| small | 500 | - | 1 of 4 | 90.00 |" in text and "| wide | 2000 | 0.2 | 1 of 4 | 95.00 |" in text
    assert flatten_settings({"a": {"b": {"c": 1}}, "d": [1, 2]}) == {"a.b.c": 1, "d": [1, 2]}
    assert differing_settings(rows[:1]) == []


def test_one_run_shows_what_it_trained_and_sorting_by_best(tmp_path):
    make_run(tmp_path / "low", [0.5, 0.6], config=BASE)
    make_run(tmp_path / "high", [0.9, 0.7], config=BASE)
    rows, columns = run_table([tmp_path / "low"])
    assert columns == ["dataset", "model", "neuron", "rule"]
    rows, _ = run_table([tmp_path / "low", tmp_path / "high"], sort="best")
    assert [r.name for r in rows] == ["high", "low"]
    rows, _ = run_table([tmp_path / "low", tmp_path / "high"], sort="last")
    assert [r.name for r in rows] == ["high", "low"]  # 0.7 > 0.6


def test_validation_picks_the_reported_test_score(tmp_path):
    """Catches reporting the best test epoch when a validation split chose another one."""
    run = make_run(tmp_path / "v", [0.90, 0.96, 0.94], vals=[0.91, 0.92, 0.95], config=BASE)
    row = read_run(run)
    assert (row.best, row.best_epoch, row.test_at_best_val, row.best_val_epoch) == (0.96, 2, 0.94, 3)
    assert "| 94.00 (3) |" in render_table([row], [])


def test_a_kept_log_and_a_folder_of_logs(tmp_path):
    logs = tmp_path / "logs"
    make_run(tmp_path / "tmp", [0.8, 0.85])
    logs.mkdir()
    (tmp_path / "tmp" / "metrics.jsonl").rename(logs / "cpu-500-20ep.jsonl")
    rows, columns = run_table([logs])
    assert [r.name for r in rows] == ["cpu-500-20ep"] and rows[0].settings is None and columns == []
    assert rows[0].best == 0.85


def test_a_cut_last_line_of_a_running_or_killed_run_is_skipped(tmp_path):
    run = make_run(tmp_path / "cut", [0.8, 0.85], config=BASE)
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"epoch": 3, "train_lo')
    assert read_run(run).epochs == 2


def test_csv_and_json_hold_the_same_numbers(tmp_path):
    make_run(tmp_path / "a", [0.9, 0.95], config=BASE)
    make_run(tmp_path / "b", [0.7], config={**BASE, "lr": 1e-4})
    rows, columns = run_table([tmp_path / "a", tmp_path / "b"])
    records = json.loads(render_table(rows, columns, "json"))
    assert records[0]["lr"] == 1e-3 and records[0]["test_best"] == 0.95 and records[0]["best_epoch"] == 2
    table = list(csv.DictReader(io.StringIO(render_table(rows, columns, "csv"))))
    assert table[1]["run"] == "b" and float(table[1]["test_last"]) == 0.7 and table[1]["lr"] == "0.0001"


def test_other_metric_is_named(tmp_path):
    run = make_run(tmp_path / "nettalk", [0.5], config=BASE, metric="cosine")
    assert "| nettalk | cosine |" in render_table([read_run(run)], [])


def test_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_table([tmp_path / "nothing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no run"):
        run_table([tmp_path / "empty"])
    make_run(tmp_path / "a", [0.9], config=BASE)
    with pytest.raises(ValueError, match="no run has the setting.*hiden.*hidden"):
        run_table([tmp_path / "a"], columns=["hiden"])
    with pytest.raises(ValueError, match=r"2 label\(s\) for 1 run\(s\)"):
        run_table([tmp_path], labels=["x", "y"])  # the empty folder below holds no run


def test_the_command_on_a_trained_run(tmp_path, capsys):
    """End to end: a real run of the demo, its table line matches its metrics.jsonl."""
    out = tmp_path / "demo"
    assert main(["train", "--epochs", "2", "--hidden", "16", "--steps", "4", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert main(["runs", str(out)]) == 0
    text = capsys.readouterr().out
    best = max(r["test_accuracy"] for r in records)
    assert f"| demo | digits | mdn | 2nd-fs | bptt | 2 | {100 * records[-1]['test_accuracy']:.2f} | {100 * best:.2f} (" in text
    assert main(["runs", str(out), "--format", "csv", "--out", str(tmp_path / "t.csv")]) == 0
    assert (tmp_path / "t.csv").read_text().startswith("run,dataset,model,neuron,rule,epochs")


def test_a_run_being_trained_is_marked(tmp_path):
    """Catches a half-done run read as if it had stopped: a process training it (by its --out) is named."""
    import subprocess
    import sys

    from spikedyn.reproduce import cells

    run = make_run(tmp_path / "live", [0.8], config=BASE)
    trainer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "train", "--out", str(run)])
    try:
        cells._PROC_CACHE["time"] = -1.0  # forget the process list of an earlier test
        row = read_run(run)
        assert row.training and str(trainer.pid) in row.training
        assert "| live | 1 of 4 (training) |" in render_table([row], [])
    finally:
        trainer.kill()
        trainer.wait()
    cells._PROC_CACHE["time"] = -1.0
    assert read_run(run).training is None
