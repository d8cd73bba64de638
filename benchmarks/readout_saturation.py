"""Why an MDN three-layer run stays at chance: its read-out's activity and input current on test samples.

For a run directory (`spikedyn train`, model `mdn`) it reports, on the first ``--samples`` test samples
encoded as the trainer's evaluation after the run's last epoch encodes them:

* the firing rates of the hidden and the output layer (share of neuron-steps with a spike),
* the read-out's weight and bias means,
* the read-out neurons' input current ``z = W_2 h_t + b_2`` (mean and maximum over neuron-steps) and the
  slope of the neurons' sigmoid input function at its maximum, ``sigmoid'(max z) = s (1 - s)``,
* the largest gradient of the run's loss (its read-out and loss, surrogate-gradient BPTT) on those samples with
  respect to ``W_2`` and to ``W_1``.

An output layer that never fires and whose largest current sits where that slope is about 0 passes no
gradient to any weight: the run cannot leave chance (see the MDN section of benchmarks/README.md).

    python benchmarks/readout_saturation.py RUN --data-root DATA [--samples 100] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import Tensor, nn


def readout_stats(model: nn.Module, x: Tensor) -> dict[str, float]:
    """The read-out's activity and input current on one input batch ``x`` ``[T, B, ...]`` (an MDN net)."""
    model.eval()
    with torch.no_grad():
        out = model(x)
        hidden = out.taps[0].float()
        current = nn.functional.linear(hidden, model.fc2.weight, model.fc2.bias)
        top = torch.sigmoid(current.max())
        return {
            "hidden_rate": float(hidden.mean()),
            "output_rate": float(out.spikes.float().mean()),
            "output_spikes": float(out.spikes.float().sum()),
            "weight_mean": float(model.fc2.weight.mean()),
            "bias_mean": float(model.fc2.bias.mean()),
            "current_mean": float(current.mean()),
            "current_max": float(current.max()),
            "sigmoid_slope_at_max": float(top * (1 - top)),
        }


def largest_gradients(model: nn.Module, x: Tensor, y: Tensor, dataset, loss: str) -> dict[str, float]:
    """``max |dL/dW|`` of the read-out (``fc2``) and the hidden weights (``fc1``) for the loss ``loss`` of the
    model's read-out on one batch (the trainer's loss under ``--rule bptt``)."""
    from spikedyn.readout import readout_of

    readout = readout_of(model)
    model.train()
    model.zero_grad(set_to_none=True)
    out = model(x)
    target = readout.target(y, dataset, out.rate.dtype, out.spikes.shape[0])
    readout.loss_fn(loss, target)(out.spikes, target.values).backward()
    grads = {"readout_grad_max": float(model.fc2.weight.grad.abs().max()),
             "hidden_grad_max": float(model.fc1.weight.grad.abs().max())}
    model.zero_grad(set_to_none=True)
    model.eval()
    return grads


def main(argv: list[str] | None = None) -> dict:
    from spikedyn.analysis.runs import load_run
    from spikedyn.batching import Batcher, epoch_generator

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="run directory (or its checkpoint.pt) of an mdn net")
    parser.add_argument("--data-root", default=None, help="data root (default: the run's own)")
    parser.add_argument("--samples", type=int, default=100, help="test samples to read (default 100)")
    parser.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error(f"--samples must be at least 1, got {args.samples}")
    run = load_run(args.run, args.data_root, "cpu", batch_size=args.samples)
    if not all(hasattr(run.model, name) for name in ("fc1", "fc2", "neuron2")):
        parser.error(f"{args.run} holds a {run.network} net; this script reads MDN's three-layer net (model mdn)")
    generator = epoch_generator(run.config.seed, max(run.epoch - 1, 0), purpose=1)  # the trainer's last evaluation
    x, y = next(iter(Batcher(run.dataset, run.config, run.device).batches("test", args.samples, generator, shuffle=False)))
    stats = {"run": str(args.run), "epoch": run.epoch, "samples": int(x.shape[1]), **readout_stats(run.model, x),
             **largest_gradients(run.model, x, y, run.dataset, run.config.loss)}
    for key, value in stats.items():
        print(f"{key:22s} {value:.6g}" if isinstance(value, float) else f"{key:22s} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(stats, indent=2) + "\n")
    return stats


if __name__ == "__main__":
    main()
