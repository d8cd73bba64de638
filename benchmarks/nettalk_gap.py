"""How much of the NETtalk gap to the MDN paper is the metric, the reporting, or the data?

The MDN authors score NETtalk with a cosine similarity of only the **first** window of every test
batch of 5 (spec mdn.md section 5), so 100 of the 500 test windows count, and their training
script prints the **best** test score over the epochs besides the last.  For each run directory
given, this script reports, from the checkpoint and the run's ``metrics.jsonl``:

* ``authors``: the authors' score (groups of 5, first window) at the final epoch, as the trainer
  printed it;
* ``offset k``: the same score when window ``k`` of each group of 5 counts instead (k = 1..4):
  four more draws of 100 test windows from the same model, so their spread is the metric's own
  sampling noise;
* ``all 500``: the cosine averaged over every test window;
* ``bootstrap std``: standard deviation of the authors' score under resampling of its 100 windows;
* ``train``: the same score over the training windows (is the model under-fitting?);
* ``best epoch``: the largest per-epoch test score of the run (what the authors' script prints as
  "Best Test Accuracy").

Usage::

    python benchmarks/nettalk_gap.py RUN_DIR [RUN_DIR ...] [--data-root DIR] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from spikedyn.data.nettalk import nettalk_accuracy
from spikedyn.batching import Batcher, epoch_generator, run_dataset
from spikedyn.train import load_checkpoint


@torch.no_grad()
def output_rates(model, batcher: Batcher, config, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Output firing rates ``[N, 26]`` and targets of a split, in loader order (no shuffling)."""
    model.eval()
    rates, targets = [], []
    generator = epoch_generator(config.seed, max(config.epochs - 1, 0), purpose=1)
    for x, y in batcher.batches(split, config.eval_batch_size, generator, shuffle=False):
        rates.append(model(x).rate.float().cpu())
        targets.append(y.float().cpu())
    return torch.cat(rates), torch.cat(targets)


def cosine_per_window(rates: torch.Tensor, targets: torch.Tensor, threshold: float = 0.05) -> torch.Tensor:
    """Each window's cosine over the units where rate or target is non-zero; 0 when its largest rate < threshold."""
    cos = (rates * targets).sum(1) / (rates.norm(dim=1) * targets.norm(dim=1)).clamp_min(1e-12)
    return torch.where(rates.max(1).values < threshold, torch.zeros_like(cos), cos)


def analyse(run_dir: Path, data_root: str | None, boot: int = 2000) -> dict:
    model, config, ckpt = load_checkpoint(run_dir)
    config.progress = False
    dataset = run_dataset(config, data_root)
    batcher = Batcher(dataset, config, torch.device("cpu"))
    rates, targets = output_rates(model, batcher, config, "test")
    group = config.batch_size
    offsets = [nettalk_accuracy(rates[k:], targets[k:], batch_size=group) for k in range(group)]
    first = cosine_per_window(rates[::group], targets[::group])
    gen = torch.Generator().manual_seed(0)
    picks = torch.randint(len(first), (boot, len(first)), generator=gen)
    train_rates, train_targets = output_rates(model, batcher, config, "train")
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    scores = [row["test_accuracy"] for row in history]
    return {
        "run": str(run_dir),
        "neuron": config.neuron,
        "source": dataset.source,
        "epochs": int(ckpt["epoch"]),
        "authors": 100 * offsets[0],
        "offsets": [100 * v for v in offsets],
        "offset_spread": 100 * (max(offsets) - min(offsets)),
        "all_windows": 100 * float(cosine_per_window(rates, targets).mean()),
        "bootstrap_std": 100 * float(first[picks].mean(1).std()),
        "train_all_windows": 100 * float(cosine_per_window(train_rates, train_targets).mean()),
        "best_epoch_score": 100 * max(scores),
        "best_epoch": 1 + scores.index(max(scores)),
        "last10_mean": 100 * sum(scores[-10:]) / len(scores[-10:]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="NETtalk run directories (with checkpoint.pt)")
    parser.add_argument("--data-root", help="data root (default: the one each run recorded)")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    rows = [analyse(run, args.data_root) for run in args.runs]
    print("| run | neuron | epochs | authors' score | offsets 0-4 | all 500 | bootstrap std | train | best epoch | last-10 mean |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        offs = " / ".join(f"{v:.2f}" for v in r["offsets"])
        print(
            f"| {r['run']} | {r['neuron']} | {r['epochs']} | {r['authors']:.2f} | {offs} | {r['all_windows']:.2f} | "
            f"{r['bootstrap_std']:.2f} | {r['train_all_windows']:.2f} | {r['best_epoch_score']:.2f} (ep {r['best_epoch']}) | "
            f"{r['last10_mean']:.2f} |"
        )
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
