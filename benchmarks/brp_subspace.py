"""Where the label projection leaves a one-hidden-layer net: the subspace its hidden weights learn.

Under TP_BRP (``--rule brp``) hidden neuron ``i`` of a fully connected layer gets the teaching
signal ``G_i = B[y, i]``, fixed per class (spec brp.md section 4).  Its update
``dW_i = sum_b B[y_b, i] s'_ib x_b`` is a combination, with class-dependent weights, of the
inputs, so every row of the learned change ``dW = W - W_0`` is drawn toward the span of a few
class-discriminating directions of pixel space, shared by all neurons.  If that span has about
``C`` dimensions, the hidden layer (and so the read-out) sees the image mostly through ``C``
numbers ``z = V_k x``, and no read-out can beat the best classifier of ``z``.

This script measures that on a finished run of the MDN three-layer net (``model.fc1``):

* the singular values of ``dW`` (the initial weights are rebuilt from the run's seed, as the
  trainer drew them) and the share of ``||dW||_F^2`` in the top ``k`` directions;
* ``||dW||_F / ||W_0||_F``: how far training moved the weights from the random start;
* how much of each hidden neuron's spike count is fixed by the class: per neuron, the share of the
  variance of its spike count over test images that lies between the class means (eta^2,
  1 = the count depends on the class alone, a fixed code per class as the label projection pushes
  for), and the share of neuron-sample pairs that are silent or fire at the neuron's most;
* test accuracy of classifiers (scikit-learn) trained on the projections ``z = V_k x`` of the
  training images onto the top ``k`` right singular vectors of ``dW``: multinomial logistic
  regression (linear) and a one-hidden-layer MLP (a strong non-linear read-out of ``z``); for
  comparison the same classifiers on the top ``k`` principal components of the pixels (an
  unsupervised subspace of the same size) and on all 784 pixels.

    python benchmarks/brp_subspace.py RUN --data-root DATA --out benchmarks/results/brp_subspace

The pixels are the values the run's encoder turns into spikes (MNIST in [0, 1]).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from spikedyn.encoding import make_encoder
from spikedyn.batching import run_dataset
from spikedyn.train import build_model, load_checkpoint


def initial_hidden_weights(config, dataset) -> torch.Tensor:
    """``fc1.weight`` as the trainer drew it: ``torch.manual_seed(seed)`` then the model builder."""
    torch.manual_seed(config.seed)
    return build_model(config, dataset).fc1.weight.detach().clone()


def classifier_scores(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray,
                      seed: int) -> dict[str, float]:
    """Test accuracy (%) of a logistic regression and of an MLP (500 ReLU units, Adam, early stopping) on ``z``."""
    mean, std = z_train.mean(0), z_train.std(0) + 1e-8
    a, b = (z_train - mean) / std, (z_test - mean) / std
    linear = LogisticRegression(max_iter=500).fit(a, y_train)
    mlp = MLPClassifier(hidden_layer_sizes=(500,), max_iter=60, early_stopping=True, random_state=seed).fit(a, y_train)
    return {"logistic": 100.0 * linear.score(b, y_test), "mlp": 100.0 * mlp.score(b, y_test)}


@torch.no_grad()
def hidden_counts(model, config, encoding: str, x: torch.Tensor, seed: int, batch: int = 500) -> torch.Tensor:
    """Spike counts ``[B, N]`` of the hidden layer (the model's first tap) over ``config.steps`` steps,
    the images ``x`` ``[B, 784]`` coded by the encoder ``encoding`` (``rate``: Bernoulli, fresh each step) at
    the run's alpha."""
    model.eval()
    encoder = make_encoder(encoding, config.alpha)
    generator = torch.Generator().manual_seed(seed)
    counts = []
    for start in range(0, len(x), batch):
        spikes = encoder(x[start:start + batch].float(), config.steps, generator)
        counts.append(model(spikes.float()).taps[0].flatten(2).sum(0))
    return torch.cat(counts)


#: half-widths of the rectangular surrogate window whose open share is reported (the neurons' own: 0.5)
WINDOWS = (0.05, 0.1, 0.25, 0.5, 1.0)


@torch.no_grad()
def membrane_stats(model, config, encoding: str, x: torch.Tensor, seed: int, batch: int = 500) -> dict:
    """Where the hidden layer's membrane and input lie on the test images ``x`` ``[B, 784]``.

    * ``window_open``: for each half-width ``w`` of :data:`WINDOWS`, the share of neuron-steps with
      ``|V_t - V_th| < w``, where a rectangular surrogate of that half-width passes a gradient;
    * ``input_saturated`` (neurons with a sigmoid input ``I = sigmoid(z)`` only): the share of
      neuron-steps with ``|z| > 4``, where ``sigmoid'(z) < 0.018`` (0.25 at most), and the mean of
      ``sigmoid'(z)``: how far the input function itself stops the hidden layer's gradient.

    The same encoder draws as :func:`hidden_counts` (same seed); V from the neuron's per-step reference run.
    """
    model.eval()
    neuron = model.neuron1
    encoder = make_encoder(encoding, config.alpha)
    generator = torch.Generator().manual_seed(seed)
    inside = dict.fromkeys(WINDOWS, 0)
    saturated, slope, total = 0, 0.0, 0
    sigmoid_input = getattr(neuron, "input_fn", None) == "sigmoid"
    for start in range(0, len(x), batch):
        spikes = encoder(x[start:start + batch].float(), config.steps, generator).float().flatten(2)
        z = model.fc1(spikes)
        v = neuron.run(z, record=True).traces["v"]
        distance = (v - neuron.v_th).abs()
        for w in WINDOWS:
            inside[w] += int((distance < w).sum())
        if sigmoid_input:
            saturated += int((z.abs() > 4).sum())
            i = torch.sigmoid(z)
            slope += float((i * (1 - i)).double().sum())
        total += v.numel()
    out = {"window_open": {str(w): inside[w] / total for w in WINDOWS}}
    if sigmoid_input:
        out["input_saturated"] = saturated / total
        out["mean_sigmoid_slope"] = slope / total
    return out


def class_code_share(counts: torch.Tensor, labels: torch.Tensor, classes: int) -> dict[str, float]:
    """Median and mean over active neurons of eta^2 = between-class variance / total variance of the
    spike count, and the shares of neuron-sample pairs silent (0 spikes) or at the neuron's maximum."""
    counts = counts.double()
    total = counts.var(0, unbiased=False)
    means = torch.stack([counts[labels == c].mean(0) for c in range(classes)])
    weights = torch.tensor([(labels == c).double().mean() for c in range(classes)], dtype=torch.float64)
    between = (weights[:, None] * (means - counts.mean(0)) ** 2).sum(0)
    active = total > 0
    eta2 = between[active] / total[active]
    return {
        "active_neurons": int(active.sum()),
        "eta2_median": float(eta2.median()),
        "eta2_mean": float(eta2.mean()),
        "silent_share": float((counts == 0).double().mean()),
        "at_max_share": float((counts == counts.max(0).values).double()[:, active].mean()),
    }


def with_ext(path: Path, ext: str) -> Path:
    """``path`` with the ending ``ext``: ``OUT`` -> ``OUT.md``, ``OUT.json`` -> ``OUT.md``; a name with a dot
    in it keeps it (``window0.1`` -> ``window0.1.md``, where ``with_suffix`` would cut ``.1``)."""
    if path.suffix in (".json", ".md"):
        return path.with_suffix(ext)
    return path.parent / (path.name + ext)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="run directory (or checkpoint.pt) of an MDN-net run; with --report-only: OUT.json")
    parser.add_argument("--data-root", default=None, help="folder holding the data sets (default: the run's)")
    parser.add_argument("--dims", type=int, nargs="+", default=[10, 20, 50], help="subspace sizes k")
    parser.add_argument("--seed", type=int, default=0, help="seed of the classifiers")
    parser.add_argument("--out", default=None, help="write OUT.md and OUT.json")
    parser.add_argument("--report-only", action="store_true", help="rewrite OUT.md from the results file RUN")
    args = parser.parse_args()
    if args.report_only:
        result = json.loads(Path(args.run).read_text())
        with_ext(Path(args.out) if args.out else Path(args.run).with_suffix(""), ".md").write_text(report(result))
        return

    model, config, ckpt = load_checkpoint(args.run)
    if not hasattr(model, "fc1"):
        raise SystemExit(f"{args.run}: not an MDN three-layer net (no fc1); this analysis reads its hidden layer")
    dataset = run_dataset(config, args.data_root)
    w = model.fc1.weight.detach().double()
    w0 = initial_hidden_weights(config, dataset).double()
    dw = w - w0
    _, s, vh = torch.linalg.svd(dw, full_matrices=False)
    energy = (s**2).cumsum(0) / (s**2).sum()

    x_train = dataset.train.tensors[0].reshape(len(dataset.train), -1).double().numpy()
    y_train = dataset.train.tensors[1].numpy()
    x_test = dataset.test.tensors[0].reshape(len(dataset.test), -1).double().numpy()
    y_test = dataset.test.tensors[1].numpy()
    if y_train.ndim > 1:
        y_train, y_test = y_train.argmax(1), y_test.argmax(1)

    counts = hidden_counts(model, config, config.encoder or dataset.encoder, torch.from_numpy(x_test), args.seed)
    code = class_code_share(counts, torch.from_numpy(y_test), dataset.num_classes)
    print(f"hidden spike counts on the test images: {code}", flush=True)
    membrane = membrane_stats(model, config, config.encoder or dataset.encoder, torch.from_numpy(x_test), args.seed)
    print(f"hidden membrane and input on the test images: {membrane}", flush=True)
    history = ckpt.get("history") or []
    net_score = 100.0 * history[-1]["test_accuracy"] if history else None
    rows = []
    start = time.perf_counter()
    for k in args.dims:
        v = vh[:k].numpy()
        learned = classifier_scores(x_train @ v.T, y_train, x_test @ v.T, y_test, args.seed)
        pca = PCA(n_components=k, random_state=args.seed).fit(x_train)
        unsupervised = classifier_scores(pca.transform(x_train), y_train, pca.transform(x_test), y_test, args.seed)
        rows.append({"k": k, "energy_share": float(energy[k - 1]), "learned": learned, "pca": unsupervised})
        print(f"k={k}: {100 * float(energy[k - 1]):.1f} % of ||dW||^2; learned subspace {learned}; PCA {unsupervised}",
              flush=True)
    pixels = classifier_scores(x_train, y_train, x_test, y_test, args.seed)
    result = {
        "run": str(args.run),
        "command": (f"spikedyn train --dataset {config.dataset} --rule {config.rule} --neuron {config.neuron} "
                    f"--hidden {config.hidden} --epochs {config.epochs} --lr {config.lr} --lr-step {config.lr_step} "
                    f"--seed {config.seed}" + "".join(f" --surrogate {a}" for a in config.surrogate)),
        "rule": config.rule,
        "neuron": config.neuron,
        "hidden": int(w.shape[0]),
        "epochs": len(history),
        "net_test_accuracy": net_score,
        "relative_change": float(dw.norm() / w0.norm()),
        "steps": config.steps,
        "class_code": code,
        "membrane": membrane,
        "surrogate": list(config.surrogate),
        "singular_values_top20": [float(v) for v in s[:20]],
        "rows": rows,
        "pixels": pixels,
        "seconds": time.perf_counter() - start,
        "torch": torch.__version__,
    }
    print(json.dumps(result, indent=1))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with_ext(out, ".json").write_text(json.dumps(result, indent=1) + "\n")
        with_ext(out, ".md").write_text(report(result))


