"""--resume: refuse a directory without a checkpoint, take every setting from config.json, refuse conflicts."""

import json

import pytest
from bad_input_helpers import assert_user_error, copy_run, run_cli, train_tiny


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("trained") / "run", "--seed", "7", "--lr", "0.002")


def test_resume_without_a_checkpoint_is_an_error(tmp_path, capsys):
    rc, _, err = run_cli(capsys, "train", "--out", str(tmp_path / "new"), "--resume", "--quiet")
    assert_user_error(rc, err, f"no checkpoint in {tmp_path / 'new'} to resume", "drop --resume to start a new run")
    assert not (tmp_path / "new").exists()


def test_resume_reads_the_saved_settings(trained, tmp_path, capsys):
    run = copy_run(trained, tmp_path / "run")
    rc, out, err = run_cli(capsys, "train", "--out", str(run), "--resume", "--epochs", "2", "--quiet")
    assert rc == 0, err
    assert "network 64-8-10" in out and "T=2, batch 300, 2 epochs" in out  # the header describes the saved run
    saved = json.loads((run / "config.json").read_text())
    assert (saved["hidden"], saved["steps"], saved["batch_size"], saved["seed"], saved["lr"]) == (8, 2, 300, 7, 0.002)
    assert saved["epochs"] == 2 and len((run / "metrics.jsonl").read_text().splitlines()) == 2


def test_resume_refuses_a_flag_that_conflicts_with_the_run(trained, tmp_path, capsys):
    run = copy_run(trained, tmp_path / "run")
    rc, _, err = run_cli(capsys, "train", "--out", str(run), "--resume", "--hidden", "16", "--seed", "7", "--quiet")
    assert_user_error(rc, err, "--hidden 16 (the run has hidden=8)", "Drop those flags", "--epochs")
    assert "--seed" not in err.split("Drop")[0]  # the same value as the run's is no conflict


def test_resume_of_a_finished_run_says_nothing_is_trained(trained, tmp_path, capsys):
    run = copy_run(trained, tmp_path / "run")
    rc, out, _ = run_cli(capsys, "train", "--out", str(run), "--resume")
    assert rc == 0 and "nothing to train" in out and "--epochs N with N > 1" in out
