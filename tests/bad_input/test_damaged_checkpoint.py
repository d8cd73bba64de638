"""A truncated checkpoint.pt: name the file, point at metrics.jsonl, say what to do (eval and --resume)."""

import pytest
from bad_input_helpers import assert_user_error, copy_run, run_cli, train_tiny

from spikedyn.runfiles import CheckpointError
from spikedyn.train import load_checkpoint


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("trained") / "run")


@pytest.fixture
def damaged(trained, tmp_path):
    run = copy_run(trained, tmp_path / "run")
    checkpoint = run / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:-300])  # cut short, as by a full disk or a killed copy
    return run


def test_eval_of_a_truncated_checkpoint(damaged, capsys):
    rc, _, err = run_cli(capsys, "eval", str(damaged))
    assert_user_error(rc, err, str(damaged / "checkpoint.pt"), "is damaged", "metrics.jsonl", "1 finished epoch", "delete")


def test_resume_from_a_truncated_checkpoint(damaged, capsys):
    rc, _, err = run_cli(capsys, "train", "--out", str(damaged), "--resume", "--epochs", "2", "--quiet")
    assert_user_error(rc, err, str(damaged / "checkpoint.pt"), "is damaged", "metrics.jsonl", "without --resume")


def test_python_api_raises_checkpoint_error_a_value_error(damaged):
    with pytest.raises(CheckpointError, match="is damaged") as info:
        load_checkpoint(damaged)
    assert isinstance(info.value, ValueError)


def test_a_file_that_is_no_checkpoint(tmp_path, capsys):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint at all")
    rc, _, err = run_cli(capsys, "eval", str(tmp_path))
    assert_user_error(rc, err, "is damaged", "no metrics.jsonl")