def report(r: dict) -> str:
    lines = [
        f"# The hidden weights' learned subspace: {r['rule']} on the MDN net ({r['hidden']} {r['neuron']} neurons)",
        "",
        f"The run: `{r.get('command', r['run'])}`; {r['epochs']} epochs, the net's test accuracy "
        f"{r['net_test_accuracy']:.2f} %. "
        f"Training moved the hidden weights by ||dW|| / ||W_0|| = {r['relative_change']:.2f}.",
        "",
        f"Hidden spike counts over T = {r['steps']} steps on the test images: the class explains "
        f"{r['class_code']['eta2_median']:.2f} of a neuron's count variance (median over the "
        f"{r['class_code']['active_neurons']} neurons that vary; mean {r['class_code']['eta2_mean']:.2f}); "
        f"{100 * r['class_code']['silent_share']:.1f} % of neuron-image pairs are silent and "
        f"{100 * r['class_code']['at_max_share']:.1f} % at the neuron's largest count.",
        "",
    ]
    if "membrane" in r:  # results of the seventeenth session on
        m = r["membrane"]
        opens = ", ".join(f"{100 * share:.1f} % for w = {w}" for w, share in m["window_open"].items())
        lines += [f"Hidden membrane on the test images: |V - V_th| < w (where a rectangular surrogate of half-width w "
                  f"passes a gradient) in {opens} of the neuron-steps."]
        if "input_saturated" in m:
            lines[-1] += (f" The sigmoid input is saturated (|z| > 4) in {100 * m['input_saturated']:.1f} % of them; "
                          f"mean sigmoid'(z) {m['mean_sigmoid_slope']:.4f} (0.25 at most).")
        lines.append("")
    lines += [
        "| k | share of ‖dW‖² in the top k directions | logistic on z = V_k x | MLP on z | logistic on top-k PCA | MLP on top-k PCA |",
        "|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        lines.append(
            f"| {row['k']} | {100 * row['energy_share']:.1f} % | {row['learned']['logistic']:.2f} | "
            f"{row['learned']['mlp']:.2f} | {row['pca']['logistic']:.2f} | {row['pca']['mlp']:.2f} |"
        )
    lines += [
        "",
        f"All 784 pixels: logistic {r['pixels']['logistic']:.2f} %, MLP {r['pixels']['mlp']:.2f} %.",
        "",
        "Top singular values of dW: " + ", ".join(f"{v:.2f}" for v in r["singular_values_top20"]),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
