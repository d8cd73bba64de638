"""Speed of one training step and one inference pass: 784-500-10 LIF network, T=20, batch 100.

Variants, all timed in ONE process on the same CPU with interleaved repetitions (after the
warm-up, each round times every variant once, in a rotating or shuffled order), on the same
pre-encoded Bernoulli input ``[20, 100, 784]`` (encoding is not timed) and with identical
initial Linear weights:

* ``spikedyn``            MDNNet, neuron ``lif-identity`` (decay-with-reset-flag LIF, identity input):
                          ``V_t = 0.2 V_{t-1} (1 - S_{t-1}) + I_t``, ``S_t = H(V_t - 0.5)``,
                          RectWindow(0.5) surrogate, reset flag differentiated; fused fast path
* ``spikedyn-sigmoid``    the same with MDN's sigmoid input current (neuron ``lif``)
* ``spikedyn-reference``  ``lif-identity`` on the per-step autograd reference path (``fast=False``)
* ``spikedyn-loops``      ``spikedyn`` with its fused node's time loops in PyTorch operations
                          (``SPIKEDYN_KERNELS=torch``) instead of the compiled CPU loops
* ``snntorch``            ``snn.Leaky(beta=0.2, threshold=0.5, reset_mechanism="zero")`` with a
                          rectangular surrogate (``custom_surrogate``, half-width 0.5, height 1), in
                          snnTorch's idiomatic per-step loop (Linear and neuron called every step)
* ``spikingjelly``        multi-step ``neuron.LIFNode(tau=1.25, decay_input=False, v_threshold=0.5,
                          v_reset=0, detach_reset=False, step_mode="m")`` -- charge
                          ``H = V - V/1.25 + X = 0.2 V + X`` -- between ``layer.SeqToANNContainer(nn.Linear)``
                          layers, ``functional.reset_net`` before each forward; surrogate
                          ``PiecewiseQuadratic(alpha=2)`` (triangle of half-width 0.5, area 1), a built-in
                          surrogate, so SpikingJelly dispatches to its registered CPU operator (whole
                          sequence, hand-written backward)
* ``spikingjelly-rect``   the same with ``surrogate.Rect(alpha=1)`` (the exact rectangle of ours); Rect is
                          not one of SpikingJelly's kernel surrogates, so it runs SJ's per-step torch
                          reference implementation (autograd through every step)
* ``floor``               the same Linear layers with no neuron, batched over T*B (rate = mean over T)
* ``spikedyn-bf16``, ``floor-bf16``  ``spikedyn`` / ``floor`` with the forward under bfloat16 autocast
                          (``spikedyn train --precision bf16``); not in the default list

A training step = forward + rate-MSE against one-hot labels + backward + Adam step.
An inference pass = forward under ``torch.no_grad()``.

    python benchmarks/speed_mlp.py --allocator keep       # the results in results/speed_mlp.*
    python benchmarks/speed_mlp.py --quick                # smoke test: 3 rounds, nothing written

``--allocator keep`` calls glibc ``mallopt`` at start (``spikedyn.perf.keep_freed_memory``:
M_MMAP_THRESHOLD = 32 MiB, M_MMAP_MAX = 0, M_TRIM_THRESHOLD = 2**31-1, the largest value ``mallopt``'s int
accepts) so freed memory stays in the process.  It is process-wide, i.e. it applies to every
variant alike, as in the measurements of the other libraries in PERF-NOTES.md (which used the
environment variables ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``; those are
recorded too when set).  ``--allocator default`` (the default) leaves malloc as it is.

snnTorch and SpikingJelly are optional: when one is not importable its variants are skipped
with a printed note.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling module bench_common
import bench_common as bench  # noqa: E402
from spikedyn import kernels as spikedyn_kernels
from spikedyn.models import MDNNet
from spikedyn.neurons import DecayLIF
from spikedyn.precision import autocast

INPUTS, HIDDEN, CLASSES = 784, 500, 10
FLOORS = ("floor", "floor-bf16")  # variants without neurons (their outputs are currents, not spikes)
WEIGHT_GAIN = 4.0  # PyTorch's default Linear init scaled up so that both layers spike (see share_weights)

ALL_VARIANTS = (
    "spikedyn",
    "spikedyn-sigmoid",
    "spikedyn-reference",
    "spikedyn-loops",
    "snntorch",
    "spikingjelly",
    "spikingjelly-rect",
    "floor",
)


# ---------------------------------------------------------------------------------------
# The networks. Every model maps [T, B, 784] -> output spikes (floor: output currents)
# [T, B, 10]; with ``keep_hidden = True`` it also leaves the hidden layer's output in ``hidden``.
# ---------------------------------------------------------------------------------------
class SpikedynNet(nn.Module):
    def __init__(self, neuron: str = "lif-identity", fast: bool = True, detach_reset: bool = False,
                 kernels: str = "auto") -> None:
        super().__init__()
        self.kernels = kernels  # spikedyn.kernels back end of the fused paths ("torch": the PyTorch loops)
        self.net = MDNNet(INPUTS, HIDDEN, CLASSES, neuron=neuron, fast=fast)
        if detach_reset:  # only for the fidelity check against snnTorch (whose reset is detached)
            input_fn = "sigmoid" if neuron == "lif" else "identity"
            self.net.neuron1 = DecayLIF(input_fn=input_fn, fast=fast, detach_reset=True)
            self.net.neuron2 = DecayLIF(input_fn=input_fn, fast=fast, detach_reset=True)
        self.keep_hidden = False
        self.hidden = None

    def forward(self, x):
        with spikedyn_kernels.backend(self.kernels):
            out = self.net(x)
        if self.keep_hidden:
            self.hidden = out.taps[0]
        return out.spikes


class Autocast(nn.Module):
    """``inner`` with its forward under bfloat16 autocast, as ``spikedyn train --precision bf16`` runs it
    (products in bfloat16 with float32 accumulation, neurons and parameters in float32)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    @property
    def keep_hidden(self):
        return self.inner.keep_hidden

    @keep_hidden.setter
    def keep_hidden(self, value):
        self.inner.keep_hidden = value

    @property
    def hidden(self):
        return self.inner.hidden

    def forward(self, x):
        with autocast("bf16", x.device):
            return self.inner(x).float()


