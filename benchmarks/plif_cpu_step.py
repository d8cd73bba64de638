"""The PLIF MNIST net's CPU training step: what the allocator setting and the compiled max pool change.

The cell is ``plif-table4``'s MNIST PLIF cell, built as ``spikedyn reproduce`` builds it
(``cell_epoch_time.cell_trainer``: batch 16, T = 8, the augmentation, Adam), trained on the real data.
Its first-layer maps are ``[8, 16, 128, 28, 28]`` floats, 51 MB, above glibc's 32 MiB ceiling for the mmap
threshold.  Three measurements:

* ``allocator``: one process per setting trains ``--warmup`` batches, then ``--rounds`` x ``--batches``
  timed ones, and reports ms a batch (median over rounds), minor page faults a batch and the peak
  resident memory.  ``default``: malloc as it is; ``threshold``: mmap threshold 32 MiB and no trimming
  (``spikedyn.perf.keep_freed_memory`` before M_MMAP_MAX was added); ``keep``: today's
  ``keep_freed_memory`` (also M_MMAP_MAX = 0: no block is mmapped).
* ``pool``: in the ``keep`` process, rounds alternate between the blocks' compiled max pool
  (``spikedyn.layers.WindowMaxPool2d``) and ``nn.MaxPool2d``, swapped in place, so load drift hits both.
* ``pool-op``: forward and backward of the pool alone on ``[128, 128, 28, 28]`` spikes (the first
  layer's maps), both implementations, interleaved rounds, under ``keep``; the average pool too (``avg``:
  ``WindowAvgPool2d`` against ``nn.AvgPool2d``, the pooling of BRP's nets and of PLIF's Table 5 ablation);
  and BRP's single-channel MNIST conv (5x5 -> 32 on 1000 maps) as the conv blocks run it (channels_last,
  ``Conv2dLIF._synapse``) against plain NCHW, forward and the weight gradient.

    python benchmarks/plif_cpu_step.py --data-root DATA --threads 2    # writes results/plif_cpu_step.{json,md}
"""

from __future__ import annotations

import argparse
import ctypes
import itertools
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (  # noqa: E402
    add_out_option, add_threads_option, command_line, cpu_model, interleaved_times, loadavg, new_parser, parse,
    summarise, utc_date, write_results,
)

SETTINGS = ("default", "threshold", "keep")


def apply_setting(name: str) -> None:
    from spikedyn import perf

    if name == "keep":
        assert perf.keep_freed_memory(), "glibc's mallopt is needed (Linux)"
    elif name == "threshold":
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        assert libc.mallopt(-3, perf.MMAP_THRESHOLD) and libc.mallopt(-1, perf.TRIM_THRESHOLD)


