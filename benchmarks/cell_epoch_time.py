"""Time a reproduce cell's training step in the real training loop, and plan its epochs for a time budget.

A table cell (e.g. ``plif-table4``'s MNIST PLIF cell) is built exactly as ``spikedyn reproduce`` builds it:
the same data, model, learning rule, optimizer, augmentation and device.  The script trains
``--warmup`` batches (kernel compiling, allocator warm-up), then times ``--batches`` more and one pass
over the test split, and prints the seconds of one epoch::

    epoch_seconds = seconds_per_batch * batches_per_epoch + test_seconds

With ``--budget SECONDS`` it also prints, on its last line, how many whole epochs fit the budget
(at least 1), which a launcher can use as both ``--epochs`` and the cosine period, so that the
learning rate reaches the end of its schedule within the time at hand.  Nothing is written to the
cell's run folder (the run goes to a scratch folder that is removed).

    python benchmarks/cell_epoch_time.py plif-table4 --task mnist-tau2 --neuron plif --data-root DATA \\
        --device cuda --budget 600
"""

from __future__ import annotations

import argparse
import itertools
import math
import tempfile
import time

import torch

from spikedyn.reproduce import build_plan, get_table
from spikedyn.train import TrainConfig, Trainer, evaluate


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def add_cell_arguments(ap: argparse.ArgumentParser) -> None:
    """The options that name a reproduce cell and where it runs (shared with ``gpu_graph_probe.py``)."""
    ap.add_argument("table", help="reproduce table, e.g. plif-table4")
    ap.add_argument("--task", required=True, help="the row, as `spikedyn reproduce --tasks` names it")
    ap.add_argument("--neuron", required=True, help="the cell's neuron kind")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="training options, as reproduce --set")


def cell_trainer(args: argparse.Namespace, scratch: str) -> Trainer:
    """The cell's :class:`~spikedyn.train.Trainer`, built as ``spikedyn reproduce`` builds it, writing to
    ``scratch`` (nothing goes to the cell's own run folder)."""
    from spikedyn.cli.options import parse_data_options

    plan = build_plan(
        get_table(args.table), out_root=scratch, seeds=1, epochs=1, lr_step=1, tasks=[args.task],
        neurons=[args.neuron], data_root=args.data_root, overrides=parse_data_options(args.set),
    )
    cells = [c for row in plan.rows if row.status == "ok" for c in row.cells]
    if not cells:
        raise SystemExit(f"{args.table} {args.task}: no runnable cell (is the data under --data-root?)")
    return Trainer(TrainConfig(**plan.config_for(cells[0], device=args.device)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_cell_arguments(ap)
    ap.add_argument("--warmup", type=int, default=50, help="batches before timing (default 50)")
    ap.add_argument("--batches", type=int, default=300, help="timed batches (default 300)")
    ap.add_argument("--budget", type=float, default=None, help="seconds at hand: print how many epochs fit")
    args = ap.parse_args()

    scratch_dir = tempfile.TemporaryDirectory()
    with scratch_dir:
        trainer = cell_trainer(args, scratch_dir.name)
        device = trainer.device
        batches_per_epoch = trainer.batcher.num_batches("train", trainer.config.batch_size)
        full = trainer.batcher.batches

        def limited(count: int):
            def batches(*a, **k):
                return itertools.islice(full(*a, **k), count)
            return batches

        trainer.batcher.batches = limited(args.warmup)
        trainer.train_epoch(0)
        sync(device)
        trainer.batcher.batches = limited(args.batches)
        start = time.perf_counter()
        trainer.train_epoch(0)
        sync(device)
        per_batch = (time.perf_counter() - start) / args.batches
        trainer.batcher.batches = full
        start = time.perf_counter()
        evaluate(trainer.model, trainer.batcher, trainer.config, "test", 0, trainer.dist)
        sync(device)
        test_seconds = time.perf_counter() - start
    epoch_seconds = per_batch * batches_per_epoch + test_seconds
    print(f"{args.table} {args.task} {args.neuron} on {device}: {1e3 * per_batch:.2f} ms a batch "
          f"(batch {trainer.config.batch_size}, {batches_per_epoch} batches an epoch), test pass {test_seconds:.1f} s, "
          f"about {epoch_seconds:.1f} s an epoch")
    if args.budget is not None:
        print(max(1, math.floor(args.budget / epoch_seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
