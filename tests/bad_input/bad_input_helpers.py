"""Shared bits of the bad-input tests: tiny training flags, a trained run, the file writers."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))  # the real-format writers

from writers import write_idx, write_nmnist_bin, write_wav  # noqa: E402

from spikedyn.cli import main  # noqa: E402

#: the smallest useful run on the embedded digits set (1437 train / 360 test samples).
TINY = ["--epochs", "1", "--hidden", "8", "--steps", "2", "--batch-size", "300", "--quiet"]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``spikedyn ARGV`` -> (exit status, stdout, stderr)."""
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def assert_user_error(rc: int, err: str, *words: str) -> None:
    """Exit 2 with one ``spikedyn: error: ...`` message holding ``words``, and no traceback."""
    assert rc == 2, err
    assert err.startswith("spikedyn: error: ") and "Traceback" not in err, err
    for word in words:
        assert word in err, (word, err)


def copy_run(trained: Path, dest: Path) -> Path:
    """A private copy of a trained run directory (tests damage or extend it)."""
    return Path(shutil.copytree(trained, dest))



def train_tiny(out: Path, *extra: str) -> Path:
    """Train the tiny run into ``out`` (in process); returns ``out``."""
    assert main(["train", *TINY, "--out", str(out), *extra]) == 0
    return out


__all__ = ["TINY", "train_tiny", "run_cli", "assert_user_error", "copy_run", "write_idx", "write_nmnist_bin", "write_wav"]
