"""The learning-rule interface: the trainer asks a rule for the scalar to minimise.

A rule sees one forward pass of a network:

* the output spikes ``S_out`` ``[T, B, C]`` and rate ``r = (1/T) sum_t S_out(t)`` ``[B, C]``;
* the un-detached spikes ``S_l`` ``[T, B, *shape_l]`` of every hidden layer ``l`` that is followed
  by a :class:`~spikedyn.layers.SpikeTap`, in tap order (``NetOutput.taps``);

plus the target matrix ``y*`` ``[B, C]`` (one-hot or multi-hot), the read-out loss
``L_out(S_out, y*)`` and the model's taps (:func:`~spikedyn.layers.spike_taps`).  It returns
the scalar whose gradient trains the network, with its parts for logging.

Per-step targets (a per-step read-out such as NRR's, :mod:`spikedyn.readout`): ``y*`` is
``[T, B, C]`` (``y*_t``, the class repeated or the frame's label) and ``mask`` ``[T, B]`` marks
the steps that count (padded frames 0); ``out.spikes`` then holds the read-out ``o_t``
``[T, B, C]``.  The read-out loss the trainer passes has the mask bound in; a rule uses the
mask for anything else it computes per step (reward propagation's teaching signal).

Before training, :meth:`LearningRule.attach` sets the model's taps: transparent for rules that
backpropagate between layers (BPTT), detaching for layer-local rules (reward propagation).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Protocol, Sequence

from torch import Tensor, nn

from ..layers.taps import SpikeTap, set_local, spike_taps

#: a read-out loss ``L_out(S_out [T, B, C], y* [B, C]) -> scalar`` (see :mod:`spikedyn.losses`)
ReadoutLoss = Callable[[Tensor, Tensor], Tensor]


class NetworkOutput(Protocol):
    """What a rule reads from a forward pass (the models' ``NetOutput``)."""

    rate: Tensor  # [B, C]
    spikes: Tensor  # [T, B, C]
    taps: Sequence[Tensor]  # hidden spikes [T, B, *shape_l], un-detached, in tap order


@dataclass
class RuleLoss:
    """``total``: the scalar to minimise.  ``parts``: its terms, detached, for logging.

    ``parts["readout"]`` is always the read-out loss ``L_out``, the number that is comparable
    across rules (and what evaluation reports); layer-local rules add one ``parts["tap<l>"]`` per tap.
    ``batch_summed``: the part of ``total`` that is a *sum* over the batch's samples (reward
    propagation's ``sum_b <S_l[b], G_l[b]>``); the rest is a mean over samples.  Data parallel
    training needs the split to weight each process's share so that the update equals one
    process's on the whole batch (:meth:`spikedyn.distributed.DistContext.scaled_loss`).
    """

    total: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)
    batch_summed: Tensor | float = 0.0


class LearningRule(ABC):
    """Turns one forward pass into the loss to minimise.

    Subclasses set ``name`` (the registry key), ``local`` (whether the taps cut the gradient
    path between layers) and implement :meth:`loss`.
    """

    name: ClassVar[str]
    local: ClassVar[bool]

    def attach(self, model: nn.Module) -> list[SpikeTap]:
        """Prepare ``model`` for this rule (set its taps local or transparent); returns its taps."""
        taps = spike_taps(model)
        if self.local and not taps:
            raise ValueError(
                f"learning rule {self.name!r} trains each hidden layer from its own projected teaching signal, "
                f"so the model needs a SpikeTap after every hidden layer; {type(model).__name__} has none. "
                f"Add the taps (spikedyn.layers.SpikeTap) or use --rule bptt."
            )
        set_local(model, self.local)
        return taps

    @abstractmethod
    def loss(
        self, out: NetworkOutput, target: Tensor, readout_loss: ReadoutLoss, taps: Sequence[SpikeTap],
        mask: Tensor | None = None,
    ) -> RuleLoss:
        """The loss of one forward pass ``out`` against ``target`` ``[B, C]`` (or per step ``[T, B, C]``
        with the valid steps ``mask`` ``[T, B]``, see the module docstring)."""

    def __call__(
        self, out: NetworkOutput, target: Tensor, readout_loss: ReadoutLoss, taps: Sequence[SpikeTap],
        mask: Tensor | None = None,
    ) -> RuleLoss:
        return self.loss(out, target, readout_loss, taps, mask)

    def check_taps(self, taps: Sequence[SpikeTap]) -> None:
        """Raise unless the taps are set as this rule needs (i.e. :meth:`attach` was called)."""
        wrong = [i for i, tap in enumerate(taps) if tap.local != self.local]
        if wrong:
            state = "transparent" if self.local else "local (detaching)"
            raise RuntimeError(
                f"learning rule {self.name!r}: tap(s) {wrong} are {state}; call rule.attach(model) before training"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
