"""Speed of one training step and one inference pass: 784-500-10 LIF network, T=20, batch 100.

Variants, all timed in ONE process on the same CPU with interleaved repetitions (each round
times every variant once, in a rotating order), on the same pre-encoded Bernoulli input
``[20, 100, 784]`` (encoding is not timed):

* ``spikedyn``            MDNNet with the decay-with-reset-flag LIF (identity input), fused fast path
* ``spikedyn-sigmoid``    the same with MDN's sigmoid input current (1st-order meta neuron)
* ``spikedyn-reference``  the same network on the per-step autograd reference path
* ``snntorch``            snnTorch ``Leaky(beta=0.2, threshold=0.5, reset_mechanism="zero")`` in its
                          idiomatic per-step loop (Linear and neuron called at every step)
* ``spikingjelly``        SpikingJelly multi-step ``LIFNode(tau=1.25, decay_input=False,
                          v_threshold=0.5, v_reset=0)`` (so ``H = 0.2 V + X``), ``layer.Linear``
                          in multi-step mode (folded over T*B), backend ``torch``
* ``floor``               the same Linear layers with no neuron, batched over T*B

A training step = forward + rate-MSE against one-hot labels + backward + Adam step.

    python benchmarks/speed_mlp.py --allocator keep      # the committed results
    python benchmarks/speed_mlp.py --quick               # smoke test

``--allocator keep`` makes glibc keep freed memory (``spikedyn.perf.keep_freed_memory``) for
the whole process, i.e. for every variant alike, as in the measurements of the other
libraries this project started from; ``default`` leaves malloc as it is.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from spikedyn.models import MDNNet
from spikedyn.perf import keep_freed_memory

RESULTS = Path(__file__).resolve().parent / "results"


def make_spikedyn(neuron: str, fast: bool = True) -> nn.Module:
    net = MDNNet(784, 500, 10, neuron=neuron, fast=fast)

    class Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x).spikes

    return Wrapped()


class Floor(nn.Module):
    """The synapses alone, folded over T*B: the cost any SNN of this shape must pay."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 500)
        self.fc2 = nn.Linear(500, 10)

    def forward(self, x):
        T, B = x.shape[:2]
        return self.fc2(self.fc1(x.reshape(T * B, -1))).reshape(T, B, -1)


def make_snntorch() -> nn.Module | None:
    try:
        import snntorch as snn
    except ImportError:
        return None

    class SnnTorchNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(784, 500)
            self.lif1 = snn.Leaky(beta=0.2, threshold=0.5, reset_mechanism="zero")
            self.fc2 = nn.Linear(500, 10)
            self.lif2 = snn.Leaky(beta=0.2, threshold=0.5, reset_mechanism="zero")

        def forward(self, x):
            mem1 = self.lif1.init_leaky()
            mem2 = self.lif2.init_leaky()
            out = []
            for x_t in x:
                spk1, mem1 = self.lif1(self.fc1(x_t), mem1)
                spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
                out.append(spk2)
            return torch.stack(out)

    return SnnTorchNet()


def make_spikingjelly() -> nn.Module | None:
    try:
        from spikingjelly.activation_based import functional, layer, neuron, surrogate
    except ImportError:
        return None

    def lif():
        return neuron.LIFNode(
            tau=1.25, decay_input=False, v_threshold=0.5, v_reset=0.0,
            surrogate_function=surrogate.Rect(), detach_reset=False, step_mode="m",
        )

    net = nn.Sequential(layer.Linear(784, 500, step_mode="m"), lif(), layer.Linear(500, 10, step_mode="m"), lif())
    functional.set_step_mode(net, "m")

    class SJNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x):
            functional.reset_net(self.net)
            return self.net(x)

    return SJNet()


def build_variants(include_reference: bool) -> dict[str, nn.Module]:
    variants: dict[str, nn.Module] = {
        "spikedyn": make_spikedyn("lif-identity"),
        "spikedyn-sigmoid": make_spikedyn("lif"),
    }
    if include_reference:
        variants["spikedyn-reference"] = make_spikedyn("lif-identity", fast=False)
    for name, maker in (("snntorch", make_snntorch), ("spikingjelly", make_spikingjelly)):
        model = maker()
        if model is None:
            print(f"note: {name} is not installed; skipped")
        else:
            variants[name] = model
    variants["floor"] = Floor()
    return variants


