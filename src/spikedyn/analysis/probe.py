"""Linear probes of a trained net's layers: how much of the class each layer's spike counts carry.

For every layer with a spike tap (and for the encoded input) the spike counts over the window,
``c = sum_t S(t)`` flattened to one vector per sample, are read for a set of training samples and
the test samples, under the run's own encoder and ``T`` (augmentation off, normalisation kept).  A
multinomial logistic regression (scikit-learn, L2 penalty ``C`` picked on a held-out tenth of the
training samples, features standardised on the training samples) is fitted on the training counts
and scored on the test counts:

    acc_probe(l) = accuracy of argmax_k (W c_l + b)_k,   W, b = argmin CE + ||W||^2 / (2 C)

This is the best *linear* read-out of layer ``l``.  Beside it stands the net's own read-out on the
same test samples.  A probe above the net's own score says the output layer does not use all its
input carries (a read-out problem); a probe at or below it says the code is the limit.  Layers of
one net, or the same layer under two learning rules, compare directly (e.g. ``--rule brp`` against
``bptt``: how much class information each rule leaves in each hidden layer).

``draws > 1`` sums that many independent presentations of every sample (a longer look through the
same encoder).  Samples with one class label each are required (not frame labels or multi-hot).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from .runs import RunCurve, load_run, run_name

#: values of the logistic regression's C tried on the held-out tenth
DEFAULT_PENALTIES = (0.01, 0.1, 1.0)
#: largest feature matrix (all layers, training + test samples) held in memory, bytes
MAX_BYTES = 8 * 2**30


def check_penalties(penalties: Sequence[float]) -> list[float]:
    """The distinct values of ``C`` in increasing order; ``ValueError`` for none or one not above 0."""
    values = sorted({float(c) for c in penalties})
    if not values or values[0] <= 0:
        raise ValueError(f"the probe's penalties C must be numbers > 0, got {list(penalties)}")
    return values


@torch.no_grad()
def layer_counts(
    model, batcher, split: str, batch_size: int, generator: torch.Generator, limit: int | None = None,
    draws: int = 1, shuffle: bool = False, progress: bool = False,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """``(counts, labels, predictions)`` of up to ``limit`` samples of ``split`` (a random subset with
    ``shuffle``), encoded as :class:`~spikedyn.batching.Batcher` encodes them, augmentation off.

    ``counts``: ``{"input": [N, D], <tap layer name>: [N, F], ...}`` spike counts summed over the
    window and over ``draws`` presentations; ``labels`` ``[N]``; ``predictions`` ``[N]``: the net's
    own read-out (argmax of its output rate) on the first presentation.  ``progress``: a bar over the
    batches (on a terminal).
    """
    from tqdm.auto import tqdm

    from ..batching import device_generator
    from ..progress import bar_disabled
    from .silent import tap_layers

    if draws < 1:
        raise ValueError(f"draws must be >= 1 (presentations summed per sample), got {draws}")
    dataset = batcher.dataset
    if dataset.target != "class":
        raise ValueError(
            f"the probe needs one class label per sample; {dataset.name} has {dataset.target!r} targets"
        )
    names = ["input", *(layer.name for layer in tap_layers(model))]
    model.eval()
    x_all, y_all = batcher.split_tensors(split)[:2]
    n = len(x_all) if limit is None else min(limit, len(x_all))
    order = (torch.randperm(len(x_all), generator=generator) if shuffle else torch.arange(len(x_all)))[:n]
    encoding = device_generator(generator, batcher.device)
    counts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    predictions = []
    starts = range(0, n, batch_size)
    for start in tqdm(starts, desc=f"spike counts, {split}", disable=bar_disabled(progress), leave=False):
        idx = order[start:start + batch_size].to(x_all.device)
        x = x_all[idx].to(batcher.device)
        if batcher.augmentation is not None:  # the normalisation only, as the test samples get it
            x = batcher.augmentation(x, False, generator)
        totals: list[torch.Tensor] = []
        for draw in range(draws):
            encoded = batcher.encode(x, encoding)
            out = model(encoded)
            now = [layer.float().sum(0).flatten(1) for layer in (encoded, *out.taps)]
            totals = now if draw == 0 else [a + b for a, b in zip(totals, now)]
            if draw == 0:
                predictions.append(out.rate.argmax(1).cpu().numpy())
        for name, total in zip(names, totals):
            counts[name].append(total.cpu().numpy().astype(np.float32))
    labels = y_all[order].cpu().numpy()
    return {name: np.concatenate(parts) for name, parts in counts.items()}, labels, np.concatenate(predictions)


def fit_probe(
    c_train: np.ndarray, y_train: np.ndarray, c_test: np.ndarray, y_test: np.ndarray,
    penalties: Sequence[float] = DEFAULT_PENALTIES, seed: int = 0, on_fit: Callable[[float, float], None] | None = None,
) -> dict:
    """Logistic regression on standardised counts, ``C`` picked on a held-out tenth of the training
    samples and refitted on all of them: ``{"C", "held_out": {C: %}, "train": %, "test": %}``;
    ``on_fit(C, held-out %)`` is called after each trial fit."""
    from sklearn.linear_model import LogisticRegression

    penalties = check_penalties(penalties)
    mean, std = c_train.mean(0), c_train.std(0) + 1e-6
    a, b = (c_train - mean) / std, (c_test - mean) / std
    order = np.random.default_rng(seed).permutation(len(a))
    held, fit = order[: max(len(a) // 10, 1)], order[max(len(a) // 10, 1):]
    held_out = {}
    for c in penalties:
        model = LogisticRegression(C=c, max_iter=300).fit(a[fit], y_train[fit])
        held_out[c] = 100.0 * model.score(a[held], y_train[held])
        if on_fit is not None:
            on_fit(c, held_out[c])
    best = max(held_out, key=held_out.get)
    model = LogisticRegression(C=best, max_iter=300).fit(a, y_train)
    return {"C": best, "held_out": held_out, "train": 100.0 * model.score(a, y_train),
            "test": 100.0 * model.score(b, y_test)}


@dataclass
class LayerProbe(RunCurve):
    """A run's probes: one entry of ``layers`` per probed layer (``layer``, ``label``, ``features``, the
    chosen ``C``, ``held_out`` scores per ``C``, ``train`` and ``test`` accuracy in %), and ``own``: the
    net's own read-out on the same test samples (%)."""

    trained_steps: int = 0
    draws: int = 1
    train_samples: int = 0
    test_samples: int = 0
    own: float = 0.0
    layers: list[dict] = field(default_factory=list)

    def describe(self) -> str:
        return (f"{self.label}: {self.model} {self.network} on {self.dataset}, rule {self.rule}, epoch {self.epoch}; "
                f"probes fitted on {self.train_samples} training samples, scored on {self.test_samples} test samples "
                f"(T = {self.trained_steps}{f', {self.draws} presentations summed' if self.draws > 1 else ''})")

    def line(self, layer: dict) -> str:
        """A layer's probe as a line; a ``C`` picked at either end of the values tried is flagged."""
        tried = [float(c) for c in layer["held_out"]]
        edge = len(tried) > 1 and float(layer["C"]) in (min(tried), max(tried))
        return (f"  {layer['label']:<18} {layer['features']:7d} features  probe test {layer['test']:6.2f}%  "
                f"(train {layer['train']:.2f}%, C = {layer['C']:g}{', at the end of the range tried' if edge else ''})")

    def table(self) -> str:
        rows = [self.line(layer) for layer in self.layers]
        return "\n".join(rows + [f"  {'own read-out':<18} {'':7s}           test {self.own:6.2f}%"])


