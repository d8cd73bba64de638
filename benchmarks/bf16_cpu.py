"""Does ``--precision bf16`` pay on this CPU?  The PLIF MNIST net's two big products in float32 and bfloat16.

A training step of the spec's PLIF MNIST net (batch 16, T = 8, so 128 sample-steps per product) is
dominated by two products, timed here forward and backward as the trainer runs them:

* ``conv``: the second 128 -> 128 channel 3x3 convolution on 14x14 spike maps (no bias);
* ``fc``: the 6272 -> 2048 linear layer (no bias).

``fp32`` runs them in float32; ``bf16`` under ``torch.autocast("cpu", dtype=torch.bfloat16)``,
as ``spikedyn train --precision bf16`` does.  Rounds are interleaved (every variant once per
round, rotating order).  The report says whether PyTorch sees bfloat16 units on this CPU
(AVX512-BF16 or AMX: ``spikedyn.precision.cpu_has_bf16_units``); without them the bfloat16
products are emulated and the trainer warns.

    python benchmarks/bf16_cpu.py --threads 2            # writes results/bf16_cpu.{json,md}
    python benchmarks/bf16_cpu.py --rounds 1 --warmup 0 --out /tmp/bf16   # a quick look
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from bench_common import (  # noqa: E402
    add_out_option, add_round_options, add_threads_option, command_line, cpu_model, interleaved_times, loadavg,
    new_parser, parse, summarise, utc_date, write_results,
)
from spikedyn.precision import autocast, cpu_has_bf16_units  # noqa: E402

ROWS = 128  # batch 16 x T 8


def products() -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """The two layers and a spike input of their shape in the PLIF MNIST net."""
    gen = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(128, 128, 3, padding=1, bias=False)
    fc = nn.Linear(6272, 2048, bias=False)
    return {
        "conv": (conv, (torch.rand(ROWS, 128, 14, 14, generator=gen) < 0.2).float()),
        "fc": (fc, (torch.rand(ROWS, 6272, generator=gen) < 0.2).float()),
    }


def step(layer: nn.Module, x: torch.Tensor, precision: str):
    """A forward and backward of ``layer`` on ``x`` under the run's precision."""
    def run() -> None:
        layer.zero_grad(set_to_none=True)
        with autocast(precision, "cpu"):
            out = layer(x)
        out.float().sum().backward()
    return run


def main(argv: list[str] | None = None) -> dict:
    parser = new_parser(__doc__)
    add_round_options(parser, rounds=5, warmup=1)
    add_threads_option(parser)
    add_out_option(parser, "bf16_cpu")
    parser.add_argument("--order", default="rotate", choices=["rotate", "shuffle"])
    args = parse(parser, argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = loadavg()
    fns = {f"{name}-{precision}": step(layer, x, precision)
           for name, (layer, x) in products().items() for precision in ("fp32", "bf16")}
    stats = summarise(interleaved_times(fns, args.rounds, args.warmup, args.order), floor="none", ours="none")
    ratios = {name: stats[f"{name}-bf16"]["median_ms"] / stats[f"{name}-fp32"]["median_ms"] for name in ("conv", "fc")}
    report = {
        "command": command_line("bf16_cpu.py", args.argv),
        "date": utc_date(),
        "torch": torch.__version__,
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bf16_units": cpu_has_bf16_units(),
        "threads": torch.get_num_threads(),
        "rounds": args.rounds,
        "loadavg_before_after": [load_before, loadavg()],
        "results": {k: {"median_ms": v["median_ms"], "q1_ms": v["q1_ms"], "q3_ms": v["q3_ms"]} for k, v in stats.items()},
        "bf16_over_fp32": ratios,
    }
    lines = [
        "# bfloat16 against float32 on this CPU: the PLIF MNIST net's two big products, forward + backward",
        "",
        f"`{report['command']}`, {report['date']}, torch {report['torch']}, {report['cpu']} "
        f"(PyTorch's CPU capability {report['cpu_capability']}; bfloat16 units: "
        f"{'yes' if report['bf16_units'] else 'no, emulated'}), {report['threads']} threads, {args.rounds} rounds, "
        f"load average before / after {report['loadavg_before_after']}.",
        "",
        "| product | fp32 ms (median) | bf16 ms (median) | bf16 / fp32 |",
        "|---|---|---|---|",
    ]
    for name, label in (("conv", "Conv2d 128 -> 128, 3x3, 14x14, 128 maps"), ("fc", "Linear 6272 -> 2048, 128 rows")):
        lines.append(f"| {label} | {stats[f'{name}-fp32']['median_ms']:.1f} | {stats[f'{name}-bf16']['median_ms']:.1f} | "
                     f"{ratios[name]:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    write_results(report, text, args.out)
    return report


if __name__ == "__main__":
    main()
