"""Numbers no run can use: a one-paragraph error (exit 2, no traceback), from the CLI and the API."""

import pytest
from bad_input_helpers import assert_user_error, run_cli

from spikedyn.train import TrainConfig

CASES = [  # (flag, value, TrainConfig field)
    ("--batch-size", "0", "batch_size"),
    ("--batch-size", "-5", "batch_size"),
    ("--steps", "0", "steps"),
    ("--epochs", "-1", "epochs"),
    ("--lr", "-1", "lr"),
    ("--lr-dynamics", "-1", "lr_dynamics"),
    ("--hidden", "0", "hidden"),
    ("--alpha", "0", "alpha"),
    ("--alpha", "-0.5", "alpha"),
    ("--eval-batch-size", "0", "eval_batch_size"),
    ("--checkpoint-minutes", "-1", "checkpoint_minutes"),
    ("--checkpoint-minutes", "inf", "checkpoint_minutes"),
]


@pytest.mark.parametrize("flag, value, field", CASES)
def test_cli_refuses_the_value_before_training(tmp_path, capsys, flag, value, field):
    rc, _, err = run_cli(capsys, "train", flag, value, "--out", str(tmp_path / "run"), "--quiet")
    assert_user_error(rc, err, flag, field, value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag, value, field", CASES)
def test_python_api_gets_the_same_check(flag, value, field):
    with pytest.raises(ValueError, match=f"{field} \\({flag}\\)"):
        TrainConfig(**{field: float(value) if "lr" in field or field in ("alpha", "checkpoint_minutes") else int(value)}).resolved()


def test_zero_epochs_is_an_error_saying_nothing_would_be_trained(tmp_path, capsys):
    rc, _, err = run_cli(capsys, "train", "--epochs", "0", "--out", str(tmp_path / "run"), "--quiet")
    assert_user_error(rc, err, "nothing would be trained", "--epochs N with N >= 1", "spikedyn eval")


def test_zero_dynamics_learning_rate_is_allowed():
    assert TrainConfig(lr_dynamics=0.0).resolved().lr_dynamics == 0.0
