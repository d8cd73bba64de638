"""The seeds of written reproduce reports that stayed at chance, read from their JSON files.

A report written now names such seeds itself (`spikedyn.reproduce.report.chance_band`: the best epoch within
2 binomial standard errors of 100 / classes on the test set's size). This script applies the same band to the
JSON of reports written before that, whose run folders may be gone, and prints one markdown line per seed.

    python benchmarks/chance_seeds.py benchmarks/results/mdn-table3.json benchmarks/results/mdn-table4.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spikedyn.reproduce.report import chance_band


def seeds_at_chance(report: dict) -> list[dict]:
    """Every finished seed of ``report`` (a reproduce report's JSON) whose best epoch lies in its row's band."""
    found = []
    for row in report["rows"]:
        metric = row.get("metric")
        names = [metric] if isinstance(metric, str) else list(metric or [])
        band = chance_band(row.get("data"), [m for m in names if m != "accuracy"])
        if band is None:
            continue
        for neuron, ours in row["ours"].items():
            for seed, rec in ours.get("per_seed", {}).items():
                if rec["best"] <= band["bound"]:
                    found.append({"task": row["label"], "neuron": neuron, "seed": int(seed), "best": rec["best"],
                                  "final": rec["final"], "chance": band["level"], "bound": band["bound"]})
    return found


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", help="reproduce report JSON files")
    args = parser.parse_args(argv)
    print("| report | task | neuron | seed | best | final | chance | counted as chance up to |")
    print("|---|---|---|---|---|---|---|---|")
    found = []
    for path in args.reports:
        for s in seeds_at_chance(json.loads(Path(path).read_text())):
            found.append({"report": path, **s})
            print(f"| {path} | {s['task']} | {s['neuron']} | {s['seed']} | {s['best']:.2f} | {s['final']:.2f} | "
                  f"{s['chance']:.2f} | {s['bound']:.2f} |")
    return found


if __name__ == "__main__":
    main()
