"""The README's set-up commands and CI stay in step."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    test_command = next(line for line in readme.splitlines() if "pytest" in line and line.startswith("python3 -m venv"))
    assert test_command in ci.splitlines()


def test_readme_main_job_is_spikedyn_train_without_arguments():
    readme = (REPO / "README.md").read_text()
    assert any(line.startswith("python3 -m venv") and line.endswith("spikedyn train") for line in readme.splitlines())


def run_python_blocks(path: Path) -> None:
    blocks = path.read_text().split("```python\n")[1:]
    assert blocks, f"{path.name} has Python examples"
    namespace: dict = {}
    for block in blocks:  # one namespace: later blocks build on earlier ones, as in a session
        exec(compile(block.split("```")[0], str(path), "exec"), namespace)


def test_readme_python_example_runs():
    run_python_blocks(REPO / "README.md")


def test_tutorial_runs_top_to_bottom(capsys):
    """Runs every block; section 3 asserts (not only prints) that the fused and the reference path
    give the same input gradient, so a fused backward that drifts from the reference fails here."""
    tutorial = REPO / "docs" / "tutorial.md"
    assert "torch.testing.assert_close(grads[True], grads[False])" in tutorial.read_text()
    run_python_blocks(tutorial)
    assert "test accuracy after 3 epochs" in capsys.readouterr().out


@pytest.mark.slow
def test_readme_demo_accuracy_is_what_the_main_job_gives(tmp_path):
    """The README's demo figure is the one the main job gives on the final code (slow: the full demo run)."""
    import os
    import re
    import subprocess
    import sys

    readme = (REPO / "README.md").read_text()
    stated = float(re.search(r"digits set \(\d+ s and ([\d.]+) % test accuracy", readme).group(1))
    # 2 threads, as the README's "2 CPU cores": the thread count changes float summation order
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-m", "spikedyn", "train", "--quiet", "--out", str(tmp_path / "demo")],
                          capture_output=True, text=True, timeout=1200, env=env)
    assert done.returncode == 0, done.stderr
    final = float(re.search(r"final test accuracy ([\d.]+)%", done.stdout).group(1))
    assert abs(final - stated) <= 0.2, f"README states {stated} %, the demo gives {final} %"
