"""Shared pieces of the reproduce tests: a tiny table and fake run folders."""

from __future__ import annotations

import json
from pathlib import Path

from spikedyn.reproduce import CheckSpec, RowSpec, TableSpec

TINY = "test-tiny"
# tiny networks so that one epoch on the embedded digits set takes well under a second
TINY_OPTIONS = {"hidden": 8, "steps": 3, "batch_size": 100}


def tiny_table() -> TableSpec:
    return TableSpec(
        name=TINY,
        title="Tiny test table",
        source="made up for the tests (not a paper)",
        neurons=("2nd-fs", "lif"),
        rows=(
            RowSpec("Digits", "digits", {"2nd-fs": (90.0, 1.0), "lif": (80.0, None)}, train_options=TINY_OPTIONS,
                    kind="spatial", paper_samples="1,437 / 360"),
            RowSpec("MNIST", "mnist", {"2nd-fs": (98.67, 0.05), "lif": (98.69, 0.03)}, kind="spatial"),
        ),
        checks=(CheckSpec("FS >= LIF on Digits", ("Digits",), ("2nd-fs",), ("lif",), strict=False),),
    )


def fake_cell(
    run_dir: Path, accuracies: list[float], config: dict, checkpoint: bool = True, seconds: list[float] | None = None,
) -> Path:
    """A run folder as the trainer leaves it: config.json, one metrics record per epoch (``seconds``: each
    epoch's wall time, default 1 s), a checkpoint."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config))
    seconds = [1.0] * len(accuracies) if seconds is None else seconds
    with open(run_dir / "metrics.jsonl", "w") as fh:
        for i, (acc, secs) in enumerate(zip(accuracies, seconds, strict=True)):
            fh.write(json.dumps({"epoch": i + 1, "test_accuracy": acc, "seconds": secs}) + "\n")
    if checkpoint:
        (run_dir / "checkpoint.pt").write_bytes(b"not a real checkpoint")
    return run_dir


def mnist_config(neuron: str, seed: int, epochs: int = 20, lr_step: int = 15) -> dict:
    """The config.json of `spikedyn train --dataset mnist --epochs 20 --lr-step 15` runs."""
    return {
        "dataset": "mnist", "data_root": "data", "data_options": {}, "neuron": neuron, "hidden": 500, "steps": 20,
        "epochs": epochs, "batch_size": 100, "lr": 0.001, "lr_dynamics": 0.001, "schedule": "step",
        "lr_step": lr_step, "lr_gamma": 0.1, "loss": "rate-mse", "encoder": None, "seed": seed, "progress": False,
    }
