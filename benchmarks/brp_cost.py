"""Compute cost of one training step of BRP's spiking conv nets: BPTT against reward propagation.

The BRP paper (Table I) claims its rule is cheaper than surrogate-gradient backpropagation:
O(nK + (m+1)K) against O(nK + m(m+1)K) for K layers.  This script measures one training step,
forward + the rule's loss + backward + Adam, of the *same* network under each rule:

* ``bptt``  surrogate-gradient BPTT through all layers (taps transparent, read-out loss only)
* ``brp``   TP_BRP: every layer fed the *detached* spikes of the layer below, hidden layers
            trained by the label projected through their fixed ``B_l``, the output layer by the
            read-out loss (``err`` and ``sign``: the same with the error / its sign projected)
* ``inference``  the forward pass alone under ``torch.no_grad()`` (a floor, not a training step)

on two of the paper's Table II networks (``spikedyn.models.BRP_PRESETS``), batch 50, T as the
preset, with synthetic Bernoulli input spikes of the right shape (no data files):

* ``mnist``    CONV_32_5_1_2_FC_1000_FC_10 on 1x28x28 frames, T = 20
* ``fsdd-1d``  C_100_3_1_1_FC_1000_FC_10 on 1x30 vectors (the spoken-digit 1D net), T = 20

Reported per net and variant:

* time: interleaved repetitions in one process (after the warm-up, each round times every
  variant once, in rotating order), median and interquartile range;
* FLOPs of the matrix products and convolutions (``torch.utils.flop_counter.FlopCounterMode``;
  elementwise work such as the neuron recursion and Adam is not counted), forward and backward
  separately, and the backward by operator: this shows *where* the rules differ;
* activations saved for backward (``torch.autograd.graph.saved_tensors_hooks``: distinct
  storages packed during forward + loss, parameters and the input excluded);
* peak memory of one step above the memory held before it.  On CUDA:
  ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (exact tensor bytes).
  On the CPU torch keeps no allocator statistics, so each variant runs in a *fresh subprocess*:
  glibc is told to serve every block above 64 KiB by ``mmap`` (a fixed ``M_MMAP_THRESHOLD``
  also switches off glibc's adaptive threshold), so freed tensors leave the resident set at
  once; after two warm-up steps (Adam state and gradients exist) ``malloc_trim(0)``, then the
  kernel's resident-set high-water mark is reset (``/proc/self/clear_refs`` ``5``) and one step
  is run: peak = ``VmHWM`` after the step minus ``VmRSS`` before it (median of 3 such steps).
  This counts pages actually touched, i.e. tensor bytes plus allocator slack; where the reset
  is not available (not Linux) the column says so.  ``tracemalloc`` would miss torch's tensors.

    python benchmarks/brp_cost.py --rounds 10        # the results in results/brp_cost.{md,json}
    python benchmarks/brp_cost.py --quick            # smoke test: 2 rounds, nothing written
    python benchmarks/brp_cost.py --device cuda --out benchmarks/results/brp_cost_cuda
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling module bench_common
import bench_common as bench  # noqa: E402
from spikedyn.layers import spike_taps
from spikedyn.learning import make_rule
from spikedyn.losses import rate_mse
from spikedyn.models import BRP_PRESETS, BRPNet
from spikedyn.perf import SETTINGS, keep_freed_memory

NETS = ("mnist", "fsdd-1d")
RULES = ("bptt", "brp", "err", "sign")
DEFAULT_RULES = ("bptt", "brp")
LR = 1e-4  # the paper's Adam learning rate (eta_conv = eta_fc)


# ---------------------------------------------------------------------------------------------
# Workload
# ---------------------------------------------------------------------------------------------
def make_workload(
    net: str, batch: int, steps: int | None, input_rate: float, seed: int, device: torch.device,
    gain: float = 2.0,
):
    """The preset network, a pre-encoded input ``[T, B, *input_shape]`` and one-hot targets.

    The weights are PyTorch's default init (seeded) times ``gain``: with gain 1 the FC layers
    of the MNIST net never reach the threshold at 20 % input spikes, so the output layer would
    get no weight gradient; gain 2 makes every layer fire (rates printed and recorded).  The
    cost of the dense layers does not depend on the spikes.
    """
    preset = BRP_PRESETS[net]
    T = preset.steps if steps is None else steps
    torch.manual_seed(seed)
    model = BRPNet(net)
    with torch.no_grad():
        for block in model.blocks:
            layer = getattr(block, "conv", None) or block.fc
            layer.weight.mul_(gain)
            layer.bias.mul_(gain)
    model = model.to(device)
    g = torch.Generator().manual_seed(seed + 1)
    x = (torch.rand((T, batch, *preset.input_shape), generator=g) < input_rate).float().to(device)
    labels = torch.randint(0, model.classes, (batch,), generator=g)
    target = F.one_hot(labels, model.classes).float().to(device)
    return model, x, target


class Variant:
    """One rule on its own copy of the network, with its own Adam."""

    def __init__(self, name: str, base: nn.Module, x: torch.Tensor, target: torch.Tensor) -> None:
        self.name = name
        self.model = copy.deepcopy(base)
        self.x, self.target = x, target
        rule_name = "bptt" if name == "inference" else name
        self.rule = make_rule(rule_name)
        self.taps = self.rule.attach(self.model)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR)

    def loss(self) -> torch.Tensor:
        out = self.model(self.x)
        return self.rule(out, self.target, rate_mse, self.taps).total

    def step(self) -> None:
        if self.name == "inference":
            with torch.no_grad():
                self.model(self.x)
            return
        loss = self.loss()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_times(variants: dict[str, Variant], rounds: int, warmup: int, device: torch.device) -> dict[str, list[float]]:
    """Seconds per step; each round runs every variant once, the order rotating from round to round."""
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name].step()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            _sync(device)
            start = time.perf_counter()
            variants[name].step()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def summarise(times: dict[str, list[float]], reference: str = "bptt") -> dict[str, dict]:
    out: dict[str, dict] = {}
    for name, values in times.items():
        ms = sorted(1000 * v for v in values)
        q = statistics.quantiles(ms, n=4) if len(ms) >= 2 else [ms[0]] * 3
        out[name] = {"median_ms": statistics.median(ms), "q1_ms": q[0], "q3_ms": q[2], "n": len(ms),
                     "times_ms": [1000 * v for v in values]}
    ref = out.get(reference, {}).get("median_ms")
    for stats in out.values():
        stats["x_bptt"] = stats["median_ms"] / ref if ref else None
    return out


# ---------------------------------------------------------------------------------------------
# What the step does: FLOPs, saved activations, gradients, firing
# ---------------------------------------------------------------------------------------------
def _op_name(op) -> str:
    return str(op).replace("aten.", "").split(".")[0]


def count_flops(variant: Variant) -> dict:
    """FLOPs of matmuls/convolutions: forward (+ loss) and backward, the backward by operator."""
    from torch.utils.flop_counter import FlopCounterMode

    variant.model.zero_grad(set_to_none=True)
    with FlopCounterMode(display=False) as forward:
        if variant.name == "inference":
            with torch.no_grad():
                variant.model(variant.x)
        else:
            loss = variant.loss()
    result = {"forward_gflop": forward.get_total_flops() / 1e9, "backward_gflop": 0.0, "backward_by_op_gflop": {}}
    if variant.name != "inference":
        with FlopCounterMode(display=False) as backward:
            loss.backward()
        result["backward_gflop"] = backward.get_total_flops() / 1e9
        by_op: dict[str, float] = {}
        for op, flops in backward.get_flop_counts().get("Global", {}).items():
            by_op[_op_name(op)] = by_op.get(_op_name(op), 0.0) + flops / 1e9
        result["backward_by_op_gflop"] = by_op
        variant.model.zero_grad(set_to_none=True)
    return result


def saved_activation_bytes(variant: Variant) -> int:
    """Bytes of the distinct storages autograd saves for backward during forward + loss.

    Parameters and the input are excluded (they exist whatever the rule); 0 for inference.
    """
    if variant.name == "inference":
        return 0
    exclude = {p.untyped_storage().data_ptr() for p in variant.model.parameters()}
    exclude.add(variant.x.untyped_storage().data_ptr())
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in exclude and ptr != 0:
            seen[ptr] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = variant.loss()
    del loss
    return sum(seen.values())


def gradient_check(variant: Variant) -> dict[str, float]:
    """Gradient norm of every layer's weight after one backward (0 would mean a layer learns nothing)."""
    variant.model.zero_grad(set_to_none=True)
    variant.loss().backward()
    norms = {}
    for i, block in enumerate(variant.model.blocks):
        layer = getattr(block, "conv", None) or getattr(block, "fc")
        grad = layer.weight.grad
        norms[f"layer{i}"] = 0.0 if grad is None else float(grad.norm())
    variant.model.zero_grad(set_to_none=True)
    return norms


