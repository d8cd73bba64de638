"""Silent neurons of a trained network as the input spike fraction grows (BRP paper section III-G, Fig. 8).

A hidden neuron is *silent* for a sample when it emits no spike during the whole window of
``T`` steps.  For every hidden layer with a :class:`~spikedyn.layers.SpikeTap` (spikes read
before any pooling, spec brp.md section 3) the analysis reports the fraction of its neurons that
are silent, averaged over test samples, at a series of *input spike fractions* ``f`` (the
fraction of input units that spike per step, 0 to 40 % in the paper).

**How the input spike fraction is set.**  The spec's suggestion [A] is to sweep the Bernoulli
encoder's scale ``alpha`` (spike when ``p > alpha u``, ``u ~ U[0, 1)``) until the measured
fraction reaches each target.  That cannot cover the paper's range: with any ``alpha`` a unit
whose value is 0 never spikes, so the fraction is capped by the share of non-zero input
values (MNIST: about 19 % of the pixels, so 40 % is out of reach), and one global ``alpha``
gives every sample a different fraction (a sparse digit spikes less than a dense one), so a
point of the curve mixes input densities.  The default, ``method="rank"``, therefore controls
the fraction *directly and exactly*: at every step and for every sample exactly
``k = round(f N)`` of the ``N`` input units spike, namely the ``k`` largest of ``p / u`` with a
fresh ``u ~ U(0, 1]`` per unit.  Given the ``k``-th largest value ``tau``, a unit spikes
exactly when ``p > tau u``, i.e. this *is* the model's Bernoulli encoder with ``alpha``
solved per sample and step so that the fraction is exactly ``f``; brighter units still spike
more often.  When ``k`` exceeds the number of units with ``p > 0`` the remaining spikes fall on
zero-valued units chosen at random ("background" spikes; their share of all input spikes is
reported), or, with ``fill_background=False``, the sample keeps fewer spikes and the measured
fraction falls short.  ``method="alpha"`` is the spec's sweep: one global ``alpha`` per target,
found by bisection on the expected fraction ``mean(clip(p / alpha, 0, 1))`` over the evaluated
samples, then the run's encoder draws the spikes; a target above the reachable maximum uses the
limit ``alpha -> 0`` (every unit with ``p > 0`` spikes) and is flagged ``reachable = False``.
Either way each point records the input fraction actually measured on the spikes fed to the
network (mean, and the per-sample minimum and maximum).

The input values ``p`` are what the run's encoder reads: a static sample's values at every
step, a sequence sample's stored value of step ``t`` (the data set, ``T`` and the sample
order come from the run's own :func:`~spikedyn.batching.run_dataset` and
:class:`~spikedyn.batching.Batcher`).  A run trained on analog inputs (the ``direct`` encoder, or
stored sequence values without ``--encoder rate``) is probed with binary spikes all the same;
the result's ``run_encoder`` says so.

Usage::

    sweep = silent_sweep_run("runs/mnist-brp", fractions=(0, 0.1, 0.2, 0.3, 0.4), samples=1000)
    print(sweep.table())
    sweep.to_dict()          # JSON-ready; spikedyn.plots.plot_silent_neurons(sweep, "silent.png")

or ``spikedyn analyze silent RUN``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from typing import Sequence

import torch
from torch import Tensor, nn

from ..encoding import make_encoder, to_time_major
from ..layers.taps import SpikeTap

#: the paper's sweep: 0 to 40 % input spikes in steps of 5 %
DEFAULT_FRACTIONS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(9))

METHODS = ("rank", "alpha")

#: BRP paper section III-G: silent fraction at 40 % input spikes, per task and layer kind
#: (``conv``: the spiking convolution layer "CONV"; ``fc``: the hidden layer "FC1000").
PAPER_SILENT_AT_40: dict[str, dict] = {
    "mnist": {"task": "MNIST", "input_fraction": 0.40, "layers": {"conv": ("CONV", 0.5326), "fc": ("FC1000", 0.4852)}},
    "tidigits": {"task": "TIDigits", "input_fraction": 0.40,
                 "layers": {"conv": ("CONV", 0.7550), "fc": ("FC1000", 0.4932)}},
}

#: data sets whose runs are compared with a paper task (FSDD stands in for TIDigits)
PAPER_TASK_OF_DATASET = {"mnist": "mnist", "tidigits": "tidigits", "fsdd": "tidigits"}


@dataclass(frozen=True)
class TapLayer:
    """A hidden layer read through a SpikeTap: its module name, display label, kind and neuron shape."""

    name: str
    label: str
    kind: str  # "conv" (neurons on a map) or "fc" (a vector of neurons)
    shape: tuple[int, ...]

    @property
    def neurons(self) -> int:
        return math.prod(self.shape)

    def to_dict(self) -> dict:
        return {"name": self.name, "label": self.label, "kind": self.kind, "shape": list(self.shape),
                "neurons": self.neurons}


def tap_layers(model: nn.Module) -> list[TapLayer]:
    """The model's hidden layers with a tap, in tap order (= the order of ``NetOutput.taps``).

    The label is ``CONV CxHxW`` for a tap on a feature map and ``FC n`` for a vector of neurons;
    a label that repeats gets ``#2``, ``#3``... .
    """
    layers: list[TapLayer] = []
    seen: dict[str, int] = {}
    for name, module in model.named_modules():
        if not isinstance(module, SpikeTap):
            continue
        kind = "conv" if len(module.shape) > 1 else "fc"
        label = f"{kind.upper()} {'x'.join(str(s) for s in module.shape)}"
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label} #{seen[label]}"
        owner = name.rsplit(".", 1)[0] if name.endswith(".tap") else name
        layers.append(TapLayer(owner, label, kind, tuple(module.shape)))
    return layers


def silent_mask(spikes: Tensor) -> Tensor:
    """``[T, B, *shape]`` spikes -> ``[B, N]`` boolean: neuron emitted no spike in the whole window."""
    if spikes.dim() < 3:
        raise ValueError(f"expected spikes [T, B, *shape], got shape {tuple(spikes.shape)}")
    return spikes.flatten(2).sum(0) == 0


def silent_fraction(spikes: Tensor) -> Tensor:
    """Per sample, the fraction of the layer's neurons that never spike: ``[T, B, *shape] -> [B]``."""
    return silent_mask(spikes).float().mean(1)


