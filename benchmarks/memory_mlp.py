"""Memory one training step adds on the CPU: the 784-500-10 MLP of ``speed_mlp.py`` at T = 100, batch 100.

Every variant runs in a fresh process (its own allocator state), built exactly as ``speed_mlp.py``
builds it (same networks, same shared weights, same pre-encoded Bernoulli input of rate 0.2); after
two warm-up steps, the peak resident memory of one training step (forward + rate-MSE + backward +
Adam) above what the process held before it: ``VmHWM`` after the step minus ``VmRSS`` before, the
high-water mark reset first, glibc told to mmap every block above 64 KiB (so freed memory leaves the
resident set), median of 3 steps.  The ratio to the floor's is what issue #10 sets a target on
(``spikedyn`` at most 1.5x the floor).

    python benchmarks/memory_mlp.py                   # results/memory_mlp.{json,md}
    python benchmarks/memory_mlp.py --quick           # T = 10, nothing written
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules bench_common, speed_mlp
import bench_common as bench  # noqa: E402
import speed_mlp  # noqa: E402

VARIANTS = ("floor", "spikedyn", "spikedyn-plif", "spikedyn-2nd-fs", "spikedyn-mdn", "spikingjelly", "snntorch")


def probe(variant: str, steps: int, batch: int) -> dict:
    """In this (fresh) process: the peak memory of one training step of ``variant``."""
    libc = bench.fresh_process_allocator()
    torch.set_num_threads(1)
    model = speed_mlp.BUILDERS[variant]()
    speed_mlp.share_weights([model])
    args = type("Args", (), {"steps": steps, "batch": batch, "input_rate": 0.2})()
    x, target = bench.random_input(args, (speed_mlp.INPUTS,), speed_mlp.CLASSES)
    return bench.peak_step_memory(bench.train_step_fn(model, x, target), libc)


def measure(variant: str, steps: int, batch: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--probe", variant, "--steps", str(steps), "--batch", str(batch)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        if "ModuleNotFoundError" in done.stderr or "ImportError" in done.stderr:
            print(f"note: {variant} skipped (its library is not importable)")
            return {}
        raise RuntimeError(f"memory probe {variant} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(args) -> dict:
    names = [v for v in args.variants.split(",") if v]
    unknown = set(names) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variant(s) {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    results = {name: measure(name, args.steps, args.batch) for name in names}
    results = {k: v for k, v in results.items() if v}
    floor = results.get("floor", {}).get("peak_step_mib")
    for r in results.values():
        r["x_floor"] = r["peak_step_mib"] / floor if floor and r.get("peak_step_mib") is not None else None
    return {
        "workload": f"784-500-10 MLP, T={args.steps}, batch {args.batch}, input rate 0.2",
        "command": bench.command_line("memory_mlp.py", args.argv),
        "date": bench.utc_date(),
        "versions": bench.library_versions(),
        "cpu": bench.cpu_model(),
        "results": results,
    }


def markdown(report: dict) -> str:
    v = report["versions"]
    lines = [
        f"# Memory of one training step: {report['workload']}",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}; torch {v['torch']}; " + ", ".join(f"{k} {x}" for k, x in v.items() if k != "torch" and x)
        + f"; CPU: {report['cpu']}",
        "",
        "Peak resident memory of one step above what the process held before it, each variant in a fresh "
        "process (method below).",
        "",
        "| variant | MiB added by one step | x floor | three steps (MiB) |",
        "|---|---|---|---|",
    ]
    for name, r in report["results"].items():
        steps = ", ".join(f"{p:.0f}" for p in r.get("peaks_mib", []))
        lines.append(f"| {name} | {bench.fmt(r['peak_step_mib'], '.0f')} | {bench.fmt(r['x_floor'])} | {steps} |")
    method = next((r["method"] for r in report["results"].values() if "method" in r), "")
    lines += ["", f"Method: {method}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = bench.new_parser(__doc__)
    parser.add_argument("--steps", type=int, default=100, help="time steps T (default 100)")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--quick", action="store_true", help="T = 10, nothing written")
    parser.add_argument("--probe", default=None, help=__import__("argparse").SUPPRESS)  # internal: one variant
    bench.add_out_option(parser, "memory_mlp")
    args = bench.parse(parser, argv)
    if args.probe:
        print(json.dumps(probe(args.probe, args.steps, args.batch)))
        return {}
    if args.quick:
        args.steps = 10
    return bench.run_and_write(args, run, markdown)


if __name__ == "__main__":
    main()
