"""Speed of one training step of a PLIF conv net: 2 x (32-channel conv 3x3 + BN + PLIF + max-pool), FC 128, FC 10.

The network (T=8, batch 32, per-step input ``[1, 28, 28]``), every variant with the same layers
and initial weights, timed in ONE process with interleaved repetitions as in ``speed_mlp.py``::

    Conv2d(1 -> 32, 3x3, pad 1, no bias) -> BN -> PLIF -> MaxPool2
    Conv2d(32 -> 32, 3x3, pad 1, no bias) -> BN -> PLIF -> MaxPool2
    Flatten (32 x 7 x 7) -> Linear(1568 -> 128, no bias) -> PLIF -> Linear(128 -> 10, no bias) -> PLIF

PLIF: ``H_t = V_{t-1} + k (X_t - V_{t-1})``, ``k = sigmoid(a) = 1/tau`` (one learnable ``a`` per
layer, tau 2 at start), ``S_t = [H_t >= 1]``, hard reset to 0 (detached), ATan(2) surrogate.
A training step is forward + MSE between the output's firing rate and the one-hot label +
backward + Adam (lr 1e-3), on one fixed pre-encoded Bernoulli input ``[8, 32, 1, 28, 28]``
(rate 0.3; encoding is not timed).

* ``spikedyn-plif``            :class:`~spikedyn.models.PLIFNet` (``channels=32, n_conv=1, n_down=2,
                               fc=(128,), dropout=0, voting=1``): synapses folded over ``T*B``, fused
                               PLIF layers, batch norm with each step's statistics (the PLIF code's)
* ``spikedyn-plif-reference``  the same on the per-step autograd reference path (``fast=False``)
* ``spikingjelly``             SpikingJelly's multi-step net of the same layers:
                               ``layer.SeqToANNContainer(Conv2d, BatchNorm2d)`` (batch norm over all
                               ``T*B`` samples, SpikingJelly's idiom), ``neuron.ParametricLIFNode(init_tau=2,
                               detach_reset=True, surrogate ATan(2), step_mode="m")``, ``functional.reset_net``
                               before every forward
* ``floor``                    the same synapses and batch norms (over ``T*B``) and max-pools, no neuron,
                               computed once over the folded sequence; its pools are spikedyn's
                               (:class:`~spikedyn.layers.WindowMaxPool2d`, as in ``spikedyn-plif``), so that
                               "x floor" is what the neurons add

    python benchmarks/speed_conv.py                 # writes results/speed_conv.{json,md}
    python benchmarks/speed_conv.py --quick         # 3 rounds, nothing written

SpikingJelly is optional: when it is not importable its variant is skipped with a printed note.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling module bench_common
import bench_common as bench  # noqa: E402
from spikedyn import kernels as spikedyn_kernels  # noqa: E402
from spikedyn.layers import WindowMaxPool2d  # noqa: E402
from spikedyn.models import PLIFNet  # noqa: E402

SHAPE, CHANNELS, HIDDEN, CLASSES = (1, 28, 28), 32, 128, 10
#: PyTorch's default init scaled per layer (conv1, conv2, fc1, fc2) so that every spiking layer fires
WEIGHT_GAINS = (2.0, 2.0, 12.0, 6.0)
OURS = "spikedyn-plif"
ALL_VARIANTS = ("spikedyn-plif", "spikedyn-plif-loops", "spikedyn-plif-reference", "spikingjelly", "floor")

NEURONS = {
    "spikedyn-plif": "PLIF (fused whole-window node per layer), per-step batch-norm statistics",
    "spikedyn-plif-loops": "spikedyn-plif with its fused node's time loops in PyTorch operations (`SPIKEDYN_KERNELS=torch`) "
                           "instead of the compiled CPU loops",
    "spikedyn-plif-reference": "PLIF on the per-step autograd reference path, per-step batch-norm statistics",
    "spikingjelly": "ParametricLIFNode(init_tau=2, decay_input=True, v_threshold=1, v_reset=0, detach_reset=True, "
                    "ATan(2)), multi-step; batch norm over T*B",
    "floor": "no neuron; batch norm over T*B",
    "spikedyn-lif": "decay-LIF (identity input, reset flag differentiated) in place of PLIF, fused",
    "spikedyn-lif-tau": "fixed-tau LIF (tau 2) in place of PLIF, fused",
    "spikedyn-2nd-fs": "MDN 2nd-FS meta neuron (frozen theta, sigmoid input) in place of PLIF, fused",
    "spikedyn-mdn": "MDN 2nd-order neuron with learnable per-neuron theta in place of PLIF, fused",
}


# ---------------------------------------------------------------------------------------
# The networks: [T, B, 1, 28, 28] -> output [T, B, 10]; ``weights()`` lists conv1, conv2, fc1, fc2.
# ---------------------------------------------------------------------------------------
class SpikedynPLIF(nn.Module):
    def __init__(self, fast: bool = True, neuron: str = "plif", kernels: str = "auto") -> None:
        super().__init__()
        self.kernels = kernels  # spikedyn.kernels back end of the fused paths ("torch": the PyTorch loops)
        self.net = PLIFNet(SHAPE, CLASSES, channels=CHANNELS, n_conv=1, n_down=2, fc=(HIDDEN,), dropout=0.0,
                           voting=1, static=False, fast=fast, neuron=neuron)
        self.hidden = None

    def weights(self):
        layers = self.net.layers
        return [layers["conv1"].conv, layers["conv2"].conv, layers["fc1"].fc, layers["fc2"].fc]

    def forward(self, x):
        with spikedyn_kernels.backend(self.kernels):
            out = self.net(x)
        self.hidden = out.taps
        return out.spikes


class Floor(nn.Module):
    """The synapses, batch norms and pools alone, folded over T*B."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(SHAPE[0], CHANNELS, 3, padding=1, bias=False), nn.BatchNorm2d(CHANNELS), WindowMaxPool2d(2),
            nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1, bias=False), nn.BatchNorm2d(CHANNELS), WindowMaxPool2d(2),
            nn.Flatten(), nn.Linear(CHANNELS * 7 * 7, HIDDEN, bias=False), nn.Linear(HIDDEN, CLASSES, bias=False),
        )
        self.hidden = None

    def weights(self):
        return [m for m in self.features if isinstance(m, (nn.Conv2d, nn.Linear))]

    def forward(self, x):
        T, B = x.shape[:2]
        return self.features(x.reshape(T * B, *x.shape[2:])).reshape(T, B, -1)