@torch.no_grad()
def silent_fractions(model: nn.Module, x: Tensor) -> list[Tensor]:
    """Run ``model`` on the input ``x`` ``[T, B, ...]``; per tap, each sample's silent fraction ``[B]``."""
    out = model(x)
    return [silent_fraction(s) for s in out.taps]


# ---------------------------------------------------------------------------------------------
# Setting the input spike fraction
# ---------------------------------------------------------------------------------------------
def _uniform(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """``U(0, 1]`` draws, made on the CPU generator (reproducible across devices), then moved."""
    return (1.0 - torch.rand(tuple(shape), generator=generator)).to(device)


def rank_code(
    p: Tensor, fraction: float, generator: torch.Generator | None = None, fill_background: bool = True,
) -> Tensor:
    """Spikes with exactly ``round(fraction N)`` of the ``N`` units on per step and sample.

    ``p`` ``[T, B, *units]`` are the values the encoder reads.  The spiking units are the
    largest ``p / u`` (``u ~ U(0, 1]`` fresh per unit): the Bernoulli rule ``p > alpha u`` with
    ``alpha`` set per step and sample so that the count is exact.  Units with ``p <= 0`` rank
    below all others, in random order; with ``fill_background=False`` they never spike (the
    count is then capped by the number of positive units).  Returns float 0/1 of ``p``'s shape.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"input spike fraction must be in [0, 1], got {fraction}")
    flat = p.flatten(2)
    n = flat.shape[2]
    k = int(round(fraction * n))
    spikes = torch.zeros_like(flat, dtype=torch.float32)
    if k > 0:
        u = _uniform(flat.shape, generator, flat.device)
        background = _uniform(flat.shape, generator, flat.device)
        positive = flat > 0
        key = torch.where(positive, flat.float() / u, -background)
        index = key.topk(k, dim=2).indices
        spikes.scatter_(2, index, 1.0)
        if not fill_background:
            spikes.mul_(positive)
    return spikes.reshape(p.shape)


def expected_fraction(p: Tensor, alpha: float) -> float:
    """Expected input spike fraction of the Bernoulli encoder ``1[p > alpha u]``: ``mean(clip(p / alpha, 0, 1))``."""
    if alpha <= 0:
        return float((p > 0).float().mean())
    return float((p.float() / alpha).clamp(0.0, 1.0).mean())


def alpha_for_fraction(p: Tensor, fraction: float, iterations: int = 100) -> tuple[float, bool]:
    """``(alpha, reachable)``: the encoder scale whose expected spike fraction over ``p`` is ``fraction``.

    ``fraction = 0`` gives ``alpha = inf`` (no spikes).  A fraction above the share of units
    with ``p > 0`` (the most any ``alpha`` gives) returns ``(0.0, False)``: the limit
    ``alpha -> 0`` in which every positive unit spikes.  Otherwise geometric bisection.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"input spike fraction must be in [0, 1], got {fraction}")
    if fraction == 0.0:
        return math.inf, True
    p = p.float()
    most = expected_fraction(p, 0.0)
    if fraction >= most:
        return 0.0, math.isclose(fraction, most, rel_tol=1e-6, abs_tol=1e-9)
    positive = p[p > 0]
    # g(alpha) = mean(clip(p / alpha, 0, 1)) falls from `most` (alpha -> 0) to 0; bracket, then bisect
    hi = max(float(positive.max()), float(p.clamp_min(0).mean()) / fraction)
    lo = float(positive.min()) * 1e-3
    while expected_fraction(p, lo) < fraction:  # pragma: no cover - only for extreme value ranges
        lo *= 1e-3
    for _ in range(iterations):
        mid = math.sqrt(lo * hi)
        if expected_fraction(p, mid) > fraction:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi), True


