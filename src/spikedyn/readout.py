"""Read-outs: what a network's output is trained against and how it is scored.

The trainer is generic over (model, learning rule, read-out, metric) (spec DESIGN).  A model
names its read-out with the class attribute ``readout_kind`` (``"rate"`` when it has none); the
data set's ``target`` says what a label is.  The read-out turns a batch's labels into the
target tensor the loss and the learning rule see, picks the loss, the scores the metric sees
and the metric itself, so the trainer never asks which paper it runs.

* ``rate`` (MDN, BRP, PLIF: a spiking output layer).  Target ``y* [B, C]`` (one-hot, or
  multi-hot for NETtalk); loss ``rate-mse`` (default) or ``step-mse`` (``y*`` repeated at every
  step, :mod:`spikedyn.losses`); scores the output rate ``r [B, C]``; metric the data set's
  (``accuracy``, ``nettalk-cosine``).  Per-frame labels are refused.
* ``step`` (NRR: a non-spiking read-out ``o_t = W_o S_t + b_o`` at every step, ``NetOutput.spikes``
  holding ``o [T, B, C]``).  Per-step targets ``y*_t [T, B, C]``: the sample's class repeated at
  every step, or for frame-labelled data (``target="frame_class"``) the one-hot label of frame
  ``t``; a mask ``m [T, B]`` marks the frames that count (padded frames, label :data:`PAD_LABEL`,
  have an all-zero target and ``m = 0``).  Loss: the per-step MSE over the valid frames,
  ``sum m (o - y*)^2 / (C sum m)`` (``step-mse``, spec nrr.md section 3).  Scores: ``o`` with the
  samples first, ``[B, T, C]``; metric ``frame-accuracy`` (frame accuracy, and per-sample
  accuracy in its extras, spec nrr.md section 5).

Frame-labelled batches: :func:`frame_batch` cuts a batch to its longest valid sequence (at most
``T``) and marks every frame past a sample's length with :data:`PAD_LABEL`, so padded frames
change neither the loss, the teaching signal of the learning rule, nor the accuracy.  A data
set gives the lengths as a third tensor of each split (``timit-phones`` does); without it every
stored frame counts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .losses import LOSSES, step_mse, target_matrix
from .metrics import Metric, make_metric

#: the label of a padded frame in a frame-labelled batch (counts in no loss, signal or score)
PAD_LABEL = -1


@dataclass(frozen=True)
class BatchTarget:
    """``values``: ``[B, C]`` (per sample) or ``[T, B, C]`` (per step); ``mask``: ``[T, B]`` bool of
    the steps that count, or None when all do."""

    values: Tensor
    mask: Tensor | None = None


class Readout(ABC):
    """How a model's output meets the labels; subclasses set ``kind``, ``default_loss``, ``losses``."""

    kind: ClassVar[str]
    default_loss: ClassVar[str]
    losses: ClassVar[tuple[str, ...]]

    def check(self, dataset, loss: str) -> None:
        """Raise ``ValueError`` (with the fix) unless this read-out can train on ``dataset`` with ``loss``."""
        if loss not in self.losses:
            raise ValueError(
                f"loss {loss!r} does not fit the model's {self.kind} read-out; use "
                f"{' or '.join(self.losses)} (--loss), or leave --loss out for the read-out's default ({self.default_loss})"
            )

    @abstractmethod
    def target(self, y: Tensor, dataset, dtype: torch.dtype, steps: int) -> BatchTarget:
        """The batch's target for labels ``y`` (``steps``: the batch's ``T``)."""

    def loss_fn(self, loss: str, target: BatchTarget):
        """The read-out loss ``L(outputs, target values)`` for this batch (the mask bound in)."""
        return LOSSES[loss]

    @abstractmethod
    def scores(self, out) -> Tensor:
        """What the metric sees of a forward pass, one row per sample."""

    @abstractmethod
    def metric_name(self, dataset) -> str:
        """The metric of this read-out on ``dataset``."""

    def metric(self, dataset, batch_size: int | None = None) -> Metric:
        return make_metric(self.metric_name(dataset), batch_size)


