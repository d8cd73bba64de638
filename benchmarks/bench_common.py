"""Pieces shared by the benchmark scripts: machine description, writing a results pair, interleaved
timing, the common command-line options, the run of a speed benchmark and its markdown report.

The scripts import it as a sibling module (``sys.path`` gets their folder first)."""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import platform
import re
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping


def cpu_model() -> str:
    """The CPU model name from ``/proc/cpuinfo`` (else what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg() -> list[float] | None:
    """The 1/5/15-minute load averages, rounded, or None where the system has none."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def write_results(report: dict, text: str, out: str | Path) -> None:
    """Write ``OUT.json`` (the report) and ``OUT.md`` (its markdown ``text``) and say so."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(text)
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")


# ---------------------------------------------------------------------------------------
# Interleaved timing, summaries and process settings shared by the speed benchmarks
# ---------------------------------------------------------------------------------------
def interleaved_times(fns, rounds: int, warmup: int, order: str = "rotate", seed: int = 0) -> dict[str, list[float]]:
    """Seconds per call of every function in ``fns`` (name -> callable).

    After ``warmup`` untimed rounds, each of ``rounds`` rounds calls every function once, in a
    rotating (``order="rotate"``) or shuffled (``"shuffle"``) order, so that load drift hits all
    variants alike.
    """
    import random
    import time

    names = list(fns)
    rng = random.Random(seed)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        if order == "shuffle":
            round_order = rng.sample(names, len(names))
        else:
            round_order = names[r % len(names):] + names[: r % len(names)]
        for name in round_order:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return times


def summarise(times: dict[str, list[float]], floor: str = "floor", ours: str = "spikedyn") -> dict[str, dict]:
    """Median, quartiles (ms), every time, and the ratios to the ``floor`` and ``ours`` variants."""
    import statistics

    out: dict[str, dict] = {}
    for name, values in times.items():
        ms = [1000 * v for v in values]
        srt = sorted(ms)
        q = statistics.quantiles(srt, n=4) if len(srt) >= 2 else [srt[0]] * 3
        out[name] = {"median_ms": statistics.median(srt), "q1_ms": q[0], "q3_ms": q[2], "n": len(ms), "times_ms": ms}
    floor_ms = out.get(floor, {}).get("median_ms")
    ours_ms = out.get(ours, {}).get("median_ms")
    for stats in out.values():
        stats["x_floor"] = stats["median_ms"] / floor_ms if floor_ms else None
        stats[f"x_{ours}"] = stats["median_ms"] / ours_ms if ours_ms else None
    return out


def apply_allocator(setting: str) -> str:
    """``keep``: glibc keeps freed memory (process-wide, every variant alike); ``default``: malloc as is.

    Returns the setting as recorded in the results, with any ``MALLOC_*`` environment variables.
    """
    from spikedyn.perf import SETTINGS, keep_freed_memory

    env = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    env_text = f" (environment: {' '.join(f'{k}={v}' for k, v in sorted(env.items()))})" if env else ""
    if setting == "keep":
        applied = keep_freed_memory()
        status = "applied" if applied else "NOT applied (not glibc/Linux)"
        return f"keep: {SETTINGS}, {status}{env_text}"
    return f"default{env_text}"


def library_versions(names=("snntorch", "spikingjelly")) -> dict[str, str | None]:
    """torch's version and that of every optional library in ``names`` (None when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    versions: dict[str, str | None] = {"torch": torch.__version__}
    for name in names:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


# ---------------------------------------------------------------------------------------
# Peak resident memory of one step (in a fresh process)
# ---------------------------------------------------------------------------------------
def _proc_status_kb(key: str) -> int | None:
    try:
        match = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None

def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None

def _reset_high_water_mark() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False

def fresh_process_allocator():
    """Fix glibc's thresholds (every block above 64 KiB mmapped, trimmed at 128 KiB) so that a step's
    peak shows in the resident set and is given back after it; returns libc (None where unavailable)."""
    libc = _libc()
    if libc is not None and sys.platform.startswith("linux"):
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD: fixed, so every block > 64 KiB is mmapped
        libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD
    return libc


def peak_step_memory(step, libc, warmup: int = 2, repeats: int = 3) -> dict:
    """Peak resident memory of one call of ``step`` above the memory held before it (MiB): ``VmHWM``
    after the call minus ``VmRSS`` before it, high-water mark reset first; median of ``repeats`` calls
    after ``warmup`` ones.  Call it in a fresh process set up by :func:`fresh_process_allocator`."""
    import statistics

    for _ in range(warmup):
        step()
    peaks = []
    for _ in range(repeats):
        if libc is not None:
            libc.malloc_trim(0)
        before = _proc_status_kb("VmRSS")
        if before is None or not _reset_high_water_mark():
            return {"peak_step_mib": None, "method": "unavailable: needs Linux /proc/self/clear_refs"}
        step()
        peaks.append((_proc_status_kb("VmHWM") - before) / 1024)
    return {"peak_step_mib": statistics.median(peaks), "peaks_mib": peaks,
            "method": f"fresh process, mmap threshold 64 KiB, VmHWM - VmRSS of one step (median of {repeats})"}