def probe_run(
    run: str | os.PathLike, data_root: str | None = None, device: str = "cpu", train_samples: int | None = 10_000,
    test_samples: int | None = None, draws: int = 1, penalties: Sequence[float] = DEFAULT_PENALTIES, seed: int = 0,
    batch_size: int | None = None, label: str | None = None, verbose: bool = False,
    on_layer: Callable[[dict], None] | None = None,
) -> LayerProbe:
    """Probe every tapped layer (and the input) of a run directory (or its ``checkpoint.pt``).

    ``train_samples``: a random subset of the training split to fit on (None: all of it);
    ``test_samples``: the first ones of the test split (None: all).  ``verbose`` prints the run's
    line and each layer's probe as it is fitted.
    """
    from ..batching import Batcher
    from .silent import tap_layers

    penalties = check_penalties(penalties)
    if draws < 1:
        raise ValueError(f"draws must be >= 1 (presentations summed per sample), got {draws}")
    for name, value in (("train_samples", train_samples), ("test_samples", test_samples)):
        if value is not None and value < 10:
            raise ValueError(f"{name} must be at least 10 (or all), got {value}")
    loaded = load_run(run, data_root, device, batch_size)
    config, dataset, model = loaded.config, loaded.dataset, loaded.model
    batcher = Batcher(dataset, config, loaded.device)
    taps = tap_layers(model)
    n_train = len(dataset.train) if train_samples is None else min(train_samples, len(dataset.train))
    n_test = len(dataset.test) if test_samples is None else min(test_samples, len(dataset.test))
    features = int(np.prod(dataset.feature_shape)) + sum(int(np.prod(t.shape)) for t in taps)
    need = 4 * features * (n_train + n_test)
    if need > MAX_BYTES:
        raise ValueError(
            f"the spike counts of {features} units for {n_train} + {n_test} samples would take "
            f"{need / 2**30:.1f} GiB; probe fewer samples (--train-samples, --test-samples)"
        )
    result = LayerProbe(
        run=str(run), label=label or run_name(run), model=config.model, network=loaded.network, rule=config.rule,
        dataset=config.dataset, epoch=loaded.epoch, trained_steps=int(config.steps), draws=draws,
        train_samples=n_train, test_samples=n_test,
    )
    if verbose:
        print(result.describe(), flush=True)
    generator = torch.Generator().manual_seed(seed)
    eval_batch = config.eval_batch_size
    train, y_train, _ = layer_counts(model, batcher, "train", eval_batch, generator, n_train, draws, shuffle=True,
                                     progress=verbose)
    test, y_test, own = layer_counts(model, batcher, "test", eval_batch, generator, n_test, draws, progress=verbose)
    result.own = 100.0 * float((own == y_test).mean())
    labels = {"input": "input", **{t.name: t.label for t in taps}}
    for key in train:
        def trial(c: float, score: float, label: str = labels[key]) -> None:
            print(f"    {label}: C = {c:g} scores {score:.2f}% on the held-out tenth", flush=True)

        fitted = fit_probe(train[key], y_train, test[key], y_test, penalties, seed, on_fit=trial if verbose else None)
        layer = {"layer": key, "label": labels[key], "features": int(train[key].shape[1]), **fitted}
        result.layers.append(layer)
        if verbose:
            print(result.line(layer), flush=True)
        if on_layer is not None:
            on_layer(layer)
    if verbose:
        print(f"  {'own read-out':<18} {'':7s}           test {result.own:6.2f}%", flush=True)
    return result
