"""Reward propagation: direct random target projection to every hidden layer (spec common.md 6, brp.md 4).

Each hidden layer ``l`` (``N_l`` neurons, spikes ``S_l(t)``) owns a fixed random matrix
``B_l`` ``[C, N_l]`` (its tap's ``projection``).  Per batch, a teaching signal ``E`` ``[B, C]``
is projected to the layer, without gradient and constant over time::

    G_l = E B_l                      reshaped to [B, *shape_l]

    TP_BRP (``brp``):   E = y*                  (the labels; the authors' DRTP mode)
    TP_err (``err``):   E = r - y*              (output error of the same forward pass; DFA)
    TP_sign (``sign``): E = sign(r - y*)        (its sign; sDFA)

and the rule minimises::

    L = L_out + sum_l L_l,       L_l = sum_t sum_b <S_l(t)[b], G_l[b]>

with every tap local, i.e. each layer fed the *detached* spikes of the layer below.  Hence
``dL/dS_l(t) = G_l`` at every step, which each hidden layer backpropagates only through its own
membrane recursion (decay and reset paths, surrogate spike derivative) to its own weights,
while the output layer receives the true gradient of ``L_out``; no gradient passes between
layers.  This gives the same gradients as the authors' identity op whose backward discards the
incoming gradient and returns ``G_l`` (spec common.md 6).  Sign convention as the authors'
code: descent on ``+<S, E B>``.  For a single step (``T = 1``) fully connected layer
``V = W x + b``, ``S = H(V - 0.5)`` with the RectWindow(0.5) surrogate this is::

    dL/dW_ij = sum_b G_l[b, i] * 1[|V_i[b] - 0.5| < 0.5] * x_j[b]

**The paper's local difference** (``local_loss="difference"``, spec brp.md section 4 [P], Eq. 8-9
``dW = -eta (B TP - h)``): instead of injecting ``G_l`` as the spikes' gradient, each hidden layer's
spikes are pulled toward the projected target::

    L_l = 1/2 sum_t sum_b ||S_l(t)[b] - G_l[b]||^2,      dL/dS_l(t) = S_l(t) - G_l

(the stable reading of the equation: the layer state moves toward ``B TP``).  The authors' code,
which produced the paper's numbers, injects ``G_l`` alone (``local_loss="inject"``, the default).
For a ``T = 1`` FC layer: ``dL/dW_ij = sum_b (S_i[b] - G_l[b, i]) 1[|V_i[b] - 0.5| < 0.5] x_j[b]``.

**Per-step targets** (a per-step read-out ``o_t``, NRR, spec nrr.md section 3): with targets
``y*_t`` ``[T, B, C]`` and the mask ``m_t`` ``[T, B]`` of the steps that count, the signal is
per step and zero on masked (padded) steps::

    G_{l,t} = m_t E_t B_l,   E_t = y*_t  |  o_t - y*_t  |  sign(o_t - y*_t),
    L_l = sum_t sum_b <S_l(t)[b], G_{l,t}[b]>

so ``dL/dS_l(t) = G_{l,t}``: the label of step ``t`` (TIMIT: the frame's phone) through the same
``B_l`` for every channel of the layer.  The output is used per step (``o_t``, not the rate) in
``err``/``sign``.  For a recurrent layer whose tap is local (:class:`~spikedyn.neurons.RecurrentNRR`)
the cell also detaches every reuse of ``S_{t-1}``, so the gradient flows back in time only
through the membrane.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Sequence

import torch
from torch import Tensor

from ..layers.taps import SpikeTap
from .base import LearningRule, NetworkOutput, ReadoutLoss, RuleLoss


def teaching_signal(tap: SpikeTap, signal: Tensor) -> Tensor:
    """``G_l = E B_l`` for the signal ``E`` ``[B, C]`` (or per step ``[T, B, C]``), shaped
    ``[B, *tap.shape]`` (``[T, B, *tap.shape]``), without gradient."""
    projection = tap.projection
    if signal.dim() not in (2, 3) or signal.shape[-1] != projection.shape[0]:
        raise ValueError(
            f"teaching signal of shape {tuple(signal.shape)} does not fit a tap projecting "
            f"{projection.shape[0]} classes; expected [B, {projection.shape[0]}] or [T, B, {projection.shape[0]}]"
        )
    with torch.no_grad():
        g = signal.detach().to(projection.dtype) @ projection
    return g.reshape(*signal.shape[:-1], *tap.shape)


def _check_teaching_shape(spikes: Tensor, teaching: Tensor) -> None:
    """A ``ValueError`` unless ``G_l`` is one signal per step (the spikes' shape) or one for all steps."""
    if tuple(spikes.shape) != tuple(teaching.shape) and tuple(spikes.shape[1:]) != tuple(teaching.shape):
        raise ValueError(
            f"tap spikes of shape {tuple(spikes.shape)} do not match the teaching signal "
            f"{tuple(teaching.shape)}; expected [T, {', '.join(map(str, teaching.shape))}]"
        )


#: the forms of a hidden layer's local loss: the authors' code's injection (default) and the paper's difference
LOCAL_LOSSES = ("inject", "difference")


def check_local_loss(name: str) -> str:
    """``name`` if it is a known local-loss form, else a ``ValueError`` listing them."""
    if name not in LOCAL_LOSSES:
        raise ValueError(
            f"unknown local loss {name!r}; choose inject (the authors' code: G_l injected as the spikes' gradient) "
            f"or difference (the paper's Eq. 8-9: spikes pulled toward G_l)"
        )
    return name


def difference_loss(spikes: Tensor, teaching: Tensor, mask: Tensor | None = None) -> Tensor:
    """``L_l = 1/2 sum_t sum_b ||S_l(t)[b] - G_l[b]||^2`` for spikes ``[T, B, *shape]`` and ``G_l``
    ``[B, *shape]`` (or per step ``[T, B, *shape]``, where ``mask`` ``[T, B]`` leaves out the steps that do
    not count); its gradient with respect to ``S_l(t)`` is ``S_l(t) - G_l``."""
    _check_teaching_shape(spikes, teaching)
    gap = spikes - teaching.to(spikes.dtype)
    if mask is not None and tuple(spikes.shape) == tuple(teaching.shape):
        gap = gap * mask.reshape(*mask.shape, *([1] * (gap.dim() - mask.dim()))).to(gap.dtype)
    return 0.5 * (gap * gap).sum()


def projection_loss(spikes: Tensor, teaching: Tensor) -> Tensor:
    """``L_l = sum_t sum_b <S_l(t)[b], G_l[b]>`` for spikes ``[T, B, *shape]`` and ``G_l`` ``[B, *shape]``
    (the same at every step), or ``sum_t sum_b <S_l(t)[b], G_{l,t}[b]>`` for ``G_l`` ``[T, B, *shape]``."""
    if tuple(spikes.shape) == tuple(teaching.shape):  # one signal per step
        return (spikes * teaching.to(spikes.dtype)).sum()
    _check_teaching_shape(spikes, teaching)
    return (spikes.sum(0) * teaching.to(spikes.dtype)).sum()


class RewardPropagation(LearningRule):
    """``L = L_out + sum_l sum_t sum_b <S_l(t)[b], (E B_l)[b]>``, taps local; subclasses choose ``E``.

    ``local_loss="difference"``: ``L_l = 1/2 sum_t sum_b ||S_l(t)[b] - (E B_l)[b]||^2`` instead (the paper's
    Eq. 8-9, see the module docstring).
    """

    local = True

    def __init__(self, local_loss: str = "inject") -> None:
        self.local_loss = check_local_loss(local_loss)

    @staticmethod
    @abstractmethod
    def signal(rate: Tensor, target: Tensor) -> Tensor:
        """The teaching signal ``E`` ``[B, C]`` from the output rate ``r`` and the target ``y*``
        (elementwise: per step, ``E_t`` ``[T, B, C]`` from ``o_t`` and ``y*_t``)."""

    def loss(
        self, out: NetworkOutput, target: Tensor, readout_loss: ReadoutLoss, taps: Sequence[SpikeTap],
        mask: Tensor | None = None,
    ) -> RuleLoss:
        if not taps:
            raise ValueError(
                f"learning rule {self.name!r} needs the model's SpikeTaps (spike_taps(model)); got none. "
                f"Use a model whose hidden layers are followed by SpikeTaps, or --rule bptt."
            )
        if len(out.taps) != len(taps):
            raise ValueError(
                f"learning rule {self.name!r}: the model returned {len(out.taps)} tapped spike tensor(s) in "
                f"NetOutput.taps but has {len(taps)} SpikeTap(s); a model must return the un-detached spikes "
                f"of every tap, in tap order"
            )
        self.check_taps(taps)
        readout = readout_loss(out.spikes, target)
        with torch.no_grad():
            if target.dim() == 3:  # per-step targets y*_t: per-step outputs o_t, masked steps silent
                signal = self.signal(out.spikes.detach(), target)
                if mask is not None:
                    signal = signal * mask.unsqueeze(2).to(signal.dtype)
            else:
                signal = self.signal(out.rate.detach(), target)
        total, summed = readout, 0.0
        parts = {"readout": readout.detach()}
        for index, (spikes, tap) in enumerate(zip(out.taps, taps)):
            teaching = teaching_signal(tap, signal)
            if self.local_loss == "difference":
                term = difference_loss(spikes, teaching, mask if target.dim() == 3 else None)
            else:
                term = projection_loss(spikes, teaching)
            total, summed = total + term, summed + term
            parts[f"tap{index}"] = term.detach()
        return RuleLoss(total=total, parts=parts, batch_summed=summed)


class LabelProjection(RewardPropagation):
    """TP_BRP: ``E = y*``, the label projected to every hidden layer (``brp``)."""

    name = "brp"

    @staticmethod
    def signal(rate: Tensor, target: Tensor) -> Tensor:
        return target


class ErrorProjection(RewardPropagation):
    """TP_err (direct feedback alignment): ``E = r - y*`` (``err``)."""

    name = "err"

    @staticmethod
    def signal(rate: Tensor, target: Tensor) -> Tensor:
        return rate - target


class SignProjection(RewardPropagation):
    """TP_sign: ``E = sign(r - y*)`` (``sign``)."""

    name = "sign"

    @staticmethod
    def signal(rate: Tensor, target: Tensor) -> Tensor:
        return torch.sign(rate - target)