class RateReadout(Readout):
    """A spiking output layer scored by its firing rate (MDN, BRP, PLIF)."""

    kind = "rate"
    default_loss = "rate-mse"
    losses = ("rate-mse", "step-mse")

    def check(self, dataset, loss: str) -> None:
        if dataset.target == "frame_class":
            raise ValueError(
                f"{dataset.name} has per-frame targets, which need a model with a per-step read-out "
                f"(e.g. --model nrr); this model's spiking output layer classifies whole sequences"
            )
        super().check(dataset, loss)

    def target(self, y: Tensor, dataset, dtype: torch.dtype, steps: int) -> BatchTarget:
        return BatchTarget(target_matrix(y, dataset.num_classes, dtype))

    def scores(self, out) -> Tensor:
        return out.rate

    def metric_name(self, dataset) -> str:
        return dataset.metric


class StepReadout(Readout):
    """A non-spiking read-out at every step trained against per-step targets (NRR)."""

    kind = "step"
    default_loss = "step-mse"
    losses = ("step-mse",)

    def check(self, dataset, loss: str) -> None:
        if dataset.target not in ("class", "frame_class") or dataset.metric != "accuracy":
            raise ValueError(
                f"the per-step read-out trains on one class per sample (repeated at every step) or one per frame; "
                f"{dataset.name} has {dataset.target} targets scored by {dataset.metric}"
            )
        super().check(dataset, loss)

    def target(self, y: Tensor, dataset, dtype: torch.dtype, steps: int) -> BatchTarget:
        classes = dataset.num_classes
        if dataset.target == "class":
            one_hot = F.one_hot(y, classes).to(dtype)
            return BatchTarget(one_hot.unsqueeze(0).expand(steps, *one_hot.shape))
        if y.dim() != 2 or y.shape[1] != steps:
            raise ValueError(
                f"frame labels of shape {tuple(y.shape)} do not match a batch of {steps} steps; expected [B, {steps}]"
            )
        valid = y >= 0
        one_hot = F.one_hot(y.clamp_min(0), classes).to(dtype) * valid.unsqueeze(2).to(dtype)
        return BatchTarget(one_hot.transpose(0, 1), valid.t())

    def loss_fn(self, loss: str, target: BatchTarget):
        return step_mse if target.mask is None else partial(step_mse, mask=target.mask)

    def scores(self, out) -> Tensor:
        return out.spikes.transpose(0, 1)

    def metric_name(self, dataset) -> str:
        return "frame-accuracy"


#: every read-out, by ``readout_kind``
READOUTS: dict[str, Readout] = {r.kind: r for r in (RateReadout(), StepReadout())}


def readout_of(model: nn.Module | type) -> Readout:
    """The read-out a model (or model class) declares with ``readout_kind`` (``rate`` if none)."""
    kind = getattr(model, "readout_kind", "rate")
    try:
        return READOUTS[kind]
    except KeyError:
        raise ValueError(
            f"{getattr(model, '__name__', type(model).__name__)} declares readout_kind={kind!r}; "
            f"known read-outs: {', '.join(READOUTS)}"
        ) from None


def frame_batch(x: Tensor, y: Tensor, lengths: Tensor | None, steps: int) -> tuple[Tensor, Tensor]:
    """A batch of frame-labelled sequences cut to its longest valid one, padding marked.

    ``x`` ``[B, T_stored, ...]``, ``y`` ``[B, T_stored]``, ``lengths`` ``[B]`` (valid frames per
    sample, or None: all stored frames).  Returns ``x[:, :T]`` and ``y[:, :T]`` with
    ``T = min(steps, max(lengths))`` and the labels of frames ``t >= lengths[b]`` set to
    :data:`PAD_LABEL`.
    """
    if y.dim() != 2 or y.shape[:2] != x.shape[:2]:
        raise ValueError(
            f"frame labels of shape {tuple(y.shape)} do not match the sequences {tuple(x.shape)}; expected [B, T]"
        )
    cut = min(steps, x.shape[1])
    if lengths is not None and len(lengths):
        cut = max(1, min(cut, int(lengths.max())))
    x, y = x[:, :cut], y[:, :cut]
    if lengths is not None:
        pad = torch.arange(cut, device=y.device).unsqueeze(0) >= lengths.to(y.device).unsqueeze(1)
        y = y.masked_fill(pad, PAD_LABEL)
    return x, y