def alpha_code(p: Tensor, alpha: float, generator: torch.Generator | None = None) -> Tensor:
    """The Bernoulli rate encoder ``1[p > alpha u]`` drawn once per value of ``p`` ``[T, B, ...]``.

    ``alpha = inf`` gives no spikes; ``alpha = 0`` every unit with ``p > 0`` (the limit).
    """
    if math.isinf(alpha):
        return torch.zeros_like(p, dtype=torch.float32)
    if alpha <= 0:
        return (p > 0).float()
    encoder = make_encoder("rate", alpha)
    if p.device.type == "cpu":
        return encoder(p.float(), 1, generator=generator)[0].float()
    return encoder(p.float().cpu(), 1, generator=generator)[0].float().to(p.device)


# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------
@dataclass
class SilentPoint:
    """One input spike fraction: what was asked, what was fed, and the silent fraction per layer."""

    target: float
    input_fraction: float  # measured: mean over samples, steps and units of the input spikes
    input_fraction_min: float  # per-sample fraction (mean over steps), smallest and largest
    input_fraction_max: float
    background: float  # share of the input spikes on units whose value is <= 0
    silent: dict[str, float]  # layer label -> mean over samples of the fraction of silent neurons
    rate: dict[str, float]  # layer label -> mean firing rate (spikes per neuron and step)
    accuracy: float | None  # the data set's metric (SilentSweep.metric) on the probed samples
    alpha: float | None = None  # method "alpha": the encoder scale used (inf: none, 0: the limit)
    reachable: bool = True

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        if d["alpha"] is not None and math.isinf(d["alpha"]):
            d["alpha"] = "inf"
        return d


