"""Noise robustness of a trained run (NRR-SNN, spec nrr.md section 5; paper Figs. 6-7).

The test input is corrupted at every step by multiplicative noise of proportion ``p``
(:func:`~spikedyn.layers.multiplicative_noise`, ``x~_t = x_t (1 + p xi_t)``, ``xi = +-1``) and the
run's score is measured for each ``p`` (default 0, 10, ..., 50 %).  For a run trained on clean
data ("train clean") and a run trained with ``input_noise = p`` ("train noisy", model option of
``nrr``)::

    RobustRatio(p) = Acc(train clean, test noisy p) / Acc(train noisy p, test noisy p)

Each level draws its noise from ``torch.Generator().manual_seed(seed)``, so a sweep is
reproducible and every run of a comparison sees the same noise signs for the same data.  Any
model works; a per-step read-out is scored by frame accuracy with the per-sample accuracy beside
it (:mod:`spikedyn.readout`).  A conv block that convolves a static image once
(``static=True``) convolves every step during the sweep, since noisy steps differ.
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch
from torch import Tensor, nn

from ..layers.noise import check_noise_level, multiplicative_noise
from .runs import RunCurve, load_run

#: the paper's noise proportions: 0 .. 50 %
DEFAULT_LEVELS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


class NoisyInput(nn.Module):
    """``model(x (1 + p xi))``: the wrapped model on noisy input, noise drawn from ``generator``."""

    def __init__(self, model: nn.Module, p: float, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.model = model
        self.p = check_noise_level(p)
        self.generator = generator

    @property
    def readout_kind(self) -> str:
        """The wrapped model's read-out (so the trainer's :func:`~spikedyn.train.evaluate` scores it alike)."""
        return getattr(self.model, "readout_kind", "rate")

    def forward(self, x: Tensor):
        return self.model(multiplicative_noise(x, self.p, self.generator))


@contextmanager
def convolve_every_step(model: nn.Module) -> Iterator[None]:
    """Temporarily make every ``static=True`` block of ``model`` convolve each step (noisy steps differ)."""
    blocks = [m for m in model.modules() if getattr(m, "static", False) is True and hasattr(m, "conv")]
    for block in blocks:
        block.static = False
    try:
        yield
    finally:
        for block in blocks:
            block.static = True


def noise_sweep(
    model: nn.Module, batcher, config, levels: Sequence[float] = DEFAULT_LEVELS, seed: int = 0, split: str = "test",
) -> list[dict]:
    """``[{"p": p, "loss": ..., "accuracy": ..., "metric": ..., ...}]`` of ``model`` on ``split`` for each level.

    ``batcher`` / ``config``: the run's :class:`~spikedyn.batching.Batcher` and config (its
    encoding randomness is that of :func:`~spikedyn.train.evaluate` for epoch 0, the same at every level).
    """
    from ..train import evaluate

    points = []
    with convolve_every_step(model):
        for p in levels:
            noisy = NoisyInput(model, p, torch.Generator().manual_seed(seed))
            points.append({"p": check_noise_level(p), **evaluate(noisy, batcher, config, split)})
    return points


def robust_ratio(clean_trained: float, noisy_trained: float) -> float:
    """``Acc(train clean, test noisy) / Acc(train noisy, test noisy)`` (NaN when the second is 0)."""
    return clean_trained / noisy_trained if noisy_trained else math.nan


@dataclass
class NoiseCurve(RunCurve):
    """A run's score against the test noise proportion ``p`` (``points`` from :func:`noise_sweep`)."""

    train_noise: float = 0.0
    points: list[dict] = field(default_factory=list)

    def at(self, p: float) -> dict:
        """The point measured at noise ``p`` (``KeyError`` when the sweep has none)."""
        for point in self.points:
            if math.isclose(point["p"], p, abs_tol=1e-9):
                return point
        raise KeyError(f"{self.run} was not tested at noise p = {p:g}; add it to the levels")

def run_label(model: str, rule: str, train_noise: float, model_options: dict | None = None) -> str:
    """``NRR-SNN`` (nrr + reward propagation), ``BP-RSNN`` (nrr + bptt), ``non-spiking RNN (tanh)``
    (nrr with ``spiking=False``, the paper's DNN baseline), else ``<model> <rule>``;
    ``, trained at p = ...`` for a noisy-trained run."""
    options = model_options or {}
    if model == "nrr" and options.get("spiking") is False:
        kind = "RNN" if options.get("recurrent", True) else "DNN"
        name = f"non-spiking {kind} ({options.get('activation', 'tanh')})" + ("" if rule == "bptt" else f", {rule}")
    elif model == "nrr":
        name = "BP-RSNN" if rule == "bptt" else ("NRR-SNN" if rule == "brp" else f"NRR-SNN ({rule})")
    else:
        name = f"{model} {rule}"
    return name + (f", trained at p = {100 * train_noise:g} %" if train_noise else "")


def noise_curve_run(
    run: str | os.PathLike, levels: Sequence[float] = DEFAULT_LEVELS, seed: int = 0, data_root: str | None = None,
    device: str = "cpu", split: str = "test", batch_size: int | None = None,
) -> NoiseCurve:
    """:func:`noise_sweep` of a run directory (or its ``checkpoint.pt``) on its own data."""
    from ..batching import Batcher

    loaded = load_run(run, data_root, device, batch_size)
    config = loaded.config
    train_noise = float((config.model_options or {}).get("input_noise", 0.0))
    curve = NoiseCurve(
        run=str(run), label=run_label(config.model, config.rule, train_noise, config.model_options),
        model=config.model, network=loaded.network,
        rule=config.rule, dataset=config.dataset, epoch=loaded.epoch, train_noise=train_noise,
    )
    curve.points = noise_sweep(loaded.model, Batcher(loaded.dataset, config, loaded.device), config, levels, seed, split)
    return curve


def robust_ratios(clean: NoiseCurve, noisy: Sequence[NoiseCurve]) -> list[dict]:
    """RobustRatio of the clean-trained ``clean`` against each noisy-trained run, at that run's ``p``.

    Every curve must have been tested at the noisy run's training noise.
    """
    rows = []
    for other in sorted(noisy, key=lambda c: c.train_noise):
        p = other.train_noise
        a, b = clean.at(p)["accuracy"], other.at(p)["accuracy"]
        rows.append({"p": p, "clean_trained": a, "noisy_trained": b, "robust_ratio": robust_ratio(a, b),
                     "noisy_run": other.run})
    return rows
