"""Experiment: how much of a cell's small-batch GPU training step is host work that a CUDA graph removes.

At batch 16 the PLIF MNIST cell's step on an H100 takes about 12.8 ms, the same alone on the card as with four
runs beside it: the host launching work, not the card (``results/plif_training.md``).  This script measures,
on the cell built as ``spikedyn reproduce`` builds it (``cell_epoch_time.cell_trainer``), in one process:

* ``batches``  making the batches alone (the order, the augmentation, the encoder);
* ``eager``    the training step (forward, the rule's loss, backward, Adam) on batches made beforehand;
* ``graphed``  the same step with the network's forward and backward replayed from CUDA graphs
               (``torch.cuda.make_graphed_callables``), the loss and Adam's step outside them.

It also checks that the graphed step trains: the read-out loss over the graphed steps falls like the eager
one's.  The neuron layers' membrane checks (a copy to the host per layer and call) are switched off for both,
as they cannot run inside a graph.  This is an experiment toward a graphed training loop, not a part of the
trainer; without a CUDA device it times the eager step only.

    python benchmarks/gpu_graph_probe.py plif-table4 --task mnist-tau2 --neuron plif --data-root DATA --device cuda
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cell_epoch_time import add_cell_arguments, cell_trainer  # noqa: E402

from spikedyn.models.mdn import NetOutput  # noqa: E402
from spikedyn.batching import epoch_generator  # noqa: E402


class TensorOutputs(nn.Module):
    """The model with its :class:`NetOutput` as a flat tuple of tensors, which is what a graphed callable returns."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(x)
        return (out.rate, out.spikes, *out.taps)


def as_net_output(outputs: tuple[torch.Tensor, ...]) -> NetOutput:
    return NetOutput(rate=outputs[0], spikes=outputs[1], taps=list(outputs[2:]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_cell_arguments(ap)
    ap.add_argument("--batches", type=int, default=200, help="timed batches per variant (default 200)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        trainer = cell_trainer(args, scratch)
        device, cfg = trainer.device, trainer.config
        cuda = device.type == "cuda"
        for layer in trainer.model.modules():  # the membrane checks read back to the host: off for both variants
            if hasattr(layer, "watch_state"):
                layer._state_warned = True
        generator = epoch_generator(cfg.seed, 0)
        count = args.batches + 20

        def sync() -> None:
            if cuda:
                torch.cuda.synchronize(device)

        sync()
        start = time.perf_counter()
        batches = []
        for x, y in trainer.batcher.batches("train", cfg.batch_size, generator, shuffle=True):
            batches.append((x, y))
            if len(batches) == count:
                break
        sync()
        make_ms = 1e3 * (time.perf_counter() - start) / len(batches)
        batches = [(x, y) for x, y in batches if len(y) == cfg.batch_size]

        def step(forward, x, y) -> torch.Tensor:
            out = forward(x)
            target = trainer.readout.target(y, trainer.dataset, out.rate.dtype, out.spikes.shape[0])
            result = trainer.rule(out, target.values, trainer.readout.loss_fn(cfg.loss, target), trainer.taps,
                                  target.mask)
            trainer.optimizer.zero_grad(set_to_none=True)
            result.total.backward()
            trainer.optimizer.step()
            return result.parts["readout"].detach()

        def timed(forward, label: str) -> tuple[float, list[float]]:
            losses = [step(forward, x, y) for x, y in batches[:10]]  # warm-up (kernels compiled, memory pooled)
            sync()
            start = time.perf_counter()
            losses += [step(forward, x, y) for x, y in batches[10 : 10 + args.batches]]
            sync()
            ms = 1e3 * (time.perf_counter() - start) / args.batches
            values = [float(v) for v in losses]
            print(f"{label:8s} {ms:7.2f} ms a batch; read-out loss, first 10 / last 10 batches: "
                  f"{sum(values[:10]) / 10:.5f} / {sum(values[-10:]) / 10:.5f}", flush=True)
            return ms, values

        eager_ms, _ = timed(lambda x: trainer.model(x), "eager")
        if not cuda:
            print(f"no CUDA device ({device}): the graphed variant needs one; eager only")
            return 0
        x0 = batches[0][0]
        graphed = torch.cuda.make_graphed_callables(TensorOutputs(trainer.model), (x0,))
        graphed_ms, _ = timed(lambda x: as_net_output(graphed(x)), "graphed")
    per_epoch = trainer.batcher.num_batches("train", cfg.batch_size)
    print(f"making a batch {make_ms:.2f} ms; an epoch of {per_epoch} batches: eager about "
          f"{(make_ms + eager_ms) * per_epoch / 1e3:.0f} s, graphed about {(make_ms + graphed_ms) * per_epoch / 1e3:.0f} s "
          f"({torch.cuda.get_device_name(device)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
