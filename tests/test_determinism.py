"""Same seed, same bits (issue #11, point 5).

Guards: CPU runs with the same seed, in a fresh interpreter and twice in the test process, end
with every model, optimizer and theta-history tensor bitwise equal and the same metrics; and
``spikedyn eval RUN`` prints, for every checkpoint of a run (a new run, then resumed twice),
exactly the test accuracy and loss the trainer recorded for that epoch, also from a fresh
process.  (``test_train.py`` covers an in-process resume against an uninterrupted run,
``test_kill_resume.py`` killed runs.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_runs import assert_same_run, finish, read_metrics, start_run, train_here

from spikedyn.cli import main


def test_same_seed_gives_bitwise_identical_runs(tmp_path: Path) -> None:
    """A fresh process (its own hash seed) and two runs one after the other in this process
    compute the same bits; another seed gives other weights (so the comparison can tell runs apart)."""
    child = start_run(tmp_path / "fresh", env={"PYTHONHASHSEED": "1"})
    train_here(tmp_path / "here")
    train_here(tmp_path / "here-again")
    rc, err = finish(child)
    assert rc == 0, err
    assert_same_run(tmp_path / "here", tmp_path / "fresh")
    assert_same_run(tmp_path / "here-again", tmp_path / "fresh")

    train_here(tmp_path / "other-seed", seed=12)
    with pytest.raises(AssertionError, match="model tensor"):
        assert_same_run(tmp_path / "other-seed", tmp_path / "fresh")


def eval_in_fresh_process(run: Path) -> dict:
    """``spikedyn eval RUN`` in a new interpreter with this process's thread count; its JSON."""
    code = "import sys; from spikedyn.cli import main; sys.exit(main(['eval', sys.argv[1]]))"
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    done = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_eval_prints_what_the_trainer_recorded_for_every_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The checkpoint of epoch k is scored with the randomness of epoch index k - 1, so eval
    reproduces metrics.jsonl's line k exactly (accuracy and loss), after a resume too, and again
    in a fresh process."""
    out = tmp_path / "run"
    flags = ["--hidden", "8", "--steps", "3", "--batch-size", "300", "--seed", "5", "--out", str(out), "--quiet"]
    for epochs in (1, 2, 3):
        resume = ["--resume"] if epochs > 1 else []
        assert main(["train", "--epochs", str(epochs), *flags, *resume]) == 0
        recorded = read_metrics(out)[-1]
        assert recorded["epoch"] == epochs
        capsys.readouterr()
        assert main(["eval", str(out)]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["epoch"] == epochs
        assert (printed["accuracy"], printed["loss"]) == (recorded["test_accuracy"], recorded["test_loss"])
    assert len({r["test_loss"] for r in read_metrics(out)}) == 3  # each checkpoint has its own numbers
    fresh = eval_in_fresh_process(out)
    assert (fresh["epoch"], fresh["accuracy"], fresh["loss"]) == (3, recorded["test_accuracy"], recorded["test_loss"])