@dataclass
class SilentSweep:
    """Silent-neuron fractions of one network over a sweep of input spike fractions."""

    layers: list[TapLayer]
    points: list[SilentPoint]
    method: str
    samples: int
    steps: int
    dataset: str = ""
    run: str = ""
    model: str = ""
    network: str = ""
    rule: str = ""
    epoch: int | None = None
    run_encoder: str = ""
    seed: int = 0
    fill_background: bool = True
    metric: str = "accuracy"
    notes: list[str] = field(default_factory=list)

    @property
    def paper(self) -> dict | None:
        """The paper's 40 % values for this run's task (MNIST, TIDigits/FSDD), else None."""
        task = PAPER_TASK_OF_DATASET.get(self.dataset.lower())
        return PAPER_SILENT_AT_40[task] if task else None

    def to_dict(self) -> dict:
        paper = self.paper
        return {
            "analysis": "silent neurons (BRP paper section III-G, Fig. 8)",
            "run": self.run, "dataset": self.dataset, "model": self.model, "network": self.network,
            "rule": self.rule, "epoch": self.epoch, "steps": self.steps, "samples": self.samples,
            "method": self.method, "fill_background": self.fill_background, "run_encoder": self.run_encoder,
            "seed": self.seed, "metric": self.metric, "notes": list(self.notes),
            "layers": [layer.to_dict() for layer in self.layers],
            "points": [point.to_dict() for point in self.points],
            "paper_at_40": None if paper is None else {
                "task": paper["task"], "input_fraction": paper["input_fraction"],
                "silent": {label: value for label, value in paper["layers"].values()},
            },
        }

    def table(self) -> str:
        """A plain-text table: one row per input fraction, one silent-% column per layer."""
        labels = [layer.label for layer in self.layers]
        head = ["target %", "input %", "per-sample %", "backgr. %"] + [f"silent {lab} %" for lab in labels] + [f"{self.metric} %"]
        rows = []
        for pt in self.points:
            flag = "" if pt.reachable else " (capped)"
            rows.append(
                [f"{100 * pt.target:.1f}", f"{100 * pt.input_fraction:.2f}{flag}",
                 f"{100 * pt.input_fraction_min:.1f}-{100 * pt.input_fraction_max:.1f}",
                 f"{100 * pt.background:.2f}"]
                + [f"{100 * pt.silent[lab]:.2f}" for lab in labels]
                + ["-" if pt.accuracy is None else f"{100 * pt.accuracy:.2f}"]
            )
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
        lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths))]
        lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
        paper = self.paper
        if paper is not None:
            values = ", ".join(f"{name} {100 * v:.2f} %" for name, v in paper["layers"].values())
            lines.append(f"paper ({paper['task']}, {100 * paper['input_fraction']:.0f} % input spikes): {values}")
        return "\n".join(lines)


def _input_values(dataset, x: Tensor, steps: int) -> Tensor:
    """What the run's encoder reads, time-major ``[T, B, ...]`` (static: the sample at every step)."""
    if dataset.kind == "sequence":
        return to_time_major(x[:, :steps].float())
    return x.float().unsqueeze(0).expand(steps, *x.shape)


def _describe_encoder(batcher) -> str:
    if batcher.dataset.kind == "sequence":
        if batcher.sequence_encoder is not None:
            return f"{batcher.sequence_encoder!r} on the stored sequence values"
        return "stored sequence values fed as they are (analog; the sweep feeds binary spikes instead)"
    if type(batcher.encoder).__name__ == "Direct":
        return "Direct() (analog input; the sweep feeds binary spikes instead)"
    return repr(batcher.encoder)


