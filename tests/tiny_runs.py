"""Tiny training runs in fresh processes, for the kill/resume and determinism tests.

A run here is three epochs of a 16-12-4 MDN net (learnable theta, so ``theta_history.pt`` is
written too) on a synthetic in-memory data set of 100 + 40 samples: a fraction of a second of
training.  :func:`start_run` trains one in a child process (``python tiny_runs.py SPEC``) with
one CPU thread, optionally stopping it at a chosen point (:func:`plant_kill`); the in-process
runs of the tests use :func:`one_thread` so that they compute exactly what the children do.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from spikedyn.data import SpikeDataset
from spikedyn.runfiles import read_checkpoint
from spikedyn.train import TrainConfig, Trainer

TRAIN, TEST, FEATURES, CLASSES = 100, 40, 16, 4
BATCH = 20
BATCHES_PER_EPOCH = TRAIN // BATCH
EPOCHS = 3


def tiny_dataset() -> SpikeDataset:
    """The synthetic set: class ``c`` lights features ``4c .. 4c + 3`` more brightly (rates in [0, 1])."""
    gen = torch.Generator().manual_seed(2024)

    def split(n: int) -> TensorDataset:
        y = torch.arange(n) % CLASSES
        x = 0.3 * torch.rand(n, FEATURES, generator=gen)
        x[torch.arange(n)[:, None], 4 * y[:, None] + torch.arange(4)] += 0.6
        return TensorDataset(x, y)

    return SpikeDataset("tiny", split(TRAIN), split(TEST), CLASSES)


def tiny_config(out: Path, seed: int = 11, **settings) -> TrainConfig:
    """The run settings (Bernoulli rate encoding, so every epoch uses its seeded generator); ``settings``
    override fields (e.g. ``checkpoint_minutes``)."""
    return TrainConfig(**{
        "dataset": "tiny", "neuron": "mdn", "hidden": 12, "steps": 4, "epochs": EPOCHS, "batch_size": BATCH,
        "lr": 1e-2, "lr_dynamics": 1e-2, "eval_batch_size": BATCH, "seed": seed, "out": str(out), "progress": False,
        **settings,
    })


@contextmanager
def one_thread() -> Iterator[None]:
    """Compute with one CPU thread, as the child processes do (the thread count can change float sums)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_here(out: Path, resume: bool = False, seed: int = 11, **settings) -> Trainer:
    """Train (or resume) the tiny run in ``out`` in this process."""
    with one_thread():
        trainer = Trainer(tiny_config(out, seed, **settings), dataset=tiny_dataset())
        trainer.fit(resume=resume)
    return trainer


