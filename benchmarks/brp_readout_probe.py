"""Is the read-out or the hidden code the limit? A linear probe on the hidden spike counts of a trained run.

A net trained by reward propagation (``--rule brp``) learns its hidden code from the projected label
and its output layer from its own local error (spec brp.md section 4).  If the net's test accuracy
stays below what the hidden code carries, a better read-out would lift it; if not, the code is the
limit.  This script measures that for a finished run of the MDN three-layer net:

* the hidden spike counts ``c = sum_t S_1(t)`` ``[N, H]`` of every training and test image, under the
  run's own encoder (Bernoulli rate code, fresh draws each step) and ``T`` (``--draws D`` sums ``D``
  independent presentations, a longer look at the same image);
* a multinomial logistic regression (scikit-learn, L2 penalty ``C`` chosen on a held-out 10 % of the
  training images) fitted on the standardised training counts, scored on the test counts: the best
  *linear* read-out of the code;
* beside it the net's own test accuracy (its spiking output layer, rate read-out) from the checkpoint.

    python benchmarks/brp_readout_probe.py RUN --data-root DATA --out benchmarks/results/brp_readout/NAME
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from spikedyn.analysis.runs import load_run
from spikedyn.encoding import make_encoder


@torch.no_grad()
def hidden_counts(model, encoder, x: torch.Tensor, steps: int, draws: int, seed: int, batch: int = 500) -> np.ndarray:
    """Spike counts ``[N, H]`` of the model's first tap, summed over ``draws`` presentations of ``steps`` steps."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, len(x), batch):
        images = x[start:start + batch].float()
        total = 0
        for _ in range(draws):
            total = total + model(encoder(images, steps, generator).float()).taps[0].flatten(2).sum(0)
        out.append(total.numpy().astype(np.float32))
    return np.concatenate(out)


def fit_probe(c_train: np.ndarray, y_train: np.ndarray, c_test: np.ndarray, y_test: np.ndarray,
              penalties: list[float], seed: int) -> dict:
    """Pick ``C`` on a held-out tenth of the training counts, refit on all of them, score on the test counts."""
    mean, std = c_train.mean(0), c_train.std(0) + 1e-6
    a, b = (c_train - mean) / std, (c_test - mean) / std
    order = np.random.default_rng(seed).permutation(len(a))
    held, fit = order[: len(a) // 10], order[len(a) // 10:]
    held_scores = {}
    for c in penalties:
        model = LogisticRegression(C=c, max_iter=300).fit(a[fit], y_train[fit])
        held_scores[c] = 100.0 * model.score(a[held], y_train[held])
        print(f"  C={c:g}: held-out {held_scores[c]:.2f} %", flush=True)
    best_c = max(held_scores, key=held_scores.get)
    model = LogisticRegression(C=best_c, max_iter=300).fit(a, y_train)
    return {
        "C": best_c, "held_out": held_scores, "train": 100.0 * model.score(a, y_train),
        "test": 100.0 * model.score(b, y_test),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="run directory of an MDN-net run (one hidden tap)")
    parser.add_argument("--data-root", default=None, help="folder holding the data sets (default: the run's)")
    parser.add_argument("--draws", type=int, nargs="+", default=[1], help="presentations summed per image")
    parser.add_argument("--penalties", type=float, nargs="+", default=[0.01, 0.1, 1.0], help="values of C to try")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    args = parser.parse_args(argv)

    loaded = load_run(args.run, args.data_root)
    config, dataset = loaded.config, loaded.dataset
    encoder = make_encoder(config.encoder or dataset.encoder, config.alpha)
    x_train, y_train = dataset.train.tensors[0], dataset.train.tensors[1].numpy()
    x_test, y_test = dataset.test.tensors[0], dataset.test.tensors[1].numpy()
    history = torch.load(Path(args.run) / "checkpoint.pt", map_location="cpu", weights_only=False).get("history") or []
    rows = []
    for draws in args.draws:
        start = time.perf_counter()
        c_train = hidden_counts(loaded.model, encoder, x_train, config.steps, draws, args.seed)
        c_test = hidden_counts(loaded.model, encoder, x_test, config.steps, draws, args.seed + 1)
        print(f"draws={draws}: counts {c_train.shape} in {time.perf_counter() - start:.0f} s", flush=True)
        probe = fit_probe(c_train, y_train, c_test, y_test, args.penalties, args.seed)
        probe.update(draws=draws, seconds=time.perf_counter() - start)
        print(f"draws={draws}: linear probe test {probe['test']:.2f} % (train {probe['train']:.2f} %, C={probe['C']:g})",
              flush=True)
        rows.append(probe)
    result = {
        "run": str(args.run), "network": loaded.network, "rule": config.rule, "neuron": config.neuron,
        "model_options": config.model_options, "steps": config.steps, "epochs": loaded.epoch,
        "net_test": 100.0 * history[-1]["test_accuracy"] if history else None,
        "net_best": 100.0 * max(r["test_accuracy"] for r in history) if history else None,
        "rows": rows, "torch": torch.__version__,
    }
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
        out.with_suffix(".md").write_text(report(result))
    print(report(result))
    return result


def report(r: dict) -> str:
    lines = [
        f"# Linear probe of the hidden code: {r['rule']} on {r['network']} ({r['neuron']}, {r['epochs']} epochs)",
        "",
        f"The net's own read-out: {r['net_test']:.2f} % on the test set after the last epoch (best {r['net_best']:.2f} %).",
        "",
        "| presentations of T steps summed | logistic probe test % | train % | C (held-out pick) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {row['draws']} (T = {r['steps']}) | {row['test']:.2f} | {row['train']:.2f} | {row['C']:g} |"
              for row in r["rows"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