@torch.no_grad()
def silent_sweep(
    model: nn.Module, dataset, config, fractions: Sequence[float] = DEFAULT_FRACTIONS, samples: int | None = 1000,
    method: str = "rank", fill_background: bool = True, batch_size: int = 50, seed: int = 0,
    device: str | torch.device = "cpu",
) -> SilentSweep:
    """Silent-neuron fractions of ``model`` per tapped layer at each input spike fraction.

    ``dataset``/``config``: the run's data set and :class:`~spikedyn.train.TrainConfig` (for
    ``T``, the encoder and the sample layout, through :class:`~spikedyn.batching.Batcher`).
    ``samples`` test samples (``None`` or ``<= 0``: the whole test split) are drawn once without
    replacement with ``seed`` and used at every fraction; each fraction draws its spikes from a
    generator seeded with ``(seed, fraction index)``.  ``method``: ``"rank"`` (exact fraction,
    the default) or ``"alpha"`` (one encoder scale per fraction), see the module docstring.
    """
    from ..metrics import make_metric
    from ..batching import Batcher

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    fractions = [float(f) for f in fractions]
    if not fractions:
        raise ValueError("give at least one input spike fraction")
    bad = [f for f in fractions if not 0.0 <= f <= 1.0]
    if bad:
        raise ValueError(f"input spike fractions must lie in [0, 1], got {bad}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    layers = tap_layers(model)
    if not layers:
        raise ValueError(
            f"{type(model).__name__} has no SpikeTap, so it has no hidden layer to analyse; "
            "the analysis reads the spikes of layers followed by a SpikeTap"
        )
    device = torch.device(device)
    batcher = Batcher(dataset, config, device)
    x_all, y_all = dataset.test.tensors[:2]
    total = len(x_all)
    count = total if samples is None or samples <= 0 else min(int(samples), total)
    pick = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:count].sort().values
    x_all, y_all = x_all[pick], y_all[pick]
    steps = batcher.steps
    model = model.to(device)
    was_training = model.training
    model.eval()
    labels = [layer.label for layer in layers]

    alphas: list[tuple[float, bool] | None] = [None] * len(fractions)
    if method == "alpha":
        values = _input_values(dataset, x_all, steps) if dataset.kind == "sequence" else x_all.float()
        alphas = [alpha_for_fraction(values, f) for f in fractions]

    points: list[SilentPoint] = []
    try:
        for index, target in enumerate(fractions):
            generator = torch.Generator().manual_seed(seed * 1_000_003 + 17 * index + 1)
            metric = make_metric(dataset.metric, config.batch_size)
            silent_sum = [0.0] * len(layers)
            rate_sum = [0.0] * len(layers)
            spikes_on, spikes_background, units_seen = 0.0, 0.0, 0
            lowest, highest = math.inf, -math.inf
            for start in range(0, count, batch_size):
                x, y = x_all[start : start + batch_size], y_all[start : start + batch_size]
                p = _input_values(dataset, x, steps).to(device)
                if method == "rank":
                    spikes = rank_code(p, target, generator, fill_background)
                else:
                    spikes = alpha_code(p, alphas[index][0], generator)
                per_sample = spikes.flatten(2).mean(2).mean(0)  # [B]
                lowest = min(lowest, float(per_sample.min()))
                highest = max(highest, float(per_sample.max()))
                spikes_on += float(spikes.sum())
                spikes_background += float((spikes * (p <= 0)).sum())
                units_seen += spikes.numel()
                out = model(spikes)
                for i, tap in enumerate(out.taps):
                    silent_sum[i] += float(silent_fraction(tap).sum())
                    rate_sum[i] += float(tap.float().mean()) * len(x)
                metric.update(out.rate, y.to(device))
            alpha, reachable = alphas[index] if alphas[index] is not None else (None, True)
            measured = spikes_on / units_seen
            if method == "rank":
                reachable = math.isclose(measured, round(target * _units(p)) / _units(p), abs_tol=1e-9)
            points.append(SilentPoint(
                target=target, input_fraction=measured, input_fraction_min=lowest, input_fraction_max=highest,
                background=spikes_background / spikes_on if spikes_on else 0.0,
                silent={lab: silent_sum[i] / count for i, lab in enumerate(labels)},
                rate={lab: rate_sum[i] / count for i, lab in enumerate(labels)},
                accuracy=metric.value(), alpha=alpha, reachable=reachable,
            ))
    finally:
        model.train(was_training)
    notes = []
    if method == "rank" and fill_background and any(pt.background > 0 for pt in points):
        notes.append("some targets exceed the share of positive input values; the rest of the spikes fall on "
                     "zero-valued units chosen at random (column 'background')")
    if any(not pt.reachable for pt in points):
        notes.append("some targets are out of reach of the encoder; their measured input fraction falls short")
    return SilentSweep(
        layers=layers, points=points, method=method, samples=count, steps=steps, dataset=dataset.name,
        run_encoder=_describe_encoder(batcher), seed=seed, fill_background=fill_background,
        metric=dataset.metric, notes=notes,
    )


def _units(p: Tensor) -> int:
    return math.prod(p.shape[2:])


def silent_sweep_run(
    run: str | os.PathLike, fractions: Sequence[float] = DEFAULT_FRACTIONS, samples: int | None = 1000,
    method: str = "rank", fill_background: bool = True, batch_size: int = 50, seed: int = 0,
    data_root: str | None = None, device: str = "cpu",
) -> SilentSweep:
    """:func:`silent_sweep` of a run directory (or its ``checkpoint.pt``) on its own test data."""
    from ..batching import run_dataset
    from ..train import load_checkpoint

    model, config, ckpt = load_checkpoint(run, device=str(device))
    config = replace(config, progress=False)
    dataset = run_dataset(config, data_root)
    sweep = silent_sweep(
        model, dataset, config, fractions=fractions, samples=samples, method=method,
        fill_background=fill_background, batch_size=batch_size, seed=seed, device=device,
    )
    mc = getattr(model, "config", {}) or {}
    sweep.run = str(run)
    sweep.model = config.model
    sweep.network = mc.get("topology") or "-".join(str(mc[k]) for k in ("inputs", "hidden", "classes") if k in mc)
    sweep.rule = config.rule
    sweep.epoch = int(ckpt.get("epoch", 0))
    return sweep