# ---------------------------------------------------------------------------------------
# Command line: the options the scripts share, with the same names, defaults and help
# ---------------------------------------------------------------------------------------
#: where the results pairs go (``--out`` defaults to ``RESULTS / <script name>``)
RESULTS = Path(__file__).resolve().parent / "results"


def new_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser whose ``--help`` shows the script's docstring ``doc`` as written."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_round_options(parser: argparse.ArgumentParser, rounds: int, warmup: int) -> None:
    """``--rounds`` (timed interleaved rounds) and ``--warmup`` (untimed rounds before them)."""
    parser.add_argument("--rounds", type=int, default=rounds, help=f"timed interleaved rounds (default {rounds})")
    parser.add_argument("--warmup", type=int, default=warmup, help=f"untimed warm-up rounds (default {warmup})")


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """``--threads``: torch's thread count, applied by :func:`prepare` (default: torch's own)."""
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")


def add_out_option(parser: argparse.ArgumentParser, name: str) -> None:
    """``--out``: the results pair's path without extension, by default ``results/<name>``."""
    parser.add_argument("--out", default=str(RESULTS / name), help="results path without extension")


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv`` (None: the command line) and keep the words as given in ``args.argv`` (for the
    command recorded in the results)."""
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def speed_args(
    argv: list[str] | None,
    doc: str | None,
    *,
    name: str,
    warmup: int,
    batch: int,
    steps: int,
    input_rate: float,
    allocator: str,
    variants: Iterable[str],
    choices: Iterable[str],
    no_reference_help: str,
    note: bool = True,
) -> argparse.Namespace:
    """The command line of the interleaved speed benchmarks (``speed_*.py``), parsed.

    Options, in this order in ``--help``: ``--rounds`` (30), ``--warmup``, ``--batch``, ``--steps``,
    ``--input-rate``, ``--threads``, ``--allocator`` (``keep`` or ``default``), ``--variants``
    (default: ``variants``; the help lists ``choices``), ``--no-reference``, ``--order``,
    ``--quick`` (3 rounds, 1 warm-up, nothing written), ``--note`` (where ``note``) and ``--out``
    (default ``results/<name>``).  The keyword arguments are each script's defaults and texts.
    """
    parser = new_parser(doc)
    add_round_options(parser, 30, warmup)
    parser.add_argument("--batch", type=int, default=batch)
    parser.add_argument("--steps", type=int, default=steps, help="time steps T")
    parser.add_argument("--input-rate", type=float, default=input_rate, help="Bernoulli input spike probability")
    add_threads_option(parser)
    keep = "keep (default)" if allocator == "keep" else "keep"
    parser.add_argument("--allocator", choices=["keep", "default"], default=allocator,
                        help=f"{keep}: glibc keeps freed memory (mallopt), for all variants alike")
    parser.add_argument("--variants", default=",".join(variants), help=f"comma-separated subset of {','.join(choices)}")
    parser.add_argument("--no-reference", action="store_true", help=no_reference_help)
    parser.add_argument("--order", choices=["rotate", "shuffle"], default="rotate", help="order within a round")
    parser.add_argument("--quick", action="store_true", help="3 rounds, 1 warm-up, nothing written")
    if note:
        parser.add_argument("--note", default=None, help="measurement conditions to record in the results (free text)")
    add_out_option(parser, name)
    args = parse(parser, argv)
    if args.quick:
        args.rounds, args.warmup = 3, 1
    return args


# ---------------------------------------------------------------------------------------
# The run of a speed benchmark: setting up, building, checking and timing the variants
# ---------------------------------------------------------------------------------------
def prepare(args: argparse.Namespace, builders: Mapping, reference: Iterable[str] = ()) -> tuple[str, list[str]]:
    """Apply ``--allocator`` (first, before any tensor is allocated) and ``--threads``; return the
    allocator as recorded and the ``--variants`` names, checked against ``builders``, without the
    slow ``reference`` variants under ``--no-reference``."""
    import torch

    allocator = apply_allocator(args.allocator)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = set(names) - set(builders)
    if unknown:
        raise SystemExit(f"unknown variant(s) {sorted(unknown)}; choose from {', '.join(builders)}")
    if args.no_reference:
        names = [n for n in names if n not in tuple(reference)]
    return allocator, names


def random_input(args: argparse.Namespace, shape: tuple[int, ...], classes: int):
    """Seed 0, then the pre-encoded (untimed) Bernoulli input ``[--steps, --batch, *shape]`` of rate
    ``--input-rate`` and one-hot targets ``[--batch, classes]`` of random labels."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    x = (torch.rand(args.steps, args.batch, *shape) < args.input_rate).float()
    target = F.one_hot(torch.randint(0, classes, (args.batch,)), classes).float()
    return x, target


def build_variants(names: list[str], builders: Mapping) -> dict:
    """Each name's model from ``builders`` (name -> no-argument constructor), in the order of
    ``names``; a variant whose library is not importable is skipped with a printed note."""
    variants = {}
    for name in names:
        try:
            variants[name] = builders[name]()
        except ImportError as err:
            print(f"note: {name} skipped ({err.name or err} is not importable)")
    return variants