@torch.no_grad()
def firing(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    out = model(x)
    rates = {f"tap{i}": float(t.float().mean()) for i, t in enumerate(out.taps)}
    rates["output"] = float(out.spikes.float().mean())
    return rates


# ---------------------------------------------------------------------------------------------
# Peak memory of one step
# ---------------------------------------------------------------------------------------------
def probe_cpu_memory(args: argparse.Namespace) -> dict:
    """In a fresh process: peak resident memory of one step above the memory held before it (MiB)."""
    libc = bench.fresh_process_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    net, name = args.probe.split(":")
    base, x, target = make_workload(net, args.batch, args.steps, args.input_rate, args.seed, torch.device("cpu"), args.weight_gain)
    variant = Variant(name, base, x, target)
    del base
    return bench.peak_step_memory(variant.step, libc)


def cpu_memory(net: str, name: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--probe", f"{net}:{name}", "--batch", str(args.batch),
           "--input-rate", str(args.input_rate), "--seed", str(args.seed), "--weight-gain", str(args.weight_gain)]
    if args.steps is not None:
        cmd += ["--steps", str(args.steps)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory probe {net}:{name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cuda_memory(variant: Variant, device: torch.device) -> dict:
    for _ in range(2):
        variant.step()
    torch.cuda.synchronize(device)
    peaks = []
    for _ in range(3):
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        variant.step()
        torch.cuda.synchronize(device)
        peaks.append((torch.cuda.max_memory_allocated(device) - before) / 2**20)
    return {"peak_step_mib": statistics.median(peaks), "peaks_mib": peaks,
            "method": "torch.cuda.max_memory_allocated - memory_allocated before the step (median of 3)"}


# ---------------------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------------------


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{bench.cpu_model()} ({os.cpu_count()} logical CPUs)"


# ---------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict:
    allocator = "default"
    if args.allocator == "keep":
        allocator = f"keep: {SETTINGS}, " + (
            "applied" if keep_freed_memory() else "NOT applied (not glibc/Linux)")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rules = [r.strip() for r in args.rules.split(",") if r.strip()]
    unknown = set(rules) - set(RULES)
    if unknown or not rules:
        raise SystemExit(f"unknown rule(s) {sorted(unknown)}; choose from {', '.join(RULES)}")
    nets = [n.strip() for n in args.nets.split(",") if n.strip()]
    unknown = set(nets) - set(NETS)
    if unknown or not nets:
        raise SystemExit(f"unknown net(s) {sorted(unknown)}; choose from {', '.join(NETS)}")
    names = rules + ([] if args.no_inference else ["inference"])

    load_before = bench.loadavg()
    started = time.perf_counter()
    report_nets = {}
    for net in nets:
        base, x, target = make_workload(net, args.batch, args.steps, args.input_rate, args.seed, device, args.weight_gain)
        variants = {name: Variant(name, base, x, target) for name in names}
        preset = BRP_PRESETS[net]
        entry: dict = {
            "topology": base.topology, "input_shape": list(base.input_shape), "steps": x.shape[0], "batch": args.batch,
            "parameters": sum(p.numel() for p in base.parameters()),
            "tap_neurons": [tap.neurons for tap in spike_taps(base)],
            "firing_rates": firing(base, x),
        }
        entry["flops"] = {name: count_flops(v) for name, v in variants.items()}
        entry["saved_activations_mib"] = {name: saved_activation_bytes(v) / 2**20 for name, v in variants.items()}
        entry["grad_norms"] = {name: gradient_check(v) for name, v in variants.items() if name != "inference"}
        print(f"{net}: {base.topology}, T={x.shape[0]}, batch {args.batch}, firing {entry['firing_rates']}", flush=True)
        for name, f in entry["flops"].items():
            print(f"  {name:9s} forward {f['forward_gflop']:.2f} GFLOP, backward {f['backward_gflop']:.2f} GFLOP "
                  f"{ {k: round(v, 2) for k, v in f['backward_by_op_gflop'].items()} }, saved activations "
                  f"{entry['saved_activations_mib'][name]:.1f} MiB", flush=True)
        entry["time"] = summarise(interleaved_times(variants, args.rounds, args.warmup, device))
        for name, s in entry["time"].items():
            print(f"  {name:9s} {s['median_ms']:.1f} ms (IQR {s['q1_ms']:.1f}-{s['q3_ms']:.1f})", flush=True)
        if not args.no_memory:
            memory = {}
            for name in rules:
                if device.type == "cuda":
                    memory[name] = cuda_memory(Variant(name, base, x, target), device)
                else:
                    memory[name] = cpu_memory(net, name, args)
                print(f"  {name:9s} peak memory of one step {memory[name]['peak_step_mib']} MiB", flush=True)
            entry["memory"] = memory
        entry["preset_note"] = preset.data
        report_nets[net] = entry
        del variants, base, x, target
    try:
        from importlib.metadata import version

        spikedyn_version = version("spikedyn")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        spikedyn_version = None
    return {
        "workload": "one training step (forward + rule loss + backward + Adam) of BRP's Table II nets",
        "command": bench.command_line("brp_cost.py", args.argv, quote=False),
        "date": bench.utc_date(),
        "versions": {"torch": torch.__version__, "spikedyn": spikedyn_version},
        "python": platform.python_version(),
        "device": str(device),
        "device_name": device_name(device),
        "logical_cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "allocator": allocator,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "input_rate": args.input_rate,
        "weight_gain": args.weight_gain,
        "lr": LR,
        "seed": args.seed,
        "loadavg_before_after": [load_before, bench.loadavg()],
        "wall_seconds": round(time.perf_counter() - started, 1),
        "nets": report_nets,
    }


def markdown(report: dict) -> str:
    lines = [
        "# BRP vs BPTT: cost of one training step",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}; torch {report['versions']['torch']}; Python {report['python']}  ",
        f"Device: {report['device']} ({report['device_name']}); torch threads: {report['threads']}  ",
        f"Allocator (timing process): {report['allocator']}  ",
        f"{report['rounds']} interleaved rounds (rotating order) after {report['warmup']} warm-up rounds; "
        f"synthetic Bernoulli input spikes (rate {report['input_rate']}); default init x {report['weight_gain']}; "
        f"Adam lr {report['lr']}; "
        f"load average (1/5/15 min) before/after: {report['loadavg_before_after']}; "
        f"wall time {report['wall_seconds']} s",
        "",
    ]
    load = report["loadavg_before_after"]
    cpus = report.get("logical_cpus") or os.cpu_count() or 1
    if report["device"] == "cpu" and load and any(v and v[0] >= cpus for v in load):
        lines += [
            f"**The machine was busy** (1-minute load average {load[0][0] if load[0] else '?'} before and "
            f"{load[1][0] if load[1] else '?'} after, on {cpus} logical CPUs, from other jobs): the wall "
            "times are noisy, see the interquartile ranges.  The FLOP and memory columns do not depend "
            "on the load.",
            "",
        ]
    for net, e in report["nets"].items():
        lines += [
            f"## {net}: {e['topology']}, input {e['input_shape']}, T={e['steps']}, batch {e['batch']}",
            "",
            f"{e['parameters']:,} parameters; tapped hidden layers {e['tap_neurons']}; firing rates at init "
            + ", ".join(f"{k} {v:.3f}" for k, v in e["firing_rates"].items()),
            "",
            "| variant | median ms | IQR ms | x bptt | fwd GFLOP | bwd GFLOP | bwd by op (GFLOP) | saved activations MiB | peak step memory MiB |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, s in e["time"].items():
            f = e["flops"][name]
            by_op = ", ".join(f"{k} {v:.2f}" for k, v in sorted(f["backward_by_op_gflop"].items())) or "-"
            mem = e.get("memory", {}).get(name, {}).get("peak_step_mib")
            lines.append(
                f"| {name} | {s['median_ms']:.1f} | {s['q1_ms']:.1f}-{s['q3_ms']:.1f} | {bench.fmt(s['x_bptt'])} "
                f"| {f['forward_gflop']:.2f} | {f['backward_gflop']:.2f} | {by_op} "
                f"| {e['saved_activations_mib'][name]:.1f} | {bench.fmt(mem, '.1f')} |"
            )
        lines += ["", "Weight-gradient norms after one backward (every layer learns under every rule): "
                  + "; ".join(f"{name} " + ", ".join(f"{k} {v:.2e}" for k, v in g.items())
                              for name, g in e["grad_norms"].items()), ""]
    memory_methods = {m["method"] for e in report["nets"].values() for m in e.get("memory", {}).values()}
    if memory_methods:
        lines += [f"Peak memory: {'; '.join(sorted(memory_methods))}.", ""]
    lines += reading(report)
    return "\n".join(lines)


def reading(report: dict) -> list[str]:
    """What the numbers say about the paper's Table I claim (generated from the numbers above)."""
    lines = ["## Is BRP cheaper here?", ""]
    for net, e in report["nets"].items():
        t, f = e["time"], e["flops"]
        if "bptt" not in t or "brp" not in t:
            continue
        bp, br = t["bptt"], t["brp"]
        overlap = br["q3_ms"] >= bp["q1_ms"] and bp["q3_ms"] >= br["q1_ms"]
        step_bp = f["bptt"]["forward_gflop"] + f["bptt"]["backward_gflop"]
        step_br = f["brp"]["forward_gflop"] + f["brp"]["backward_gflop"]
        text = (
            f"* **{net}**: brp step {br['median_ms']:.1f} ms vs bptt {bp['median_ms']:.1f} ms "
            f"(x {br['median_ms'] / bp['median_ms']:.2f}; interquartile ranges "
            f"{'overlap, so the difference is within the noise of this machine' if overlap else 'do not overlap'}); "
            f"backward {f['brp']['backward_gflop']:.2f} vs {f['bptt']['backward_gflop']:.2f} GFLOP "
            f"(x {f['brp']['backward_gflop'] / f['bptt']['backward_gflop']:.2f}), whole step "
            f"{step_br:.2f} vs {step_bp:.2f} GFLOP (x {step_br / step_bp:.2f})"
        )
        mem = e.get("memory", {})
        if mem.get("bptt", {}).get("peak_step_mib") and mem.get("brp", {}).get("peak_step_mib"):
            text += f"; peak step memory {mem['brp']['peak_step_mib']:.1f} vs {mem['bptt']['peak_step_mib']:.1f} MiB"
        sa = e["saved_activations_mib"]
        text += f"; activations saved for backward {sa['brp']:.1f} vs {sa['bptt']:.1f} MiB."
        lines.append(text)
    peaks = [
        (e["memory"]["brp"]["peak_step_mib"], e["memory"]["bptt"]["peak_step_mib"])
        for e in report["nets"].values()
        if e.get("memory", {}).get("brp", {}).get("peak_step_mib") and e["memory"].get("bptt", {}).get("peak_step_mib")
    ]
    lower_peak = bool(peaks) and all(brp < 0.98 * bptt for brp, bptt in peaks)
    fewer = [net for net, e in report["nets"].items() if {"brp", "bptt"} <= set(e["saved_activations_mib"])
             and e["saved_activations_mib"]["brp"] < 0.98 * e["saved_activations_mib"]["bptt"]]
    not_fewer = [net for net, e in report["nets"].items() if {"brp", "bptt"} <= set(e["saved_activations_mib"])
                 and net not in fewer]
    kept = ""
    if fewer:
        kept += (f"BRP holds fewer activations for the backward on {', '.join(fewer)} (column `saved activations`): "
                 "operands that only the input gradients it skips would read.  ")
    if not_fewer:
        kept += (f"On {', '.join(not_fewer)} it holds as many or more: there the layers keep only what their own "
                 "backward through time needs, under both rules, and BRP adds its teaching signals.  ")
    if lower_peak:
        memory = (
            "The same detaching is why the step's peak memory is lower: BPTT forms the gradients with respect "
            "to every layer's input, which BRP does not need.  " + kept
        )
    elif peaks:
        memory = (
            "The step's peak memory is not lower under BRP here (the per-net lines above): the input gradients "
            "BRP skips are not what sets the peak, since both rules form a gradient of the same size for each "
            "hidden layer's spikes (BPTT through the layers above, BRP from its projected teaching signal) and "
            "run the same backward through each layer's membrane recursion.  " + kept
        )
    else:
        memory = kept
    lines += [
        "",
        "Why: under reward propagation every layer reads the *detached* spikes of the layer below, so "
        "autograd never asks for the gradient with respect to a layer's input.  Each conv/FC layer's "
        "backward then computes only its weight gradient (one product the size of the forward one) "
        "and skips its input gradient (another product of that size): the matrix work of the backward "
        "halves (column `bwd by op`: `mm` halves, `convolution_backward` is the same because the first "
        "layer's input is data, so its input gradient is skipped under both rules).  The teaching "
        "signal costs one `[B, C] x [C, N_l]` product per hidden layer (the few extra forward FLOPs).  "
        + memory
        + "What does *not* change: the forward pass, the weight gradients, the "
        "backward through each layer's own membrane recursion over the T steps (both rules run it, "
        "layer by layer) and Adam.",
        "",
        "So against the paper's Table I: in matrix FLOPs "
        + ("and in peak memory " if lower_peak else "")
        + "BRP is cheaper here, by a "
        "constant factor (the per-net lines above), bounded by one input-gradient product per layer "
        "above the first (at most a third of the matrix work of a step), not by a change of order: the "
        "backward of "
        "surrogate-gradient BPTT through K layers costs about twice their forward, linear in K (and "
        "in T), not the `m(m+1)K` of Table I.  Whether wall time follows the FLOPs depends on what "
        "dominates a step: the matrix products (the MNIST net's 6272 x 1000 FC layer) or the "
        "elementwise neuron recursion, Adam and fixed overheads, which the FLOP columns do not "
        "count (compare the `inference` row); the wall times of each run are in the per-net lines, "
        "with whether their interquartile ranges separate.",
        "",
    ]
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = bench.new_parser(__doc__)
    bench.add_round_options(parser, rounds=10, warmup=2)
    parser.add_argument("--nets", default=",".join(NETS), help=f"comma-separated subset of {','.join(NETS)}")
    parser.add_argument("--rules", default=",".join(DEFAULT_RULES),
                        help=f"comma-separated subset of {','.join(RULES)} (default {','.join(DEFAULT_RULES)})")
    parser.add_argument("--no-inference", action="store_true", help="leave out the forward-only floor")
    parser.add_argument("--batch", type=int, default=50, help="batch size (default 50, the paper's)")
    parser.add_argument("--steps", type=int, default=None, help="time steps T (default: the preset's, 20)")
    parser.add_argument("--input-rate", type=float, default=0.2, help="input spike probability (default 0.2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weight-gain", type=float, default=2.0,
                        help="default init times this, so that every layer fires (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i] (default cpu)")
    bench.add_threads_option(parser)
    parser.add_argument("--allocator", choices=["keep", "default"], default="keep",
                        help="timing process: keep (glibc keeps freed memory, as `spikedyn train`) or default")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--quick", action="store_true", help="2 rounds, 1 warm-up, no memory probes, nothing written")
    bench.add_out_option(parser, "brp_cost")
    parser.add_argument("--from-json", default=None, metavar="JSON",
                        help="rewrite the .md of an earlier results JSON (its numbers, the current text) and exit")
    parser.add_argument("--probe", default=None, help=argparse.SUPPRESS)  # internal: NET:VARIANT memory probe
    args = bench.parse(parser, argv)
    if args.quick:
        args.rounds, args.warmup, args.no_memory = 2, 1, True
    if args.rounds < 1 or args.warmup < 0 or args.batch < 1:
        parser.error("--rounds and --batch must be >= 1, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.probe:
        result = probe_cpu_memory(args)
        print(json.dumps(result))
        return result
    if args.from_json:
        source = Path(args.from_json)
        report = json.loads(source.read_text())
        source.with_suffix(".md").write_text(markdown(report))
        print(f"wrote {source.with_suffix('.md')}")
        return report
    return bench.run_and_write(args, run, markdown)


if __name__ == "__main__":
    main()
