"""Data parallel training (torchrun + DistributedDataParallel, gloo on CPU).

Two processes sharing each batch must take the same steps as one process on the whole batch:
the gradients after a step and the weights after several steps equal (up to float summation
order), also for a last batch that does not split evenly, under BPTT and reward propagation.
The command-line test runs the README's ``torchrun`` command.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch.utils.data import TensorDataset

from spikedyn.data import SpikeDataset, load_dataset
from spikedyn.distributed import DistContext
from spikedyn.train import TrainConfig, Trainer, load_checkpoint

WORLD = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def small_digits(n_train: int = 23, n_test: int = 11) -> SpikeDataset:
    ds = load_dataset("digits")
    (xtr, ytr), (xte, yte) = ds.train.tensors, ds.test.tensors
    return SpikeDataset("digits", TensorDataset(xtr[:n_train], ytr[:n_train]), TensorDataset(xte[:n_test], yte[:n_test]), 10)


def config(out: Path, **kw) -> TrainConfig:
    # batch 7 over 23 samples: batches 7, 7, 7, 2 -> shares 4+3 and 1+1
    values = dict(dataset="digits", neuron="2nd-fs", hidden=16, steps=5, epochs=1, batch_size=7, lr=1e-2,
                  out=str(out), progress=False, seed=11)
    values.update(kw)
    return TrainConfig(**values)


def frame_sequences(n: int = 14, frames: int = 9, features: int = 5, classes: int = 3) -> SpikeDataset:
    """Frame-labelled sequences of different lengths (padding labelled 0 and masked by the read-out)."""
    g = torch.Generator().manual_seed(5)
    lengths = torch.randint(3, frames + 1, (n,), generator=g)
    y = torch.randint(0, classes, (n, frames), generator=g)
    x = torch.rand(n, frames, features, generator=g) + y.unsqueeze(-1).float()
    for i in range(n):
        x[i, int(lengths[i]):], y[i, int(lengths[i]):] = 0.0, 0
    half = n // 2 + 1
    split = lambda a, b: TensorDataset(x[a:b], y[a:b], lengths[a:b])  # noqa: E731
    return SpikeDataset("frames", split(0, half), split(half, n), classes, kind="sequence", encoder="direct",
                        target="frame_class")


def _worker(rank: int, port: int, out: str, options: dict, data: SpikeDataset | None = None) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    import torch.distributed as dist

    trainer = Trainer(config(Path(out) / "run", **options), dataset=data if data is not None else small_digits())
    assert trainer.dist.world_size == WORLD and trainer.dist.rank == rank
    train = trainer.train_epoch(0)
    state = {
        "weights": {k: v.detach().clone() for k, v in trainer.model.state_dict().items()},
        "grads": {k: p.grad.detach().clone() for k, p in trainer.model.named_parameters() if p.grad is not None},
        "train": train,
    }
    torch.save(state, Path(out) / f"rank{rank}.pt")
    dist.barrier()  # no rank tears down its connections while another still uses them
    dist.destroy_process_group()


@pytest.mark.parametrize(
    "options",
    [dict(neuron="2nd-fs", rule="bptt"), dict(neuron="lif", rule="brp")],
    ids=["2nd-fs-bptt", "lif-brp"],
)
def test_two_processes_equal_one_process_on_the_combined_batch(tmp_path, options):
    mp.spawn(_worker, args=(free_port(), str(tmp_path), options), nprocs=WORLD, join=True)
    single = Trainer(config(tmp_path / "single", **options), dataset=small_digits())
    assert not single.dist.enabled
    train = single.train_epoch(0)
    grads = {k: p.grad for k, p in single.model.named_parameters() if p.grad is not None}
    for rank in range(WORLD):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        assert set(got["grads"]) == set(grads)
        for name, g in grads.items():  # the last step's gradient (the uneven 1 + 1 batch of 2)
            torch.testing.assert_close(got["grads"][name], g, rtol=1e-5, atol=1e-6, msg=f"grad {name}")
        for name, w in single.model.state_dict().items():  # after the 4 steps
            torch.testing.assert_close(got["weights"][name], w, rtol=1e-5, atol=1e-6, msg=f"weight {name}")
        # the epoch's metrics see the whole batches, as in one process
        assert got["train"]["accuracy"] == train["accuracy"]
        assert got["train"]["loss"] == pytest.approx(train["loss"], rel=1e-6)


def test_frame_labelled_recurrent_net_weights_each_share_by_its_valid_frames(tmp_path):
    """NRR on padded frame sequences under reward propagation: the masked per-step read-out loss is a
    mean over valid frames (each process's share weighted by its valid frames), the teaching signal a
    sum; the last batch of 1 leaves one process without a share.  The result equals one process."""
    options = dict(dataset="frames", model="nrr", model_options={"hidden": 12}, neuron=None, steps=9, rule="brp")
    data = frame_sequences()
    mp.spawn(_worker, args=(free_port(), str(tmp_path), options, data), nprocs=WORLD, join=True)
    single = Trainer(config(tmp_path / "single", **options), dataset=data)
    single.train_epoch(0)
    for rank in range(WORLD):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        for name, p in single.model.named_parameters():
            if p.grad is not None:
                torch.testing.assert_close(got["grads"][name], p.grad, rtol=1e-5, atol=1e-6, msg=f"grad {name}")
        for name, w in single.model.state_dict().items():
            torch.testing.assert_close(got["weights"][name], w, rtol=1e-5, atol=1e-6, msg=f"weight {name}")


def test_batch_shares_cover_the_batch_and_scale_the_loss():
    ctx = [DistContext(rank=r, world_size=3) for r in range(3)]
    assert ctx[0].bounds(10) == [(0, 4), (4, 7), (7, 10)]
    assert [c.share(2) for c in ctx] == [slice(0, 1), slice(1, 2), slice(2, 2)]
    # (1/N) sum_r scale_r * mean_r = mean over the batch: scale_r = n_r N / n
    assert [c.loss_scale(10) for c in ctx] == pytest.approx([4 * 3 / 10, 3 * 3 / 10, 3 * 3 / 10])
    assert sum(c.loss_scale(10) for c in ctx) == pytest.approx(3)


def test_torchrun_command_trains_like_one_process(tmp_path):
    """The README's `torchrun --nproc-per-node 2 -m spikedyn train ...` on the embedded digits set."""
    flags = ["--dataset", "digits", "--epochs", "2", "--hidden", "24", "--steps", "6", "--batch-size", "45",
             "--neuron", "lif", "--quiet", "--seed", "3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                "--master-port", str(free_port()), "-m", "spikedyn", "train"]
    ddp = subprocess.run(torchrun + flags + ["--out", str(tmp_path / "ddp")], capture_output=True, text=True,
                         env=env, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert ddp.stdout.count("training mdn network") == 1, "rank 0 alone prints the header"
    assert "x 2 processes" in ddp.stdout
    one = subprocess.run([sys.executable, "-m", "spikedyn", "train", *flags, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    model_ddp, _, ckpt_ddp = load_checkpoint(tmp_path / "ddp")
    model_one, _, ckpt_one = load_checkpoint(tmp_path / "one")
    assert ckpt_ddp["epoch"] == ckpt_one["epoch"] == 2
    for name, w in model_one.state_dict().items():
        torch.testing.assert_close(model_ddp.state_dict()[name], w, rtol=1e-4, atol=1e-5, msg=name)
    rows = [[json.loads(line) for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()] for d in ("ddp", "one")]
    assert [r["epoch"] for r in rows[0]] == [1, 2], "rank 0 alone writes metrics.jsonl"
    for a, b in zip(*rows):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["test_accuracy"] == pytest.approx(b["test_accuracy"], abs=1e-9)