def make_spikingjelly() -> nn.Module:
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    def plif():
        return neuron.ParametricLIFNode(
            init_tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0, detach_reset=True,
            surrogate_function=surrogate.ATan(alpha=2.0), step_mode="m",
        )

    class SJNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(
                layer.SeqToANNContainer(nn.Conv2d(SHAPE[0], CHANNELS, 3, padding=1, bias=False), nn.BatchNorm2d(CHANNELS)),
                plif(),
                layer.SeqToANNContainer(nn.MaxPool2d(2)),
                layer.SeqToANNContainer(nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1, bias=False), nn.BatchNorm2d(CHANNELS)),
                plif(),
                layer.SeqToANNContainer(nn.MaxPool2d(2)),
                layer.SeqToANNContainer(nn.Flatten(), nn.Linear(CHANNELS * 7 * 7, HIDDEN, bias=False)),
                plif(),
                layer.SeqToANNContainer(nn.Linear(HIDDEN, CLASSES, bias=False)),
                plif(),
            )
            self.hidden = None

        def weights(self):
            return [m for m in self.net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]

        def forward(self, x):
            functional.reset_net(self.net)
            record, out = [], x
            for module in self.net:
                out = module(out)
                if isinstance(module, neuron.ParametricLIFNode):
                    record.append(out)
            self.hidden = record[:-1]
            return out

    return SJNet()


BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "spikedyn-plif": SpikedynPLIF,
    "spikedyn-plif-reference": lambda: SpikedynPLIF(fast=False),
    "spikedyn-plif-loops": lambda: SpikedynPLIF(kernels="torch"),
    # the other neuron families in the same net (issue #10's CPU conv targets; not in the default list)
    "spikedyn-lif": lambda: SpikedynPLIF(neuron="lif-identity"),
    "spikedyn-lif-tau": lambda: SpikedynPLIF(neuron="lif-tau"),
    "spikedyn-2nd-fs": lambda: SpikedynPLIF(neuron="2nd-fs"),
    "spikedyn-mdn": lambda: SpikedynPLIF(neuron="mdn"),
    "spikingjelly": make_spikingjelly,
    "floor": Floor,
}


def share_weights(models: dict[str, nn.Module], gains=WEIGHT_GAINS) -> None:
    """The same conv and FC weights (PyTorch's default init times the layer's gain) in every model."""
    torch.manual_seed(1)
    reference = Floor().weights()
    with torch.no_grad():
        for model in models.values():
            mine = model.weights()
            assert len(mine) == len(reference), (type(model).__name__, len(mine))
            for m, r, gain in zip(mine, reference, gains):
                m.weight.copy_(r.weight * gain)