class Floor(nn.Module):
    """The synapses alone, folded over T*B: the cost any SNN of this shape must pay."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(INPUTS, HIDDEN)
        self.fc2 = nn.Linear(HIDDEN, CLASSES)
        self.keep_hidden = False
        self.hidden = None

    def forward(self, x):
        T, B = x.shape[:2]
        h = self.fc1(x.reshape(T * B, -1))
        if self.keep_hidden:
            self.hidden = h.reshape(T, B, -1)
        return self.fc2(h).reshape(T, B, -1)


def make_snntorch() -> nn.Module:
    import snntorch as snn
    from snntorch import surrogate

    def rect(input_, grad_input, spikes):  # dS/dU = 1 for |U - U_th| < 0.5 (ours: RectWindow(0.5, 1))
        return grad_input * (input_.abs() < 0.5).to(grad_input.dtype)

    spike_grad = surrogate.custom_surrogate(rect)

    class SnnTorchNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(INPUTS, HIDDEN)
            self.lif1 = snn.Leaky(beta=0.2, threshold=0.5, reset_mechanism="zero", spike_grad=spike_grad)
            self.fc2 = nn.Linear(HIDDEN, CLASSES)
            self.lif2 = snn.Leaky(beta=0.2, threshold=0.5, reset_mechanism="zero", spike_grad=spike_grad)
            self.keep_hidden = False
            self.hidden = None

        def forward(self, x):  # the snnTorch tutorials' loop
            mem1 = self.lif1.init_leaky()
            mem2 = self.lif2.init_leaky()
            spk2_rec, spk1_rec = [], []
            for x_t in x:
                spk1, mem1 = self.lif1(self.fc1(x_t), mem1)
                spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
                spk2_rec.append(spk2)
                if self.keep_hidden:
                    spk1_rec.append(spk1)
            if self.keep_hidden:
                self.hidden = torch.stack(spk1_rec)
            return torch.stack(spk2_rec)

    return SnnTorchNet()


def make_spikingjelly(rect: bool) -> nn.Module:
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    def lif():
        sg = surrogate.Rect(alpha=1.0) if rect else surrogate.PiecewiseQuadratic(alpha=2.0)
        return neuron.LIFNode(
            tau=1.25, decay_input=False, v_threshold=0.5, v_reset=0.0,
            surrogate_function=sg, detach_reset=False, step_mode="m",
        )

    class SJNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(
                layer.SeqToANNContainer(nn.Linear(INPUTS, HIDDEN)),
                lif(),
                layer.SeqToANNContainer(nn.Linear(HIDDEN, CLASSES)),
                lif(),
            )
            self.keep_hidden = False
            self.hidden = None

        def forward(self, x):
            functional.reset_net(self.net)
            if not self.keep_hidden:
                return self.net(x)
            self.hidden = self.net[1](self.net[0](x))
            return self.net[3](self.net[2](self.hidden))

    return SJNet()


BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "spikedyn": lambda: SpikedynNet("lif-identity"),
    "spikedyn-sigmoid": lambda: SpikedynNet("lif"),
    "spikedyn-reference": lambda: SpikedynNet("lif-identity", fast=False),
    "spikedyn-loops": lambda: SpikedynNet("lif-identity", kernels="torch"),
    # the other neuron families on the same network (not in the default list)
    "spikedyn-plif": lambda: SpikedynNet("plif"),
    "spikedyn-2nd-fs": lambda: SpikedynNet("2nd-fs"),
    "spikedyn-mdn": lambda: SpikedynNet("mdn"),
    "snntorch": make_snntorch,
    "spikingjelly": lambda: make_spikingjelly(rect=False),
    "spikingjelly-rect": lambda: make_spikingjelly(rect=True),
    "floor": Floor,
    # mixed precision (--precision bf16; not in the default list): pays on CPUs with bfloat16 matrix units
    "spikedyn-bf16": lambda: Autocast(SpikedynNet("lif-identity")),
    "floor-bf16": lambda: Autocast(Floor()),
}


def share_weights(models: list[nn.Module], gain: float = WEIGHT_GAIN) -> None:
    """Give every model the same two Linear layers (PyTorch's default init times ``gain``).

    With the default init (gain 1) and 20 % input spikes the hidden layer barely reaches the
    0.5 threshold; gain 4 gives a hidden rate of ~0.2 and an output rate of ~0.4, so every
    variant's neurons fire and its surrogate gradients are non-zero.
    """
    torch.manual_seed(1)
    reference = [nn.Linear(INPUTS, HIDDEN), nn.Linear(HIDDEN, CLASSES)]
    with torch.no_grad():
        for model in models:
            linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
            assert len(linears) == 2, f"expected 2 Linear layers, found {len(linears)}"
            for mine, ref in zip(linears, reference):
                mine.weight.copy_(ref.weight * gain)
                mine.bias.copy_(ref.bias * gain)


# ---------------------------------------------------------------------------------------
# Sanity / fidelity: shapes, firing rates, and how closely each network matches spikedyn's
# ---------------------------------------------------------------------------------------
def _forward_backward(model: nn.Module, x: torch.Tensor, target: torch.Tensor):
    model.zero_grad(set_to_none=True)
    model.keep_hidden = True
    try:
        out = model(x)
    finally:
        model.keep_hidden = False
    F.mse_loss(out.mean(0), target).backward()
    fc1 = [m for m in model.modules() if isinstance(m, nn.Linear)][0]
    grad = fc1.weight.grad.detach().clone()
    model.zero_grad(set_to_none=True)
    return out.detach(), model.hidden.detach(), grad


def fidelity(variants: dict[str, nn.Module], x: torch.Tensor, target: torch.Tensor) -> dict[str, dict]:
    """Per variant: output shape, hidden/output firing rate, agreement with spikedyn's spikes and
    relative difference of the fc1 weight gradient from spikedyn's (reset flag differentiated)
    and from spikedyn with a detached reset flag (what snnTorch does)."""
    refs = {"ours": SpikedynNet("lif-identity"), "ours_detached": SpikedynNet("lif-identity", detach_reset=True)}
    share_weights(list(refs.values()))
    ref_out, _, ref_grad = _forward_backward(refs["ours"], x, target)
    _, _, ref_grad_det = _forward_backward(refs["ours_detached"], x, target)
    report = {}
    for name, model in variants.items():
        out, hidden, grad = _forward_backward(model, x, target)
        entry = {"output_shape": list(out.shape)}
        if name in FLOORS:
            entry["note"] = "no neurons: output currents, not spikes"
        else:
            entry.update(
                hidden_rate=float(hidden.mean()),
                output_rate=float(out.mean()),
                output_spikes_equal_to_spikedyn=float((out == ref_out).float().mean()),
                grad_fc1_rel_diff_vs_spikedyn=bench.rel_diff(grad, ref_grad),
                grad_fc1_rel_diff_vs_spikedyn_detached_reset=bench.rel_diff(grad, ref_grad_det),
            )
            if entry["hidden_rate"] == 0.0 or entry["output_rate"] == 0.0:
                print(f"WARNING: {name} does not spike (hidden {entry['hidden_rate']}, output {entry['output_rate']})")
        report[name] = entry
        assert tuple(out.shape) == (x.shape[0], x.shape[1], CLASSES), (name, out.shape)
    return report


# ---------------------------------------------------------------------------------------
# Timing (the training step: bench.train_step_fn, rate-MSE, Adam lr 1e-3)
# ---------------------------------------------------------------------------------------
def inference_fn(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def infer() -> None:
        with torch.no_grad():
            model(x)

    return infer


# ---------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict:
    allocator, names = bench.prepare(args, BUILDERS, reference=("spikedyn-reference", "spikingjelly-rect"))
    x, target = bench.random_input(args, (INPUTS,), CLASSES)
    variants = bench.build_variants(names, BUILDERS)
    share_weights(list(variants.values()))

    fid = fidelity(variants, x, target)
    for name, e in fid.items():
        if name in FLOORS:
            print(f"sanity: {name:19s} output {tuple(e['output_shape'])} ({e['note']})")
        else:
            print(
                f"sanity: {name:19s} output {tuple(e['output_shape'])}, rate hidden {e['hidden_rate']:.3f} "
                f"output {e['output_rate']:.3f}; spikes = spikedyn's: {100 * e['output_spikes_equal_to_spikedyn']:.2f} %; "
                f"fc1 grad rel. diff vs spikedyn {e['grad_fc1_rel_diff_vs_spikedyn']:.2e}, "
                f"vs spikedyn detached reset {e['grad_fc1_rel_diff_vs_spikedyn_detached_reset']:.2e}"
            )

    load_before = bench.loadavg()
    results = {}
    for mode in ("train", "inference"):
        fns = {
            name: (bench.train_step_fn(m, x, target) if mode == "train" else inference_fn(m, x))
            for name, m in variants.items()
        }
        results[mode] = bench.time_variants(fns, args, ours="spikedyn")
    workload = f"{INPUTS}-{HIDDEN}-{CLASSES} LIF, T={args.steps}, batch {args.batch}, input rate {args.input_rate}"
    return {
        **bench.conditions(args, "speed_mlp.py", workload=workload, allocator=allocator,
                           versions=bench.library_versions(), load_before=load_before, quote=False),
        "fidelity": fid,
        "results": results,
    }


def markdown(report: dict) -> str:
    lines = bench.speed_header(report)
    for mode, title in (
        ("train", "Training step (forward + rate-MSE + backward + Adam)"),
        ("inference", "Inference pass (forward, no_grad)"),
    ):
        lines += [f"## {title}", "", *bench.timing_table(report["results"][mode], ours="spikedyn"), ""]
    lines += [
        "## Sanity: same work, same weights",
        "",
        "Before timing, on the same input and identical initial weights. Gradient columns: relative L2 "
        "difference of dL/d(fc1.weight) from spikedyn's (reset flag differentiated) and from spikedyn "
        "with a detached reset flag.",
        "",
        "| variant | hidden rate | output rate | output spikes = spikedyn's | grad diff vs spikedyn | vs detached reset |",
        "|---|---|---|---|---|---|",
    ]
    for name, e in report["fidelity"].items():
        if name in FLOORS:
            continue
        lines.append(
            f"| {name} | {e['hidden_rate']:.3f} | {e['output_rate']:.3f} | {100 * e['output_spikes_equal_to_spikedyn']:.2f} % "
            f"| {e['grad_fc1_rel_diff_vs_spikedyn']:.1e} | {e['grad_fc1_rel_diff_vs_spikedyn_detached_reset']:.1e} |"
        )
    lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return bench.speed_args(
        argv, __doc__, name="speed_mlp", warmup=5, batch=100, steps=20, input_rate=0.2, allocator="default",
        variants=ALL_VARIANTS, choices=ALL_VARIANTS, note=False,
        no_reference_help="skip the slow per-step reference paths (spikedyn-reference, spikingjelly-rect)",
    )


def main(argv: list[str] | None = None) -> dict:
    return bench.run_and_write(parse_args(argv), run, markdown)


if __name__ == "__main__":
    main()
