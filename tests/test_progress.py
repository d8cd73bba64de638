"""Progress bars draw only on a terminal: piped output gets one line per epoch, no redraws."""

import os
import subprocess
import sys

from spikedyn.progress import bar_disabled


def test_bar_is_off_when_asked_and_left_to_the_terminal_check_otherwise():
    assert bar_disabled(False) is True
    assert bar_disabled(True) is None  # tqdm: disabled when the stream is not a terminal


def test_training_piped_to_a_file_has_no_progress_bar_redraws(tmp_path):
    cmd = [sys.executable, "-m", "spikedyn", "train", "--dataset", "digits", "--epochs", "2", "--hidden", "8",
           "--steps", "3", "--out", str(tmp_path / "run")]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr
    text = done.stdout + done.stderr
    assert "\r" not in text and "it/s" not in text, "no tqdm redraws in a log file"
    epoch_lines = [line for line in done.stdout.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == 2 and "test" in epoch_lines[-1]