def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def worker(args: argparse.Namespace) -> dict:
    """One allocator setting: the step's time and page faults, and (for ``keep``) the pool A/B."""
    apply_setting(args.worker)
    import torch
    from torch import nn

    from cell_epoch_time import cell_trainer
    from spikedyn.layers import WindowMaxPool2d

    if args.threads:
        torch.set_num_threads(args.threads)
    cell = argparse.Namespace(table="plif-table4", task="mnist-tau2", neuron="plif", data_root=args.data_root,
                              device="cpu", set=[])
    with tempfile.TemporaryDirectory() as scratch:
        trainer = cell_trainer(cell, scratch)
        full = trainer.batcher.batches

        def train(batches: int) -> float:
            trainer.batcher.batches = lambda *a, **k: itertools.islice(full(*a, **k), batches)
            start = time.perf_counter()
            trainer.train_epoch(0)
            return (time.perf_counter() - start) / batches * 1e3

        train(args.warmup)
        before = faults()
        times = [train(args.batches) for _ in range(args.rounds)]
        result = {
            "setting": args.worker,
            "ms_per_batch": times,
            "median_ms": statistics.median(times),
            "faults_per_batch": (faults() - before) / (args.rounds * args.batches),
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        if args.worker == "keep":
            blocks = [m for m in trainer.model.modules() if isinstance(getattr(m, "pool", None), WindowMaxPool2d)]
            pools = {"compiled": [b.pool for b in blocks], "torch": [nn.MaxPool2d(2) for _ in blocks]}
            ab: dict[str, list[float]] = {"compiled": [], "torch": []}
            for r in range(args.rounds * 2):
                for name in ("compiled", "torch") if r % 2 == 0 else ("torch", "compiled"):
                    for block, pool in zip(blocks, pools[name]):
                        block.pool = pool
                    ab[name].append(train(args.batches))
            for block, pool in zip(blocks, pools["compiled"]):
                block.pool = pool
            result["pool_ab"] = {name: {"ms_per_batch": v, "median_ms": statistics.median(v)} for name, v in ab.items()}
    return result


def layer_ops(rounds: int) -> dict:
    import torch
    import torch.nn.functional as F

    from spikedyn.layers import window_avg_pool2d, window_max_pool2d

    x0 = (torch.rand(128, 128, 28, 28, generator=torch.Generator().manual_seed(0)) < 0.2).float()
    grad = torch.ones(128, 128, 14, 14)
    held: dict[str, torch.Tensor] = {}

    def forward(fn):
        def run() -> None:
            x = x0.clone().requires_grad_(True)
            held["x"], held["y"] = x, fn(x)
        return run

    def both(fn):
        def run() -> None:
            x = x0.clone().requires_grad_(True)
            fn(x).backward(grad)
        return run

    fns = {
        "compiled-forward": forward(lambda x: window_max_pool2d(x, 2)),
        "torch-forward": forward(lambda x: F.max_pool2d(x, 2)),
        "compiled-forward+backward": both(lambda x: window_max_pool2d(x, 2)),
        "torch-forward+backward": both(lambda x: F.max_pool2d(x, 2)),
        "compiled-avg-forward+backward": both(lambda x: window_avg_pool2d(x, 2)),
        "torch-avg-forward+backward": both(lambda x: F.avg_pool2d(x, 2)),
    }
    # BRP's MNIST conv (one input channel, 5x5 -> 32, 1000 maps of 28x28): weight gradient only, as a first layer
    from spikedyn.layers import Conv2dLIF

    block = Conv2dLIF(1, 32, 5, padding=2, input_size=28, classes=10)
    maps = (torch.rand(20, 50, 1, 28, 28, generator=torch.Generator().manual_seed(1)) < 0.2).float()
    conv_grad = torch.randn(20, 50, 32, 28, 28, generator=torch.Generator().manual_seed(2))

    def conv(channels_last: bool):
        def run() -> None:
            block.conv.zero_grad(set_to_none=True)
            z = block._synapse(maps) if channels_last else block.conv(maps.flatten(0, 1))
            z.backward(conv_grad.view_as(z))
        return run

    fns["conv-1ch-channels-last-forward+backward"] = conv(True)
    fns["conv-1ch-nchw-forward+backward"] = conv(False)
    return summarise(interleaved_times(fns, rounds, 3), floor="none", ours="none")


def main(argv: list[str] | None = None) -> dict:
    parser = new_parser(__doc__)
    add_threads_option(parser)
    add_out_option(parser, "plif_cpu_step")
    parser.add_argument("--data-root", default=None, help="folder holding MNIST/ (as spikedyn train --data-root)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed batches first (default 10)")
    parser.add_argument("--batches", type=int, default=5, help="batches a round (default 5)")
    parser.add_argument("--rounds", type=int, default=6, help="timed rounds (default 6)")
    parser.add_argument("--worker", choices=SETTINGS, help=argparse.SUPPRESS)
    args = parse(parser, argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return {}
    load_before = loadavg()
    runs = {}
    for setting in SETTINGS:
        cmd = [sys.executable, __file__, "--worker", setting, "--warmup", str(args.warmup), "--batches",
               str(args.batches), "--rounds", str(args.rounds)]
        if args.data_root:
            cmd += ["--data-root", args.data_root]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        runs[setting] = json.loads(out.strip().splitlines()[-1])
        print(setting, f"{runs[setting]['median_ms']:.0f} ms a batch", flush=True)
    apply_setting("keep")  # the pool alone under the allocator setting that training uses
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    op = layer_ops(args.rounds * 5)
    report = {
        "command": command_line("plif_cpu_step.py", args.argv),
        "date": utc_date(),
        "torch": torch.__version__,
        "cpu": cpu_model(),
        "threads": args.threads or torch.get_num_threads(),
        "loadavg_before_after": [load_before, loadavg()],
        "allocator": runs,
        "layer_ops": op,
    }
    ab = runs["keep"]["pool_ab"]
    lines = [
        "# The PLIF MNIST net's CPU training step: allocator setting and compiled max pool",
        "",
        f"`{report['command']}`, {report['date']}, torch {report['torch']}, {report['cpu']}, {report['threads']} "
        f"threads, load average before / after {report['loadavg_before_after']}. The `plif-table4` MNIST PLIF cell "
        f"(batch 16, T = 8), {args.warmup} warm-up batches, then {args.rounds} rounds of {args.batches} batches.",
        "",
        "| allocator | ms a batch (median of rounds) | rounds | minor page faults a batch | peak RSS MB |",
        "|---|---|---|---|---|",
    ]
    for setting, label in (("default", "glibc default"), ("threshold", "mmap threshold 32 MiB, no trim"),
                           ("keep", "`keep_freed_memory` (also no mmap at all)")):
        run = runs[setting]
        lines.append(f"| {label} | {run['median_ms']:.0f} | {', '.join(f'{t:.0f}' for t in run['ms_per_batch'])} | "
                     f"{run['faults_per_batch']:.0f} | {run['max_rss_mb']:.0f} |")
    lines += [
        "",
        "Max pooling in the same net (`keep` process, alternating rounds):",
        "",
        "| pool | ms a batch (median) | rounds |",
        "|---|---|---|",
    ]
    for name, label in (("compiled", "compiled `WindowMaxPool2d`"), ("torch", "`nn.MaxPool2d`")):
        rounds = ", ".join(f"{t:.0f}" for t in ab[name]["ms_per_batch"])
        lines.append(f"| {label} | {ab[name]['median_ms']:.0f} | {rounds} |")
    lines += [
        "",
        "The layers alone, interleaved rounds, allocator `keep`: the pools on `[128, 128, 28, 28]` spikes (the first "
        "layer's maps; `avg`: the average pool) and BRP's single-channel MNIST conv on 1000 maps (`conv-1ch`):",
        "",
        "| | median ms | IQR ms |",
        "|---|---|---|",
    ]
    for name, stats in op.items():
        lines.append(f"| {name} | {stats['median_ms']:.2f} | {stats['q1_ms']:.2f}-{stats['q3_ms']:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    write_results(report, text, args.out)
    return report


if __name__ == "__main__":
    main()
