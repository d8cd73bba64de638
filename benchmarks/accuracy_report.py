"""Summarise training runs as a paper-vs-ours table with their per-epoch logs.

    python benchmarks/accuracy_report.py --title "MNIST 784-500-10 (MDN Table 3)" \
        --out benchmarks/results/mnist_accuracy.md \
        --run benchmarks/runs/mnist-2nd-fs:98.67 --run benchmarks/runs/mnist-lif:98.69

Each ``--run DIR[:PAPER]`` names a run directory written by ``spikedyn train`` (its
``config.json`` and ``metrics.jsonl``) and optionally the paper's accuracy in percent.
The command that made each run is rebuilt from its ``config.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import date
from pathlib import Path

ARG_NAMES = {
    "dataset": "--dataset", "neuron": "--neuron", "hidden": "--hidden", "steps": "--steps", "epochs": "--epochs",
    "batch_size": "--batch-size", "lr": "--lr", "lr_dynamics": "--lr-dynamics", "schedule": "--schedule", "lr_step": "--lr-step",
    "lr_gamma": "--lr-gamma", "loss": "--loss", "encoder": "--encoder", "alpha": "--alpha", "seed": "--seed",
}


def command_of(config: dict, run_dir: str) -> str:
    parts = ["spikedyn train"]
    for key, flag in ARG_NAMES.items():
        if config.get(key) is not None:
            parts.append(f"{flag} {config[key]}")
    for key, value in (config.get("data_options") or {}).items():
        parts.append(f"--data-option {key}={value}")
    parts.append("--data-root DATA")
    parts.append(f"--out {run_dir}")
    return " ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", required=True, help="run directory, optionally :paper_accuracy")
    parser.add_argument("--title", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--note", default="", help="a sentence placed under the title (protocol, caveats)")
    args = parser.parse_args()

    rows, logs = [], []
    for spec in args.run:
        run_dir, _, paper = spec.partition(":")
        config = json.loads((Path(run_dir) / "config.json").read_text())
        history = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines() if line]
        final = 100 * history[-1]["test_accuracy"]
        best = 100 * max(h["test_accuracy"] for h in history)
        seconds = sum(h["seconds"] for h in history)
        rows.append(
            f"| {config['neuron']} | {paper or '-'} | {final:.2f} | {best:.2f} | {len(history)} | {seconds / 60:.1f} |"
        )
        log = [f"### {config['neuron']} (`{run_dir}`)", "", "```", command_of(config, run_dir), "```", "",
               "| epoch | train loss | train acc % | test acc % | seconds |", "|---|---|---|---|---|"]
        log += [
            f"| {h['epoch']} | {h['train_loss']:.5f} | {100 * h['train_accuracy']:.2f} | {100 * h['test_accuracy']:.2f} | {h['seconds']:.1f} |"
            for h in history
        ]
        logs.append("\n".join(log))

    text = [
        f"# {args.title}",
        "",
        f"Measured {date.today().isoformat()} on {platform.machine()} ({platform.processor() or 'cpu'}), one seed each. "
        + args.note,
        "",
        "| neuron | paper % | ours final % | ours best % | epochs | minutes |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "## Per-epoch logs",
        "",
        "\n\n".join(logs),
        "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(text))
    print("\n".join(text[: 8 + len(rows)]))


if __name__ == "__main__":
    main()
