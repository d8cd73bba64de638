"""Scores of a network's read-out, one per kind of task; the metric belongs to the data set.

A metric sees the output firing rates ``r [B, C]`` and the targets of every batch of a split,
in loader order, and gives one number in [0, 1] at the end:

* ``accuracy``: fraction of samples whose argmax rate is the label (multi-hot targets: whose
  argmax unit is on).
* ``nettalk-cosine``: the MDN authors' NETtalk score (spec mdn.md section 5): the samples are
  cut into consecutive groups of the run's batch size (the authors' test loader, batch 5); of
  each group only the first sample counts: 0 if its largest rate is below 0.05, else the
  cosine similarity ``<r, y> / (|r| |y|)`` (:func:`spikedyn.data.nettalk.nettalk_accuracy`).

* ``frame-accuracy`` (per-step read-outs, NRR): sees the scores ``o_t`` of every step, ``[B, T, C]``
  (one row per sample), against class labels ``[B]`` (the class repeated at every step) or frame
  labels ``[B, T]`` (negative labels mark padded frames, which count nowhere).  Its value is the
  frame accuracy, the fraction of valid ``(sample, step)`` pairs with ``argmax_k o_{t,k}`` equal
  to the step's label (the NRR authors' code, spec nrr.md section 5); :meth:`Metric.extras`
  adds ``sample_accuracy``: for class labels the fraction of samples with
  ``argmax_k sum_t o_{t,k}`` equal to the label (spec nrr.md section 5 [A]), for frame labels the
  mean over samples of each sample's own frame accuracy (every utterance weighs the same).

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

    def extras(self) -> dict[str, float]:
        """Further scores of the same outputs, by name (logged beside :meth:`value`); none by default."""
        return {}


class Accuracy(Metric):
    """Argmax of the firing rate equals the label (multi-hot: the argmax unit is on)."""

    name = "accuracy"

    def __init__(self, batch_size: int | None = None) -> None:
        self.correct = 0
        self.total = 0

    def update(self, rate: Tensor, target: Tensor) -> None:
        # the count stays a tensor on the outputs' device: no host round trip per batch on a GPU
        pred = rate.argmax(1)
        if target.dim() == 1:
            self.correct = (pred == target).sum() + self.correct
        else:
            self.correct = target.gather(1, pred.unsqueeze(1)).gt(0).sum() + self.correct
        self.total += len(target)

    def value(self) -> float:
        return int(self.correct) / max(self.total, 1)


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


class FrameAccuracy(Metric):
    """Per-step scores ``[B, T, C]`` against labels ``[B]`` or ``[B, T]``: frame accuracy, plus
    ``sample_accuracy`` in :meth:`extras` (see the module docstring)."""

    name = "frame-accuracy"

    def __init__(self, batch_size: int | None = None) -> None:
        self.frames_correct = 0
        self.frames = 0
        self.sample_sum = 0.0  # correct samples (class labels) or the sum of per-sample frame accuracies
        self.samples = 0

    def update(self, scores: Tensor, target: Tensor) -> None:
        if scores.dim() != 3:
            raise ValueError(f"frame-accuracy needs per-step scores [B, T, C], got shape {tuple(scores.shape)}")
        pred = scores.argmax(2)  # [B, T]
        if target.dim() == 1:  # one class per sample, repeated at every step
            hit = pred == target.unsqueeze(1)
            self.frames_correct = hit.sum() + self.frames_correct  # tensors on the scores' device: no host sync
            self.frames += hit.numel()
            self.sample_sum = (scores.sum(1).argmax(1) == target).sum().double() + self.sample_sum
            self.samples += len(target)
            return
        if target.shape != pred.shape:
            raise ValueError(
                f"frame labels of shape {tuple(target.shape)} do not match the scores {tuple(scores.shape)}; "
                f"expected [B, T] or [B]"
            )
        valid = target >= 0
        hit = (pred == target) & valid
        counts = valid.sum(1)
        self.frames_correct = hit.sum() + self.frames_correct
        self.frames = counts.sum() + self.frames
        some = counts > 0
        per_sample = hit.sum(1).double() / counts.clamp(min=1).double()  # 0 where a sample has no valid frame
        self.sample_sum = per_sample.sum() + self.sample_sum
        self.samples = some.sum() + self.samples

    def value(self) -> float:
        return int(self.frames_correct) / max(int(self.frames), 1)

    def extras(self) -> dict[str, float]:
        return {"sample_accuracy": float(self.sample_sum) / max(int(self.samples), 1)}


METRICS: dict[str, Callable[..., Metric]] = {
    "accuracy": Accuracy, "nettalk-cosine": NETtalkCosine, "frame-accuracy": FrameAccuracy,
}


def make_metric(name: str, batch_size: int | None = None) -> Metric:
    """A fresh metric by name; ``batch_size`` is the run's training batch size (used by ``nettalk-cosine``)."""
    try:
        factory = METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; choose one of {', '.join(sorted(METRICS))}") from None
    return factory(batch_size) if batch_size is not None else factory()