def share_weights(variants: dict[str, nn.Module], gain: float) -> None:
    """Give every variant the same Linear weights (PyTorch's default init scaled by ``gain``)."""
    torch.manual_seed(1)
    reference = [nn.Linear(784, 500), nn.Linear(500, 10)]
    with torch.no_grad():
        for model in variants.values():
            linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
            assert len(linears) == 2, f"expected 2 Linear layers, found {len(linears)}"
            for mine, ref in zip(linears, reference):
                mine.weight.copy_(ref.weight * gain)
                mine.bias.copy_(ref.bias * gain)


def train_step_fn(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Callable[[], None]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        rate = model(x).mean(0)
        loss = F.mse_loss(rate, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def inference_fn(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def infer() -> None:
        with torch.no_grad():
            model(x)

    return infer


def interleaved_times(fns: dict[str, Callable[[], None]], rounds: int, warmup: int) -> dict[str, list[float]]:
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return times


def summarise(times: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    out = {}
    for name, values in times.items():
        ms = sorted(1000 * v for v in values)
        q = statistics.quantiles(ms, n=4) if len(ms) >= 2 else [ms[0]] * 3
        out[name] = {"median_ms": statistics.median(ms), "q1_ms": q[0], "q3_ms": q[2], "n": len(ms)}
    floor, ours = out["floor"]["median_ms"], out["spikedyn"]["median_ms"]
    for stats in out.values():
        stats["x_floor"] = stats["median_ms"] / floor
        stats["x_spikedyn"] = stats["median_ms"] / ours
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run(rounds: int, warmup: int, batch: int, steps: int, threads: int | None, allocator: str, include_reference: bool) -> dict:
    if allocator == "keep":
        keep_freed_memory()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    x = (torch.rand(steps, batch, 784) < 0.2).float()
    target = F.one_hot(torch.randint(0, 10, (batch,)), 10).float()
    variants = build_variants(include_reference)
    share_weights(variants, gain=4.0)
    with torch.no_grad():
        for name, model in variants.items():
            if name != "floor":
                print(f"sanity: {name:20s} output shape {tuple(model(x).shape)}, mean output rate {model(x).mean():.3f}")
    results = {}
    for mode in ("train", "inference"):
        fns = {
            name: (train_step_fn(m, x, target) if mode == "train" else inference_fn(m, x))
            for name, m in variants.items()
        }
        results[mode] = summarise(interleaved_times(fns, rounds, warmup))
    return {
        "workload": f"784-500-10 LIF, T={steps}, batch {batch}",
        "command": " ".join(["python", "benchmarks/speed_mlp.py", *sys.argv[1:]]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": torch.__version__,
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "allocator": allocator,
        "rounds": rounds,
        "results": results,
    }


def markdown(report: dict) -> str:
    lines = [
        f"# Speed: {report['workload']}",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}; torch {report['torch']}; CPU: {report['cpu']}; threads: {report['threads']}; "
        f"allocator: {report['allocator']}; {report['rounds']} interleaved rounds.",
        "",
    ]
    for mode, title in (("train", "Training step (forward + backward + Adam)"), ("inference", "Inference pass")):
        lines += [f"## {title}", "", "| variant | median ms | IQR ms | x floor | x spikedyn |", "|---|---|---|---|---|"]
        for name, s in report["results"][mode].items():
            lines.append(
                f"| {name} | {s['median_ms']:.2f} | {s['q1_ms']:.2f}-{s['q3_ms']:.2f} | {s['x_floor']:.2f} | {s['x_spikedyn']:.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    parser.add_argument("--allocator", choices=["keep", "default"], default="keep")
    parser.add_argument("--no-reference", action="store_true", help="skip the slow reference path")
    parser.add_argument("--quick", action="store_true", help="3 rounds, 1 warm-up, nothing written")
    parser.add_argument("--out", default=str(RESULTS / "speed_mlp"), help="results path without extension")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.warmup = 3, 1
    report = run(args.rounds, args.warmup, args.batch, args.steps, args.threads, args.allocator, not args.no_reference)
    text = markdown(report)
    print(text)
    if not args.quick:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
        out.with_suffix(".md").write_text(text)
    return report


if __name__ == "__main__":
    main()
