"""Accuracy against presentation length: a trained run scored with every test sample presented for
``T`` steps, for several ``T`` (the run's own ``T`` among them or not).

For static data the encoder draws ``T`` steps (rate code: ``T`` Bernoulli draws, so the read-out
``r = (1/T) sum_t S_out(t)`` averages over more or fewer of them); for sequences the first ``T``
stored steps are presented (no more than the data holds).  Nothing is retrained: the curve shows how
early a trained net's decision settles and what a longer look at the input buys (the trade-off of
accuracy against latency), next to BRP Fig. 7, which trains one net per ``T``.

Every point uses the encoding randomness ``spikedyn eval`` uses for the run's checkpoint, so the
point at the run's own ``T`` equals the test score logged for its last epoch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

from .runs import RunCurve, load_run, run_name

#: presentation lengths swept by default
DEFAULT_STEPS = (1, 2, 5, 10, 20, 40, 100)


def check_steps(steps: Sequence[int]) -> list[int]:
    """The distinct presentation lengths in increasing order; ``ValueError`` for none or one below 1."""
    values = sorted({int(t) for t in steps})
    if not values or values[0] < 1:
        raise ValueError(f"presentation lengths must be whole numbers >= 1, got {list(steps)}")
    return values


def latency_sweep(
    model, dataset, config, steps: Sequence[int], device, split: str = "test", epoch: int = 0,
    on_point: Callable[[dict], None] | None = None,
) -> list[dict]:
    """``[{"steps": T, "loss": ..., "accuracy": ..., "metric": ...}]`` of ``model`` on ``split`` for each ``T``.

    ``config`` is the run's; ``epoch`` the 0-based epoch index whose encoding randomness is used
    (:func:`~spikedyn.train.evaluate`); ``on_point`` is called with each point as soon as it is measured.
    """
    from ..batching import Batcher
    from ..train import evaluate

    points = []
    for t in check_steps(steps):
        at_t = replace(config, steps=t)
        points.append({"steps": t, **evaluate(model, Batcher(dataset, at_t, device), at_t, split, epoch=epoch)})
        if on_point is not None:
            on_point(points[-1])
    return points


@dataclass
class LatencyCurve(RunCurve):
    """A run's score against the presentation length (``points`` from :func:`latency_sweep`)."""

    trained_steps: int = 0
    points: list[dict] = field(default_factory=list)

    def describe(self) -> str:
        """One line naming the run: label, network, data, rule, epoch, trained T."""
        return (f"{self.label}: {self.model} {self.network} on {self.dataset}, rule {self.rule}, epoch {self.epoch}, "
                f"trained at T = {self.trained_steps} ({self.run})")

    def line(self, point: dict) -> str:
        """A point as a line: T, the score in percent, the run's own ``T`` marked."""
        mark = "  (trained)" if point["steps"] == self.trained_steps else ""
        return f"  T = {point['steps']:4d}  {point['metric']} {100 * point['accuracy']:.2f}%{mark}"

    def table(self) -> str:
        """One :meth:`line` per ``T``."""
        return "\n".join(self.line(point) for point in self.points)


def latency_curve_run(
    run: str | os.PathLike, steps: Sequence[int] = DEFAULT_STEPS, data_root: str | None = None, device: str = "cpu",
    split: str = "test", batch_size: int | None = None, label: str | None = None, verbose: bool = False,
) -> LatencyCurve:
    """:func:`latency_sweep` of a run directory (or its ``checkpoint.pt``) on its own data; ``verbose``
    prints the run's :meth:`~LatencyCurve.describe` line, then each point as it is measured."""
    loaded = load_run(run, data_root, device, batch_size)
    config = loaded.config
    curve = LatencyCurve(
        run=str(run), label=label or run_name(run), model=config.model, network=loaded.network, rule=config.rule,
        dataset=config.dataset, epoch=loaded.epoch, trained_steps=int(config.steps),
    )
    if verbose:
        print(curve.describe(), flush=True)
    # the randomness `spikedyn eval` uses for this checkpoint (the trainer scored epoch k with index k - 1)
    curve.points = latency_sweep(loaded.model, loaded.dataset, config, steps, loaded.device, split,
                                 epoch=max(loaded.epoch - 1, 0),
                                 on_point=(lambda point: print(curve.line(point), flush=True)) if verbose else None)
    return curve
