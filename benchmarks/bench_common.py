"""Pieces shared by the benchmark scripts: machine description and writing a results pair."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path


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
    from spikedyn.perf import keep_freed_memory

    env = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    env_text = f" (environment: {' '.join(f'{k}={v}' for k, v in sorted(env.items()))})" if env else ""
    if setting == "keep":
        applied = keep_freed_memory()
        status = "applied" if applied else "NOT applied (not glibc/Linux)"
        return f"keep: mallopt M_MMAP_THRESHOLD=32 MiB, M_TRIM_THRESHOLD=2^31-1, {status}{env_text}"
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