# ---------------------------------------------------------------------------------------
# Sanity, and the run (the loss: bench.rate_mse_loss; the training step: bench.train_step_fn, Adam lr 1e-3)
# ---------------------------------------------------------------------------------------
def sanity(variants: dict[str, nn.Module], x: torch.Tensor, target: torch.Tensor) -> dict[str, dict]:
    """Per variant: output shape, firing rate of every spiking layer and, for spikedyn's fast path, the
    agreement of its output spikes and gradients with the reference path."""
    ref = SpikedynPLIF(fast=False)
    share_weights({"ref": ref})
    ref.zero_grad(set_to_none=True)
    bench.rate_mse_loss(ref, x, target).backward()
    ref_out = ref(x).detach()
    ref_grads = {n: p.grad.clone() for n, p in ref.named_parameters()}
    report = {}
    for name, model in variants.items():
        model.zero_grad(set_to_none=True)
        bench.rate_mse_loss(model, x, target).backward()
        out = model(x).detach()
        entry: dict = {"output_shape": list(out.shape)}
        assert entry["output_shape"] == [x.shape[0], x.shape[1], CLASSES], (name, out.shape)
        if name != "floor":
            entry["rates"] = [round(float(h.detach().float().mean()), 4) for h in model.hidden] + [
                round(float(out.float().mean()), 4)]
            if min(entry["rates"]) == 0.0:
                print(f"WARNING: a layer of {name} does not spike: {entry['rates']}")
        if name == OURS:
            entry["output_equal_to_reference"] = float((out == ref_out).float().mean())
            entry["grad_max_rel_diff_vs_reference"] = bench.max_rel_grad_diff(model, ref_grads)
        model.zero_grad(set_to_none=True)
        report[name] = entry
    return report


def run(args: argparse.Namespace) -> dict:
    allocator, names = bench.prepare(args, BUILDERS, reference=("spikedyn-plif-reference",))
    x, target = bench.random_input(args, SHAPE, CLASSES)
    variants = bench.build_variants(names, BUILDERS)
    share_weights(variants)
    checks = sanity(variants, x, target)
    for name, e in checks.items():
        line = f"sanity: {name:24s} output {tuple(e['output_shape'])}"
        if "rates" in e:
            line += f", firing rates per layer {e['rates']}"
        if "output_equal_to_reference" in e:
            line += (f"; output = reference path's: {100 * e['output_equal_to_reference']:.2f} %, "
                     f"max rel. grad diff {e['grad_max_rel_diff_vs_reference']:.1e}")
        print(line)
    load_before = bench.loadavg()
    fns = {name: bench.train_step_fn(m, x, target) for name, m in variants.items()}
    results = bench.time_variants(fns, args, ours=OURS)
    workload = (f"PLIF conv net 2x(32c3-BN-PLIF-mp2)-fc{HIDDEN}-fc{CLASSES} on {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]}, "
                f"T={args.steps}, batch {args.batch}, input rate {args.input_rate}")
    return {
        **bench.conditions(args, "speed_conv.py", workload=workload, allocator=allocator,
                           versions=bench.library_versions(("spikingjelly",)), load_before=load_before),
        "neurons": {name: NEURONS[name] for name in variants},
        "sanity": checks,
        "results": {"train": results},
    }


def markdown(report: dict) -> str:
    lines = [
        *bench.speed_header(report),
        "## Training step (forward + rate-MSE + backward + Adam)",
        "",
        *bench.timing_table(report["results"]["train"], ours=OURS),
    ]
    lines += ["", "| variant | neurons |", "|---|---|",
              *(f"| {name} | {text} |" for name, text in report["neurons"].items()), ""]
    lines += [
        "## Sanity: same shapes, same weights, layers that fire",
        "",
        "Firing rate of each spiking layer (conv1, conv2, fc1, output) on the benchmark's input; for spikedyn's "
        "fast path, the fraction of output spikes equal to the reference path's and the largest relative L2 "
        "difference of any parameter gradient from it.",
        "",
        "| variant | output shape | firing rates | output = reference | max grad diff vs reference |",
        "|---|---|---|---|---|",
    ]
    for name, e in report["sanity"].items():
        rates = ", ".join(f"{r:.3f}" for r in e["rates"]) if "rates" in e else "-"
        same = f"{100 * e['output_equal_to_reference']:.2f} %" if "output_equal_to_reference" in e else "-"
        diff = f"{e['grad_max_rel_diff_vs_reference']:.1e}" if "grad_max_rel_diff_vs_reference" in e else "-"
        lines.append(f"| {name} | {e['output_shape']} | {rates} | {same} | {diff} |")
    lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return bench.speed_args(
        argv, __doc__, name="speed_conv", warmup=3, batch=32, steps=8, input_rate=0.3, allocator="keep",
        variants=ALL_VARIANTS, choices=BUILDERS, no_reference_help="skip spikedyn's per-step reference path",
    )


def main(argv: list[str] | None = None) -> dict:
    return bench.run_and_write(parse_args(argv), run, markdown)


if __name__ == "__main__":
    main()
