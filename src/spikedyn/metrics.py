"""Scores of a network's read-out, one per kind of task; the metric belongs to the data set.

A metric sees the output firing rates ``r [B, C]`` and the targets of every batch of a split,
in loader order, and gives one number in [0, 1] at the end:

* ``accuracy``: fraction of samples whose argmax rate is the label (multi-hot targets: whose
  argmax unit is on).
* ``nettalk-cosine``: the MDN authors' NETtalk score (spec mdn.md section 5): the samples are
  cut into consecutive groups of the run's batch size (the authors' test loader, batch 5); of
  each group only the first sample counts: 0 if its largest rate is below 0.05, else the
  cosine similarity ``<r, y> / (|r| |y|)`` (:func:`spikedyn.data.nettalk.nettalk_accuracy`).

``make_metric(name, batch_size)`` builds one; :data:`METRICS` lists them.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


class Metric:
    """Accumulates ``(rate, target)`` batches; :meth:`value` is the score over all of them."""

    name = "metric"

    def update(self, rate: Tensor, target: Tensor) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def value(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


class Accuracy(Metric):
    """Argmax of the firing rate equals the label (multi-hot: the argmax unit is on)."""

    name = "accuracy"

    def __init__(self, batch_size: int | None = None) -> None:
        self.correct = 0
        self.total = 0

    def update(self, rate: Tensor, target: Tensor) -> None:
        pred = rate.argmax(1)
        if target.dim() == 1:
            self.correct += int((pred == target).sum())
        else:
            self.correct += int(target.gather(1, pred.unsqueeze(1)).gt(0).sum())
        self.total += len(target)

    def value(self) -> float:
        return self.correct / max(self.total, 1)


class NETtalkCosine(Metric):
    """MDN's NETtalk cosine score over groups of ``batch_size`` samples (see the module docstring)."""

    name = "nettalk-cosine"

    def __init__(self, batch_size: int | None = 5) -> None:
        self.batch_size = batch_size
        self.rates: list[Tensor] = []
        self.targets: list[Tensor] = []

    def update(self, rate: Tensor, target: Tensor) -> None:
        if target.dim() != 2:
            raise ValueError(f"nettalk-cosine needs multi-hot targets [B, C], got shape {tuple(target.shape)}")
        self.rates.append(rate.detach().float().cpu())
        self.targets.append(target.detach().float().cpu())

    def value(self) -> float:
        from .data.nettalk import nettalk_accuracy

        if not self.rates:
            return 0.0
        return nettalk_accuracy(torch.cat(self.rates), torch.cat(self.targets), batch_size=self.batch_size)


METRICS: dict[str, Callable[..., Metric]] = {"accuracy": Accuracy, "nettalk-cosine": NETtalkCosine}


def make_metric(name: str, batch_size: int | None = None) -> Metric:
    """A fresh metric by name; ``batch_size`` is the run's training batch size (used by ``nettalk-cosine``)."""
    try:
        factory = METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; choose one of {', '.join(sorted(METRICS))}") from None
    return factory(batch_size) if batch_size is not None else factory()