def rate_mse_loss(model, x, target):
    """MSE between the model's output averaged over time (dim 0) and ``target``."""
    import torch.nn.functional as F

    return F.mse_loss(model(x).mean(0), target)


def train_step_fn(model, x, target, loss=rate_mse_loss, lr: float = 1e-3):
    """One training step to time: ``loss(model, x, target)``, backward, Adam (``lr``) step."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def step() -> None:
        value = loss(model, x, target)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()

    return step


def rel_diff(grad, ref) -> float:
    """Relative L2 difference of ``grad`` from ``ref``."""
    return float((grad - ref).norm() / ref.norm().clamp_min(1e-30))


def max_rel_grad_diff(model, ref_grads: dict) -> float:
    """The largest :func:`rel_diff` of any of ``model``'s parameter gradients from ``ref_grads``
    (parameter name -> gradient of the reference model)."""
    return max(rel_diff(p.grad, ref_grads[n]) for n, p in model.named_parameters() if p.grad is not None)


def time_variants(fns, args: argparse.Namespace, ours: str) -> dict[str, dict]:
    """:func:`summarise` of ``fns`` timed over ``--rounds`` interleaved rounds (``--order``) after
    ``--warmup`` ones, with ratios to ``floor`` and to ``ours``."""
    return summarise(interleaved_times(fns, args.rounds, args.warmup, args.order), ours=ours)


def utc_date() -> str:
    """Now, as the results record it: ``YYYY-MM-DD HH:MM UTC``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def command_line(script: str, argv: list[str], quote: bool = True) -> str:
    """The command that reproduces a run: ``.venv/bin/python benchmarks/<script> ARGV`` (shell-quoted
    where ``quote``, else joined with spaces as the earlier results files were)."""
    words = [".venv/bin/python", f"benchmarks/{script}", *argv]
    return shlex.join(words) if quote else " ".join(words)


def conditions(
    args: argparse.Namespace,
    script: str,
    *,
    workload: str,
    allocator: str,
    versions: dict,
    load_before,
    quote: bool = True,
) -> dict:
    """The first entries of a speed report, in their order in the results JSON: the workload, the
    command, date, versions, Python, CPU, thread count, allocator, rounds, warm-up, order, the load
    average before (``load_before``) and now, and ``--note`` where the script has one."""
    import torch

    report = {
        "workload": workload,
        "command": command_line(script, args.argv, quote),
        "date": utc_date(),
        "versions": versions,
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "allocator": allocator,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "order": args.order,
        "loadavg_before_after": [load_before, loadavg()],
    }
    if hasattr(args, "note"):
        report["note"] = args.note
    return report


# ---------------------------------------------------------------------------------------
# Markdown of a speed report, and the end of every script's main
# ---------------------------------------------------------------------------------------
def fmt(value: float | None, spec: str = ".2f") -> str:
    """``value`` formatted by ``spec``, ``-`` for None."""
    return "-" if value is None else format(value, spec)


def speed_header(report: dict) -> list[str]:
    """The title and the conditions lines of a speed report made by :func:`conditions`: command, date
    and versions (the optional libraries found), CPU and threads, allocator, rounds and load, and the
    ``--note`` where given; ends with a blank line."""
    v = report["versions"]
    libs = ", ".join(f"{k} {version}" for k, version in v.items() if k != "torch" and version)
    return [
        f"# Speed: {report['workload']}",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}; torch {v['torch']}" + (f"; {libs}" if libs else "") + f"; Python {report['python']}  ",
        f"CPU: {report['cpu']} ({report['logical_cpus']} logical CPUs); torch threads: {report['threads']}  ",
        f"Allocator: {report['allocator']}  ",
        f"{report['rounds']} interleaved rounds ({report['order']} order) after {report['warmup']} warm-up rounds; "
        f"load average (1/5/15 min) before/after: {report['loadavg_before_after']}"
        + (f"  \nConditions: {report['note']}" if report.get("note") else ""),
        "",
    ]


def timing_table(results: dict[str, dict], ours: str) -> list[str]:
    """A markdown table of :func:`summarise`'s ``results``: median, IQR, ratio to the floor and to ``ours``."""
    lines = [f"| variant | median ms | IQR ms | x floor | x {ours} |", "|---|---|---|---|---|"]
    for name, s in results.items():
        lines.append(f"| {name} | {s['median_ms']:.2f} | {s['q1_ms']:.2f}-{s['q3_ms']:.2f} | {fmt(s['x_floor'])} "
                     f"| {fmt(s[f'x_{ours}'])} |")
    return lines


def run_and_write(args: argparse.Namespace, run, markdown) -> dict:
    """The body of every script's ``main``: ``report = run(args)``, print its ``markdown(report)`` and,
    unless ``--quick``, write both to ``--out`` (:func:`write_results`); return the report."""
    report = run(args)
    text = markdown(report)
    print(text)
    if not args.quick:
        write_results(report, text, args.out)
    return report
