"""NRR-SNN's two-channel recurrent cell with an adaptive threshold (Jia et al. 2021).

Each of the ``N`` hidden neurons has a leaky **feed-forward** channel, a memory-less
**recurrent** channel over sparse recurrent weights, and a threshold trace ``a`` driven by the
neuron's own spikes.  State per sample ``(V, S, a)``, all zero at ``t = 0``; with
``z^f_t = W_f x_t + b_f`` (computed for the whole sequence at once, folded over time) and the
masked recurrent weights ``W~_r = W_r * M``, one step is (in this order, as the authors' code)::

    a_t   = alpha a_{t-1} + beta S_{t-1}                           threshold trace
    V^f_t = lambda V_{t-1} (1 - S_{t-1}) + z^f_t - gamma a_t       feed-forward channel
    s^f_t = H(V^f_t - V_th)
    V^r_t = W~_r S_{t-1} + b_r                                     recurrent channel (no memory)
    s^r_t = H(V^r_t - V_th)
    V_t   = V^f_t + V^r_t,     S_t = s^f_t + s^r_t  in {0, 1, 2}

with ``lambda = 0.2``, ``V_th = 0.5`` (strict ``>``), ``alpha = 0.9``, ``beta = 0.1`` and the
RectWindow surrogate (gradient 1 for ``|V - V_th| < 0.5``) for both channels.  The reset factor
``(1 - S_{t-1})`` is ``-1`` when both channels fired (the carried potential changes sign), as in
the paper's equation and the code.  ``gamma`` scales the adaptive threshold (effective threshold
``V_th + gamma a_t``): 1 as in the paper (the default here); the authors' code defaults to 0,
which switches the threshold term off (``gamma=0`` or ``adaptive=False``).

Gradient of the spikes of the previous step (``detach_prev``):

* ``False`` (BP-RSNN): full surrogate BPTT, including through every reuse of ``S_{t-1}``
  (reset factor, threshold trace, recurrent input);
* ``True`` (NRR's reward propagation): every reuse of ``S_{t-1}`` is detached, while the
  membrane path ``V_{t-1} -> V^f_t`` (factor ``lambda (1 - S_{t-1})``) keeps its gradient, so
  ``W_r`` learns from its own step's teaching signal plus the next step's through the membrane.

:class:`RecurrentNRR` is the layer (``Linear(D -> N)``, ``Linear(N -> N)`` with the sparse mask,
a :class:`~spikedyn.layers.SpikeTap` on ``S``).  :func:`nrr_step` is the pure step function of
the per-step reference path; ``fast=True`` runs the whole window as one autograd node with a
hand-written backward through time (both ``detach_prev`` settings).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..surrogate import RectWindow, Surrogate
from .base import NeuronRun


class NRRState(NamedTuple):
    """``v``: combined membrane ``V^f + V^r``; ``s``: spike count ``s^f + s^r`` in {0, 1, 2};
    ``a``: threshold trace.  Each ``[B, N]``."""

    v: Tensor
    s: Tensor
    a: Tensor


class NRRParams(NamedTuple):
    """Fixed constants of the cell: leak ``decay`` (lambda), ``v_th``, trace ``alpha`` and
    ``beta``, threshold gain ``gamma`` (0: no adaptive threshold)."""

    decay: float = 0.2
    v_th: float = 0.5
    alpha: float = 0.9
    beta: float = 0.1
    gamma: float = 1.0


def nrr_step(
    zf_t: Tensor,
    state: NRRState,
    w_rec_masked: Tensor | None,
    b_rec: Tensor | None,
    params: NRRParams,
    surrogate: Surrogate,
    detach_prev: bool = False,
) -> tuple[Tensor, NRRState]:
    """One step of the cell (see the module docstring) for the feed-forward drive ``zf_t``
    ``[B, N]``.

    ``w_rec_masked`` ``[N, N]`` is ``W_r * M`` (already masked); with ``w_rec_masked`` and
    ``b_rec`` both ``None`` there is no recurrent channel (``V = V^f``, ``S = s^f``).
    ``detach_prev`` detaches every use of ``S_{t-1}`` but not ``V_{t-1}``.
    """
    s_prev = state.s.detach() if detach_prev else state.s
    a = params.alpha * state.a + params.beta * s_prev
    vf = params.decay * state.v * (1.0 - s_prev) + zf_t
    if params.gamma != 0.0:
        vf = vf - params.gamma * a
    sf = surrogate.spike(vf - params.v_th, inclusive=False)
    if w_rec_masked is None and b_rec is None:
        return sf, NRRState(vf, sf, a)
    if w_rec_masked is None:
        vr = b_rec.expand_as(vf)
    else:
        vr = F.linear(s_prev, w_rec_masked, b_rec)
    sr = surrogate.spike(vr - params.v_th, inclusive=False)
    s = sf + sr
    return s, NRRState(vf + vr, s, a)


class _NRRSequence(torch.autograd.Function):
    """The whole window of the cell as one autograd node.

    Forward saves ``V^f``, ``V^r`` and ``S`` (``[T, B, N]`` each); one matmul per step for the
    recurrence.  Backward runs through time in place over the surrogate derivatives: only
    elementwise work per step with ``detach_prev`` (the recurrent weights' gradient is one
    matmul over the folded window afterwards), plus one matmul per step without it.
    """

    @staticmethod
    def forward(ctx, zf, w, b, params: NRRParams, surrogate: Surrogate, detach_prev: bool):  # type: ignore[override]
        decay, v_th, alpha, beta, gamma = params
        recurrent = w is not None or b is not None
        T = zf.shape[0]
        vf = torch.empty_like(zf)
        vr = torch.empty_like(zf) if recurrent else None
        s = torch.empty_like(zf)
        v = torch.zeros_like(zf[0])  # V_{t-1}
        a = torch.zeros_like(zf[0])
        zero = torch.zeros_like(zf[0])
        keep = torch.empty_like(zf[0])  # 1 - S_{t-1}
        tmp = torch.empty_like(zf[0])
        spk = torch.empty_like(zf[0])
        w_t = w.t() if w is not None else None
        for t in range(T):
            s_prev = s[t - 1] if t > 0 else zero
            # a = alpha a + beta S_{t-1}   (same operations, and roundings, as nrr_step)
            a.mul_(alpha)
            torch.mul(s_prev, beta, out=tmp)
            a.add_(tmp)
            # V^f = (lambda V_{t-1}) (1 - S_{t-1}) + z^f - gamma a
            torch.neg(s_prev, out=keep).add_(1.0)
            torch.mul(v, decay, out=tmp).mul_(keep)
            torch.add(tmp, zf[t], out=vf[t])
            if gamma != 0.0:
                torch.mul(a, gamma, out=tmp)
                vf[t].sub_(tmp)
            torch.gt(vf[t], v_th, out=s[t])
            if recurrent:
                if w is None:
                    vr[t].copy_(b.expand_as(vr[t]))
                elif b is None:
                    torch.mm(s_prev, w_t, out=vr[t])
                else:
                    torch.addmm(b, s_prev, w_t, out=vr[t])
                torch.gt(vr[t], v_th, out=spk)
                s[t].add_(spk)
                torch.add(vf[t], vr[t], out=v)
            else:
                v.copy_(vf[t])
        ctx.save_for_backward(vf, vr, s, w)
        ctx.params, ctx.surrogate, ctx.detach_prev, ctx.recurrent = params, surrogate, detach_prev, recurrent
        return s

    @staticmethod
    def backward(ctx, grad_s: Tensor):  # type: ignore[override]
        vf, vr, s, w = ctx.saved_tensors
        decay, v_th, alpha, beta, gamma = ctx.params
        recurrent, detach_prev = ctx.recurrent, ctx.detach_prev
        T = vf.shape[0]
        # dL/dV^f_t and dL/dV^r_t, built in place over the surrogate derivatives
        gvf = ctx.surrogate.grad_(vf - v_th)
        gvr = ctx.surrogate.grad_(vr - v_th) if recurrent else None
        with_trace = not detach_prev and gamma != 0.0
        ga = torch.zeros_like(vf[0]) if with_trace else None  # dL/da_{t+1}
        g_spk = torch.empty_like(vf[0])  # dL/dS_t
        g_mem = torch.empty_like(vf[0])  # dL/dV_t = lambda (1 - S_t) dL/dV^f_{t+1}
        v_t = torch.empty_like(vf[0]) if not detach_prev and recurrent else None
        for t in range(T - 1, -1, -1):
            if t == T - 1:
                gvf[t].mul_(grad_s[t])
                if recurrent:
                    gvr[t].mul_(grad_s[t])
            else:
                g_next = gvf[t + 1]
                torch.mul(s[t], g_next, out=g_mem)
                torch.sub(g_next, g_mem, out=g_mem).mul_(decay)
                if detach_prev:
                    g = grad_s[t]
                else:
                    # S_t also enters V^f_{t+1} (reset factor: -lambda V_t), a_{t+1} (beta) and V^r_{t+1}
                    if recurrent:
                        torch.add(vf[t], vr[t], out=v_t)
                        torch.mul(v_t, g_next, out=g_spk)
                    else:
                        torch.mul(vf[t], g_next, out=g_spk)
                    torch.sub(grad_s[t], g_spk, alpha=decay, out=g_spk)
                    if with_trace:
                        g_spk.add_(ga, alpha=beta)
                    if w is not None:
                        g_spk.addmm_(gvr[t + 1], w)
                    g = g_spk
                gvf[t].mul_(g).add_(g_mem)
                if recurrent:
                    gvr[t].mul_(g).add_(g_mem)
            if with_trace:  # a_t enters V^f_t (-gamma) and a_{t+1} (alpha)
                ga.mul_(alpha).add_(gvf[t], alpha=-gamma)
        grad_w = grad_b = None
        if w is not None and ctx.needs_input_grad[1]:
            n_out, n_in = w.shape
            if T > 1:
                grad_w = gvr[1:].reshape(-1, n_out).t().mm(s[:-1].reshape(-1, n_in))
            else:
                grad_w = torch.zeros_like(w)
        if recurrent and ctx.needs_input_grad[2]:
            grad_b = gvr.sum((0, 1))
        grad_zf = gvf if ctx.needs_input_grad[0] else None
        return grad_zf, grad_w, grad_b, None, None, None


def sparse_recurrent_mask(n: int, sparseness: float, generator: torch.Generator | None = None) -> Tensor:
    """The recurrent connectivity mask ``M`` ``[n, n]`` (float, 0/1).

    Start from ``1 - I`` (no self-connections), then set ``floor(sparseness * n^2)`` entries,
    chosen uniformly without replacement among all ``n^2`` positions (the diagonal included), to
    0, as in the authors' code.  ``sparseness = 0.5`` leaves about half of the connections.
    """
    if not 0.0 <= sparseness <= 1.0:
        raise ValueError(f"sparseness must lie in [0, 1], got {sparseness}")
    mask = 1.0 - torch.eye(n)
    drop = math.floor(sparseness * n * n)
    if drop:
        chosen = torch.randperm(n * n, generator=generator)[:drop]
        mask.view(-1)[chosen] = 0.0
    return mask


class MaskedRecurrentSynapses:
    """Mixin for an ``nn.Module`` recurrent layer: feed-forward ``W_f``, masked recurrent ``W_r`` and its tap.

    :meth:`init_synapses` makes ``fc_f`` (``W_f, b_f``), ``fc_r`` (``W_r, b_r``, None without
    recurrence), the sparse mask ``M`` as a saved buffer (no self-loops; the masked entries of
    ``W_r`` are exactly 0 from the start) and, with ``classes``, the layer's :class:`SpikeTap`.
    Shared by the NRR cell and its non-spiking stand-in, which must have the same parameters.
    """

    def init_synapses(
        self, inputs: int, hidden: int, recurrent: bool, sparseness: float, mask_seed: int | None, classes: int | None,
    ) -> None:
        self.fc_f = nn.Linear(inputs, hidden)
        if recurrent:
            self.fc_r = nn.Linear(hidden, hidden)
            generator = None if mask_seed is None else torch.Generator().manual_seed(int(mask_seed))
            self.register_buffer("mask", sparse_recurrent_mask(hidden, sparseness, generator))
            self.apply_mask_()
        else:
            self.fc_r = None
            self.register_buffer("mask", None)
        if classes is not None:
            from ..layers.taps import SpikeTap  # lazy: spikedyn.layers imports this package

            self.tap = SpikeTap(hidden, classes)
        else:
            self.tap = None

    @torch.no_grad()
    def apply_mask_(self) -> None:
        """Set the masked entries of ``W_r`` to exactly 0 (in place)."""
        if self.fc_r is not None:
            self.fc_r.weight.mul_(self.mask.to(self.fc_r.weight.dtype))


class RecurrentNRR(MaskedRecurrentSynapses, nn.Module):
    """NRR-SNN's hidden layer: ``x`` ``[T, B, inputs]`` -> spikes ``S`` ``[T, B, hidden]`` in {0, 1, 2}.

    * ``fc_f``: ``Linear(inputs, hidden)`` (``W_f, b_f``), applied once over the folded sequence;
    * ``fc_r``: ``Linear(hidden, hidden)`` (``W_r, b_r``) with the connectivity buffer ``mask``
      (:func:`sparse_recurrent_mask`, drawn once from ``torch.Generator().manual_seed(mask_seed)``,
      or from the global random stream when ``mask_seed`` is None; saved in the state dict).
      ``W_r`` is multiplied by the mask in place at construction and the forward pass uses
      ``W_r * mask``, so the gradient of every masked entry is exactly 0 and an optimiser
      (Adam, SGD, with or without weight decay) never moves it from 0;
      :meth:`apply_mask_` re-zeroes it after weights are edited by hand;
    * ``tap``: a :class:`~spikedyn.layers.SpikeTap` on ``S`` (only when ``classes`` is given).
      A model feeds ``layer.tap(S)`` to its read-out and returns the un-detached ``S`` in
      ``NetOutput.taps``.  When a reward-propagation rule makes the tap local, the cell also
      detaches every reuse of ``S_{t-1}`` inside (``detach_prev`` follows ``tap.local`` unless
      given explicitly).

    Options: ``sparseness`` (fraction of the ``hidden^2`` positions cut, 0.5), ``gamma`` (1; 0
    as the authors' code default), ``alpha``, ``beta``, ``decay``, ``v_th``,
    ``recurrent=False`` (no ``W_r``: the pure feed-forward ablation), ``adaptive=False``
    (``gamma = 0``), ``fast`` (fused whole-window node; ``False``: per-step reference path).
    """

    def __init__(
        self,
        inputs: int,
        hidden: int = 500,
        classes: int | None = None,
        *,
        sparseness: float = 0.5,
        gamma: float = 1.0,
        alpha: float = 0.9,
        beta: float = 0.1,
        decay: float = 0.2,
        v_th: float = 0.5,
        recurrent: bool = True,
        adaptive: bool = True,
        surrogate: Surrogate | None = None,
        detach_prev: bool | None = None,
        mask_seed: int | None = None,
        fast: bool = True,
    ) -> None:
        super().__init__()
        if inputs < 1 or hidden < 1:
            raise ValueError(f"RecurrentNRR needs positive inputs and hidden sizes, got {inputs} and {hidden}")
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"decay must lie in [0, 1], got {decay}")
        if not 0.0 <= sparseness <= 1.0:
            raise ValueError(f"sparseness must lie in [0, 1], got {sparseness}")
        self.inputs, self.hidden = int(inputs), int(hidden)
        self.sparseness = float(sparseness)
        self.gamma, self.alpha, self.beta = float(gamma), float(alpha), float(beta)
        self.decay, self.v_th = float(decay), float(v_th)
        self.recurrent, self.adaptive = bool(recurrent), bool(adaptive)
        self.surrogate = surrogate if surrogate is not None else RectWindow(0.5, 1.0)
        self.detach_option = detach_prev
        self.fast = fast
        self.init_synapses(inputs, hidden, recurrent, sparseness, mask_seed, classes)

    # -- configuration ---------------------------------------------------------------------
    @property
    def params(self) -> NRRParams:
        """The cell's constants as used (``gamma`` is 0 when ``adaptive=False``)."""
        return NRRParams(self.decay, self.v_th, self.alpha, self.beta, self.gamma if self.adaptive else 0.0)

    @property
    def detach_prev(self) -> bool:
        """Whether every reuse of ``S_{t-1}`` is detached: the explicit option, else the tap's ``local``."""
        if self.detach_option is not None:
            return bool(self.detach_option)
        return self.tap is not None and self.tap.local

    def recurrent_weight(self) -> Tensor | None:
        """``W_r * M`` as used by the cell (differentiable in ``W_r``), or None without recurrence."""
        return None if self.fc_r is None else self.fc_r.weight * self.mask

    # -- running ---------------------------------------------------------------------------
    def initial_state(self, like: Tensor) -> NRRState:
        """Zero ``(V, S, a)`` shaped like one step's drive ``[B, N]``."""
        return NRRState(torch.zeros_like(like), torch.zeros_like(like), torch.zeros_like(like))

    def drive(self, x: Tensor) -> Tensor:
        """Feed-forward drive ``z^f = W_f x + b_f`` ``[T, B, hidden]`` of the whole sequence (one matmul)."""
        if x.dim() != 3 or x.shape[2] != self.inputs:
            raise ValueError(
                f"RecurrentNRR with {self.inputs} inputs expects a sequence [T, B, {self.inputs}], "
                f"got shape {tuple(x.shape)}"
            )
        if x.shape[0] < 1:
            raise ValueError("RecurrentNRR needs at least one time step, got an empty sequence")
        if not x.is_floating_point():
            raise ValueError(f"RecurrentNRR expects floating-point input, got {x.dtype}; convert it first (e.g. x.float())")
        return self.fc_f(x)

    def step(self, x_t: Tensor, state: NRRState) -> tuple[Tensor, NRRState]:
        """One step of :meth:`forward`: input ``x_t`` ``[B, inputs]`` -> ``(S_t, new_state)``.

        Applies ``W_f x_t + b_f`` as ``forward`` does, then :meth:`step_drive`; so stepping through
        ``x`` from ``initial_state`` (zeros ``[B, hidden]``) gives ``forward(x)`` step by step.
        """
        if x_t.dim() != 2:
            raise ValueError(
                f"RecurrentNRR.step expects one step's input [B, {self.inputs}], got shape {tuple(x_t.shape)}"
            )
        return self.step_drive(self.drive(x_t.unsqueeze(0))[0], state)

    def step_drive(self, zf_t: Tensor, state: NRRState) -> tuple[Tensor, NRRState]:
        """One reference step from the feed-forward drive ``zf_t = W_f x_t + b_f`` ``[B, hidden]``."""
        b = None if self.fc_r is None else self.fc_r.bias
        return nrr_step(zf_t, state, self.recurrent_weight(), b, self.params, self.surrogate, self.detach_prev)

    def forward(self, x: Tensor) -> Tensor:
        """Spikes ``S`` ``[T, B, hidden]`` (values 0, 1, 2), not detached (pass them through ``tap``)."""
        zf = self.drive(x)
        if not self.fast:
            return self.run_drive(zf).spikes
        w = self.recurrent_weight()
        b = None if self.fc_r is None else self.fc_r.bias
        return _NRRSequence.apply(zf, w, b, self.params, self.surrogate, self.detach_prev)

    def run(self, x: Tensor, record: bool = False) -> NeuronRun:
        """Per-step reference run; ``record=True`` keeps the traces of ``v``, ``s`` and ``a``."""
        return self.run_drive(self.drive(x), record=record)

    def run_drive(self, zf: Tensor, record: bool = False) -> NeuronRun:
        """Reference run from the feed-forward drive ``zf`` ``[T, B, hidden]``."""
        w = self.recurrent_weight()  # masked once per window, used at every step
        b = None if self.fc_r is None else self.fc_r.bias
        params, detach = self.params, self.detach_prev
        state = self.initial_state(zf[0])
        spikes: list[Tensor] = []
        traces: dict[str, list[Tensor]] = {name: [] for name in NRRState._fields} if record else {}
        for zf_t in zf:
            s_t, state = nrr_step(zf_t, state, w, b, params, self.surrogate, detach)
            spikes.append(s_t)
            for name in traces:
                traces[name].append(getattr(state, name))
        return NeuronRun(
            spikes=torch.stack(spikes),
            state=state,
            traces={name: torch.stack(values) for name, values in traces.items()},
        )

    def extra_repr(self) -> str:
        return (
            f"inputs={self.inputs}, hidden={self.hidden}, recurrent={self.recurrent}, sparseness={self.sparseness}, "
            f"adaptive={self.adaptive}, gamma={self.gamma}, alpha={self.alpha}, beta={self.beta}, "
            f"decay={self.decay}, v_th={self.v_th}, detach_prev={self.detach_prev}, fast={self.fast}"
        )
