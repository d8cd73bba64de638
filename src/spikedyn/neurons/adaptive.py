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

    Forward, per step: one recurrent product (``addmm`` on the masked weights transposed and made
    contiguous once per call) into a small per-step buffer ``[V^f_t; V^r_t]`` that stays in cache,
    one comparison firing both channels, and a few in-place elementwise operations with the
    constants as 0-d tensors (a Python number costs a conversion on every call) on per-step
    views taken once (``unbind``).  It rounds exactly as :func:`nrr_step` (the products with
    ``S_{t-1}`` in {0, 1, 2} and with ``lambda (1 - S_{t-1})`` in {lambda, 0, -lambda} are exact),
    so both paths give the same spikes.  When a gradient is wanted it writes, per step, what
    backward needs instead of the potentials: the surrogate derivatives ``sg_t`` of both channels
    (``[2, T, B, N]``), the membrane factor ``lambda (1 - S_t)`` and, for BPTT, ``V_t``.

    Backward runs through time in place over ``sg``: dL/dS_t (the step's own gradient plus, for
    BPTT, the reset factor, the threshold trace and one product with ``W~_r``), the membrane path
    and ``dL/d[V^f_t; V^r_t] = sg_t dL/dS_t + dL/dV_t`` for both channels in one ``addcmul``.  With
    ``detach_prev`` only the membrane path remains (two operations a step); the recurrent
    weights' gradient is one product over the folded window afterwards.
    """

    @staticmethod
    def forward(ctx, zf, w, b, params: NRRParams, surrogate: Surrogate, detach_prev: bool):  # type: ignore[override]
        decay, v_th, alpha, beta, gamma = params
        recurrent = w is not None or b is not None
        grad = any(ctx.needs_input_grad[:3])
        T = zf.shape[0]
        const = lambda value: torch.tensor(value, dtype=zf.dtype)  # noqa: E731 - 0-d operand: no per-call conversion
        channels = 2 if recurrent else 1
        s = torch.empty_like(zf)
        # what backward needs: surrogate derivatives of [V^f; V^r], lambda (1 - S_t), and V_t for BPTT
        sg = zf.new_empty((channels, *zf.shape)) if grad else None
        keep = torch.empty_like(zf)  # lambda (1 - S_t): the factor of V_t in V^f_{t+1}
        v = torch.empty_like(zf) if grad and not detach_prev else None
        cur = zf.new_empty((channels, *zf.shape[1:]))  # [V^f_t; V^r_t] of the current step
        vt = torch.empty_like(zf[0])
        u = torch.empty_like(zf[0])  # lambda V_{t-1} (1 - S_{t-1})
        a = torch.zeros_like(zf[0])  # threshold trace a_t
        spk = torch.empty_like(cur)  # the channels' spikes of one step
        w_t = w.t().contiguous() if w is not None else None  # [in, out]: the fast layout for S_{t-1} W~^T
        zs, ss, keeps = zf.unbind(0), s.unbind(0), keep.unbind(0)
        vs = v.unbind(0) if v is not None else None
        sgs = sg.unbind(1) if sg is not None else None
        decay_, v_th_, alpha_ = const(decay), const(v_th), const(alpha)
        gamma_ = const(gamma) if gamma not in (0.0, 1.0) else None
        scaled_a = torch.empty_like(a) if gamma_ is not None else None
        vf = cur[0]
        for t in range(T):
            if t == 0:
                vf.copy_(zs[0])  # V_0 = S_0 = a_0 = 0: V^f_1 = z^f_1
                if recurrent:
                    if b is None:
                        cur[1].zero_()
                    else:
                        cur[1].copy_(b.expand_as(cur[1]))  # S_0 = 0: V^r_1 = b_r
            else:
                s_prev = ss[t - 1]
                torch.mul(v_prev, keeps[t - 1], out=u)  # = (lambda V) (1 - S) exactly
                torch.add(u, zs[t], out=vf)
                if gamma != 0.0:
                    a.mul_(alpha_).add_(s_prev, alpha=beta)  # beta S is exact: same rounding as nrr_step
                    vf.sub_(a if gamma_ is None else torch.mul(a, gamma_, out=scaled_a))
                if w is not None:
                    if b is None:
                        torch.mm(s_prev, w_t, out=cur[1])
                    else:
                        torch.addmm(b, s_prev, w_t, out=cur[1])
                elif recurrent:
                    cur[1].copy_(b.expand_as(cur[1]))  # no recurrent weights: the channel is the constant bias
            v_prev = vs[t] if vs is not None else vt
            if recurrent:
                torch.gt(cur, v_th_, out=spk)
                torch.add(spk[0], spk[1], out=ss[t])
                torch.add(cur[0], cur[1], out=v_prev)
            else:
                torch.gt(vf, v_th_, out=ss[t])
                v_prev.copy_(vf)
            torch.sub(decay_, ss[t], alpha=decay, out=keeps[t])
            if grad:
                surrogate.grad_(torch.sub(cur, v_th_, out=sgs[t]))
        ctx.save_for_backward(sg, keep, v, s, w)
        ctx.params, ctx.detach_prev, ctx.recurrent = params, detach_prev, recurrent
        return s

    @staticmethod
    def backward(ctx, grad_s: Tensor):  # type: ignore[override]
        sg, keep, v, s, w = ctx.saved_tensors
        decay, v_th, alpha, beta, gamma = ctx.params
        recurrent, detach_prev = ctx.recurrent, ctx.detach_prev
        T = s.shape[0]
        gv = sg  # dL/d[V^f_t; V^r_t], built in place over the surrogate derivatives
        gvf = gv[0]
        gvs, gvfs, keeps, grads = gv.unbind(1), gvf.unbind(0), keep.unbind(0), grad_s.unbind(0)
        gvrs = gv[1].unbind(0) if recurrent else None
        vs = v.unbind(0) if v is not None else None
        with_trace = not detach_prev and gamma != 0.0
        # h_t = -dL/da_t / gamma = dL/dV^f_t + alpha h_{t+1}: S_t enters a_{t+1} with weight beta
        h = torch.empty_like(s[0]) if with_trace else None
        g_mem = torch.empty_like(s[0])  # dL/dV_t through the membrane
        g_spk = torch.empty_like(s[0]) if not detach_prev else None  # dL/dS_t
        gvs[T - 1].mul_(grads[T - 1])
        if with_trace:
            h.copy_(gvfs[T - 1])
        for t in range(T - 2, -1, -1):
            g_next = gvfs[t + 1]
            torch.mul(keeps[t], g_next, out=g_mem)
            if detach_prev:
                g = grads[t]
            else:
                # S_t also enters V^f_{t+1} (reset factor: -lambda V_t), a_{t+1} (beta) and V^r_{t+1} (W~_r)
                torch.addcmul(grads[t], vs[t], g_next, value=-decay, out=g_spk)
                if with_trace:
                    g_spk.add_(h, alpha=-gamma * beta)
                if w is not None:
                    g_spk.addmm_(gvrs[t + 1], w)
                g = g_spk
            torch.addcmul(g_mem, gvs[t], g, out=gvs[t])
            if with_trace:
                torch.add(gvfs[t], h, alpha=alpha, out=h)
        grad_w = grad_b = None
        if w is not None and ctx.needs_input_grad[1]:
            n_out, n_in = w.shape
            if T > 1:
                grad_w = gv[1, 1:].reshape(-1, n_out).t().mm(s[:-1].reshape(-1, n_in))
            else:
                grad_w = torch.zeros_like(w)
        if recurrent and ctx.needs_input_grad[2]:
            grad_b = gv[1].sum((0, 1))
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