def start_run(out: Path, kill: dict | None = None, env: dict | None = None, settings: dict | None = None) -> subprocess.Popen:
    """Start the tiny run in ``out`` in a fresh Python process; ``kill`` as for :func:`plant_kill`,
    ``settings`` as for :func:`tiny_config`."""
    spec = json.dumps({"out": str(out), "kill": kill, "settings": settings or {}})
    child_env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), spec],
        env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    """Wait for a child run; (exit status, its stderr)."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"the child run did not end within {timeout} s: {err}") from None
    return proc.returncode, err


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until the child ``proc`` creates ``path`` (its readiness signal); fail if it ends first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            err = proc.stderr.read()
            raise AssertionError(f"the child run ended (status {proc.returncode}) before {path.name}: {err}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the child run did not reach {path.name} within {timeout} s")
        time.sleep(0.02)


def plant_kill(trainer: Trainer, kill: dict) -> None:
    """Make this (child) process stop at one point of its training:

    * ``{"at": "batch", "n": N, "ready": FILE}``: before the N-th training forward pass (counted
      over all epochs), create ``FILE`` and sleep, for the parent to ``SIGKILL`` the process;
    * ``{"at": "sigterm", "n": N}``: send itself ``SIGTERM`` before the N-th training forward pass;
    * ``{"at": "write", "file": NAME, "n": N}``: in the N-th ``torch.save`` aimed at ``NAME``
      (or a temporary file named after it), write half of the bytes, then ``SIGKILL`` itself;
    * ``{"at": "rename", "file": NAME, "n": N}``: ``SIGKILL`` itself just before the N-th rename onto ``NAME``.
    """
    count = 0

    def nth() -> bool:
        nonlocal count
        count += 1
        return count == kill["n"]

    if kill["at"] == "batch":
        def before_forward(module: torch.nn.Module, args: tuple) -> None:
            if module.training and nth():
                Path(kill["ready"]).touch()
                time.sleep(600)

        trainer.model.register_forward_pre_hook(before_forward)
    elif kill["at"] == "sigterm":
        def before_forward(module: torch.nn.Module, args: tuple) -> None:
            if module.training and nth():
                os.kill(os.getpid(), signal.SIGTERM)  # as a batch system's pre-emption would, mid-batch

        trainer.model.register_forward_pre_hook(before_forward)
    elif kill["at"] == "write":
        real_save = torch.save

        def half_save(obj: object, f, *args, **kwargs) -> None:
            if kill["file"] in Path(getattr(f, "name", f)).name and nth():
                buffer = io.BytesIO()
                real_save(obj, buffer, *args, **kwargs)
                half = buffer.getvalue()[: len(buffer.getvalue()) // 2]
                if hasattr(f, "write"):
                    f.write(half)
                    f.flush()
                else:
                    Path(f).write_bytes(half)
                os.kill(os.getpid(), signal.SIGKILL)
            return real_save(obj, f, *args, **kwargs)

        torch.save = half_save
    elif kill["at"] == "rename":
        real_replace = os.replace

        def replace(src, dst, *args, **kwargs) -> None:
            if Path(dst).name == kill["file"] and nth():
                os.kill(os.getpid(), signal.SIGKILL)
            return real_replace(src, dst, *args, **kwargs)

        os.replace = replace
    else:
        raise ValueError(f"unknown kill point {kill!r}")


def child_main(spec: str) -> None:
    """The child process: train the tiny run ``spec`` names (JSON: out, kill)."""
    settings = json.loads(spec)
    torch.set_num_threads(1)
    trainer = Trainer(tiny_config(Path(settings["out"]), **settings.get("settings", {})), dataset=tiny_dataset())
    if settings["kill"]:
        plant_kill(trainer, settings["kill"])
    trainer.fit()


def assert_same_run(run: Path, reference: Path) -> None:
    """``run`` ends exactly where ``reference`` does: every tensor of the model, optimizer and
    theta history bitwise equal (``torch.equal``), the same schedule, history and metrics.jsonl
    (wall-clock seconds aside)."""
    got, want = read_checkpoint(run / "checkpoint.pt"), read_checkpoint(reference / "checkpoint.pt")
    assert got["epoch"] == want["epoch"] == EPOCHS
    assert got["model"].keys() == want["model"].keys()
    for name, tensor in want["model"].items():
        assert torch.equal(got["model"][name], tensor), f"model tensor {name} differs"
    assert_equal_nested(got["optimizer"], want["optimizer"], "optimizer")
    assert got["scheduler"] == want["scheduler"]
    assert without_seconds(got["history"]) == without_seconds(want["history"])
    assert without_seconds(read_metrics(run)) == without_seconds(read_metrics(reference))
    got_theta = torch.load(run / "theta_history.pt", weights_only=False)
    want_theta = torch.load(reference / "theta_history.pt", weights_only=False)
    assert got_theta["epochs"] == want_theta["epochs"] == list(range(EPOCHS + 1))
    assert_equal_nested(got_theta["theta"], want_theta["theta"], "theta history")


def assert_equal_nested(got: object, want: object, where: str) -> None:
    """Nested dicts/lists equal, tensors bitwise (``torch.equal``)."""
    if isinstance(want, torch.Tensor):
        assert isinstance(got, torch.Tensor) and torch.equal(got, want), f"{where} differs"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), f"{where}: other keys"
        for key in want:
            assert_equal_nested(got[key], want[key], f"{where}[{key!r}]")
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want), f"{where}: other length"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_equal_nested(g, w, f"{where}[{i}]")
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def read_metrics(run: Path) -> list[dict]:
    """The records of ``metrics.jsonl`` (every line must be whole JSON)."""
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def without_seconds(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k not in ("seconds", "train_seconds")} for record in records]


if __name__ == "__main__":
    child_main(sys.argv[1])
