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

``recurrent_input="membrane"`` (an option of :class:`RecurrentNRR`, not part of NRR) adds the
recurrent input to the leaky membrane instead: ``V_t = V^f_t + W~_r S_{t-1} + b_r`` with one
threshold, ``S_t = H(V_t - V_th)`` in {0, 1}; with ``gamma = 0`` it is the plain recurrent
decay-LIF, on the same mask, rules and fused path.

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

from ..kernels import use_cpp, use_triton
from ..surrogate import RectWindow, Surrogate
from ..precision import lift_to_float32
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
    merged: bool = False,
) -> tuple[Tensor, NRRState]:
    """One step of the cell (see the module docstring) for the feed-forward drive ``zf_t``
    ``[B, N]``.

    ``w_rec_masked`` ``[N, N]`` is ``W_r * M`` (already masked); with ``w_rec_masked`` and
    ``b_rec`` both ``None`` there is no recurrent channel (``V = V^f``, ``S = s^f``).
    ``detach_prev`` detaches every use of ``S_{t-1}`` but not ``V_{t-1}``.  ``merged``: the
    recurrent input enters the membrane (``V = V^f + V^r``, ``S = H(V - V_th)`` in {0, 1}) instead
    of a channel of its own (``recurrent_input="membrane"`` of :class:`RecurrentNRR`).
    """
    s_prev = state.s.detach() if detach_prev else state.s
    a = params.alpha * state.a + params.beta * s_prev
    vf = params.decay * state.v * (1.0 - s_prev) + zf_t
    if params.gamma != 0.0:
        vf = vf - params.gamma * a
    if w_rec_masked is None and b_rec is None:
        sf = surrogate.spike(vf - params.v_th, inclusive=False)
        return sf, NRRState(vf, sf, a)
    if w_rec_masked is None:
        vr = b_rec.expand_as(vf)
    else:
        vr = F.linear(s_prev, w_rec_masked, b_rec)
    if merged:
        v = vf + vr
        s = surrogate.spike(v - params.v_th, inclusive=False)
        return s, NRRState(v, s, a)
    sf = surrogate.spike(vf - params.v_th, inclusive=False)
    sr = surrogate.spike(vr - params.v_th, inclusive=False)
    s = sf + sr
    return s, NRRState(vf + vr, s, a)


class _NRRSequence(torch.autograd.Function):
    """The whole window of the cell as one autograd node (both ``recurrent_input`` forms).

    Forward, per step: one recurrent product (``addmm`` on the masked weights, transposed and
    made contiguous once per call) written straight into the saved potentials, and a few
    in-place elementwise operations with the constants as 0-d tensors (a Python number costs a
    conversion on every call) on per-step views taken once (``unbind``); NRR's two channels are
    stacked (``[V^f; V^r]``, ``[2, T, B, N]``) so that one comparison fires both.  It rounds
    exactly as :func:`nrr_step` (the products with ``S_{t-1}`` in {0, 1, 2} and with
    ``1 - S_{t-1}`` in {1, 0, -1} are exact, and the recurrent product is the same ``addmm``), so
    both paths give the same spikes.  Saved for backward: the potentials and ``S``.

    Backward: what needs no recursion is done for the whole window at once (the surrogate
    derivatives, in place; the membrane factor ``lambda (1 - S_t)``; ``V_t`` for BPTT), then one
    pass back through time over both channels: dL/dS_t (the step's own gradient plus, for BPTT,
    the reset factor, the threshold trace and one product with ``W~_r``), the membrane path and
    ``dL/dV_t = sg_t dL/dS_t + dL/dV_t|membrane`` for every channel in one ``addcmul``.  With
    ``detach_prev`` only the membrane path remains (two operations a step); the recurrent
    weights' gradient is one product over the folded window afterwards.

    ``compiled=True`` (CPU tensors, chosen by :func:`spikedyn.kernels.use_cpp`) runs both time loops
    as compiled C++ (``spikedyn/kernels/cpu_nrr.cpp``): the same recurrent products through ATen and
    one pass over a step's elements for the rest, rounded in the same order, so the spikes are the
    same; the whole-window parts of backward are shared.
    """

    @staticmethod
    def forward(ctx, zf, w, b, params: NRRParams, surrogate: Surrogate, detach_prev: bool, merged: bool = False,  # type: ignore[override]
                compiled: bool = False):
        decay, v_th, alpha, beta, gamma = params
        recurrent = w is not None or b is not None
        two = recurrent and not merged  # NRR: a separate memory-less recurrent channel
        ctx.params, ctx.surrogate, ctx.detach_prev, ctx.two = params, surrogate, detach_prev, two
        ctx.recurrent, ctx.compiled = recurrent, compiled
        if compiled:  # the same loop compiled (spikedyn.kernels.cpu): one pass over the elements per step
            from ..kernels import cpu

            zf = zf.contiguous()
            pot = zf.new_empty((2 if two else 1, *zf.shape))
            s = torch.empty_like(zf)
            w_t = w.t().contiguous() if w is not None else None
            cpu.ops().nrr_forward(zf, w_t, b, pot, s, decay, v_th, alpha, beta, gamma, two)
            ctx.save_for_backward(pot, s, w)
            return s
        T = zf.shape[0]
        const = lambda value: torch.tensor(value, dtype=zf.dtype)  # noqa: E731 - 0-d operand: no per-call conversion
        pot = zf.new_empty((2 if two else 1, *zf.shape))  # [V^f; V^r], or the one membrane V
        s = torch.empty_like(zf)
        w_t = w.t().contiguous() if w is not None else None  # [in, out]: the fast layout for S_{t-1} W~^T
        zs, ss, vfs, pots = zf.unbind(0), s.unbind(0), pot[0].unbind(0), pot.unbind(1)
        rec = pot[1].unbind(0) if two else ((torch.empty_like(zf[0]),) * T if recurrent else None)
        v_th_, alpha_, one_ = const(v_th), const(alpha), const(1.0)
        gamma_ = const(gamma) if gamma not in (0.0, 1.0) else None
        scaled_a = torch.empty_like(zf[0]) if gamma_ is not None else None
        a = torch.zeros_like(zf[0])  # threshold trace a_t
        u = torch.empty_like(zf[0])  # 1 - S_{t-1}
        v = torch.empty_like(zf[0]) if two else None  # V_t = V^f_t + V^r_t
        spk = torch.empty_like(pot[:, 0]) if two else None  # the two channels' spikes of one step
        v_prev = None
        # NRR's channel V^r with weights and bias: the bias is written into the whole window at once, and each
        # step's product is accumulated onto it in place (the same gemm as addmm(b, S, W~^T), without its copy)
        biased_window = two and w is not None and b is not None
        if biased_window:
            pot[1].copy_(b.expand_as(pot[1]))
        for t in range(T):
            vf = vfs[t]
            if t == 0:
                vf.copy_(zs[0])  # V_0 = S_0 = a_0 = 0
            else:
                s_prev = ss[t - 1]
                torch.sub(one_, s_prev, out=u)  # 1 - S_{t-1} in {1, 0, -1}
                # z + (lambda V) (1 - S): addcmul multiplies in this order, so it rounds as nrr_step does
                torch.addcmul(zs[t], v_prev, u, value=decay, out=vf)
                if gamma != 0.0:
                    a.mul_(alpha_).add_(s_prev, alpha=beta)  # beta S is exact: same rounding as nrr_step
                    vf.sub_(a if gamma_ is None else torch.mul(a, gamma_, out=scaled_a))
            if recurrent:
                r = rec[t]
                if biased_window:  # V^r_t = b_r + W~_r S_{t-1} accumulated onto the bias filled in before the loop
                    if t > 0:
                        r.addmm_(s_prev, w_t)
                elif w is None or t == 0:  # S_0 = 0 (or no recurrent weights): the recurrent input is b_r
                    r.zero_() if b is None else r.copy_(b.expand_as(r))
                elif b is None:
                    torch.mm(s_prev, w_t, out=r)
                else:
                    torch.addmm(b, s_prev, w_t, out=r)
                if not two:
                    vf.add_(r)  # the recurrent input enters the membrane
            if two:
                torch.gt(pots[t], v_th_, out=spk)
                torch.add(spk[0], spk[1], out=ss[t])
                v_prev = torch.add(vf, rec[t], out=v)
            else:
                torch.gt(vf, v_th_, out=ss[t])
                v_prev = vf
        ctx.save_for_backward(pot, s, w)
        return s

    @staticmethod
    def backward(ctx, grad_s: Tensor):  # type: ignore[override]
        pot, s, w = ctx.saved_tensors
        decay, v_th, alpha, beta, gamma = ctx.params
        two, recurrent, detach_prev = ctx.two, ctx.recurrent, ctx.detach_prev
        T = s.shape[0]
        # for the whole window at once: dS/dV of every channel (becomes dL/dV in place), lambda (1 - S_t), V_t
        gv = ctx.surrogate.grad_(pot - v_th)
        keeps = torch.rsub(s[:-1], decay, alpha=decay) if T > 1 else None
        vs = None
        if not detach_prev:
            vs = torch.add(pot[0], pot[1]) if two else pot[0]
        if ctx.compiled:
            from ..kernels import cpu

            cpu.ops().nrr_backward(
                gv, grad_s.contiguous(), keeps if T > 1 else s.new_empty(0), vs, w, decay, alpha, beta, gamma, two,
                detach_prev,
            )
        else:
            _nrr_backward_loop(gv, grad_s, keeps, vs, w, ctx.params, two, detach_prev)
        return _NRRSequence._parameter_grads(ctx, gv, s, w, two, recurrent)

    @staticmethod
    def _parameter_grads(ctx, gv: Tensor, s: Tensor, w: Tensor | None, two: bool, recurrent: bool):
        """The gradients of ``zf``, ``W~_r`` and ``b_r`` from ``dL/dV`` of the whole window."""
        T = s.shape[0]
        gvr = gv[1] if two else gv[0]
        grad_w = grad_b = None
        if w is not None and ctx.needs_input_grad[1]:
            n_out, n_in = w.shape
            if T > 1:
                grad_w = gvr[1:].reshape(-1, n_out).t().mm(s[:-1].reshape(-1, n_in))
            else:
                grad_w = torch.zeros_like(w)
        if recurrent and ctx.needs_input_grad[2]:
            grad_b = gvr.sum((0, 1))
        grad_zf = gv[0] if ctx.needs_input_grad[0] else None
        return grad_zf, grad_w, grad_b, None, None, None, None, None


def _nrr_backward_loop(gv: Tensor, grad_s: Tensor, keeps: Tensor | None, vs: Tensor | None, w: Tensor | None,
                       params: NRRParams, two: bool, detach_prev: bool) -> None:
    """The recursion of :meth:`_NRRSequence.backward` through time in PyTorch operations (``gv``:
    the surrogate derivatives on entry, ``dL/dV`` on return, in place)."""
    decay, _, alpha, beta, gamma = params
    T = grad_s.shape[0]
    with_trace = not detach_prev and gamma != 0.0
    keeps = keeps.unbind(0) if keeps is not None else ()
    vs = vs.unbind(0) if vs is not None else None
    gvs, gvfs, grads = gv.unbind(1), gv[0].unbind(0), grad_s.unbind(0)
    gvrs = gv[1].unbind(0) if two else gvfs  # where W~_r S_{t-1} enters: V^r, or the membrane itself
    # h_t = -dL/da_t / gamma = dL/dV^f_t + alpha h_{t+1}: S_t enters a_{t+1} with weight beta
    h = torch.empty_like(grad_s[0]) if with_trace else None
    g_mem = torch.empty_like(grad_s[0])  # dL/dV_t through the membrane
    g_spk = torch.empty_like(grad_s[0]) if not detach_prev else None  # dL/dS_t
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


#: where the recurrent input W~_r S_{t-1} + b_r goes: NRR's own channel, or the leaky membrane (plain recurrent LIF)
RECURRENT_INPUTS = ("channel", "membrane")


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
    ``recurrent_input``: ``"channel"`` (NRR, default: the memory-less recurrent channel ``V^r``
    with its own threshold, ``S`` in {0, 1, 2}) or ``"membrane"`` (``W~_r S_{t-1} + b_r`` is added
    to the leaky membrane, one threshold, ``S`` in {0, 1}: with ``adaptive=False`` the plain
    recurrent decay-LIF ``V_t = lambda V_{t-1} (1 - S_{t-1}) + W_f x_t + b_f + W~_r S_{t-1} + b_r``).
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
        recurrent_input: str = "channel",
    ) -> None:
        super().__init__()
        if inputs < 1 or hidden < 1:
            raise ValueError(f"RecurrentNRR needs positive inputs and hidden sizes, got {inputs} and {hidden}")
        if recurrent_input not in RECURRENT_INPUTS:
            raise ValueError(
                f"recurrent_input must be one of {', '.join(RECURRENT_INPUTS)}, got {recurrent_input!r}"
            )
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
        self.recurrent_input = recurrent_input
        self.init_synapses(inputs, hidden, recurrent, sparseness, mask_seed, classes)

    # -- configuration ---------------------------------------------------------------------
    @property
    def params(self) -> NRRParams:
        """The cell's constants as used (``gamma`` is 0 when ``adaptive=False``)."""
        return NRRParams(self.decay, self.v_th, self.alpha, self.beta, self.gamma if self.adaptive else 0.0)

    @property
    def merged(self) -> bool:
        """Whether the recurrent input enters the membrane (``recurrent_input="membrane"``)."""
        return self.recurrent_input == "membrane"

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
        return nrr_step(
            zf_t, state, self.recurrent_weight(), b, self.params, self.surrogate, self.detach_prev, self.merged
        )

    def forward(self, x: Tensor) -> Tensor:
        """Spikes ``S`` ``[T, B, hidden]`` (values 0, 1, 2), not detached (pass them through ``tap``).

        Under bfloat16 autocast (``--precision bf16``) the feed-forward product ``W_f x`` runs in
        bfloat16 and is lifted to float32; the recurrence (its product ``W_r S_{t-1}`` included) runs in
        float32 on both paths, so the fused and the reference path agree as without autocast.
        """
        zf = lift_to_float32(self.drive(x))
        if not self.fast:
            return self.run_drive(zf).spikes
        w = self.recurrent_weight()
        b = None if self.fc_r is None else self.fc_r.bias
        with torch.autocast(zf.device.type, enabled=False):
            if use_triton(zf, self.surrogate):  # float32 on a GPU: the fused kernels (spikedyn.kernels)
                from ..kernels.triton_nrr import NRRTriton

                return NRRTriton.apply(zf, w, b, self.params, self.surrogate, self.detach_prev, self.merged)
            return _NRRSequence.apply(
                zf, w, b, self.params, self.surrogate, self.detach_prev, self.merged, use_cpp(zf)
            )

    def run(self, x: Tensor, record: bool = False) -> NeuronRun:
        """Per-step reference run; ``record=True`` keeps the traces of ``v``, ``s`` and ``a``."""
        return self.run_drive(lift_to_float32(self.drive(x)), record=record)

    def run_drive(self, zf: Tensor, record: bool = False) -> NeuronRun:
        """Reference run from the feed-forward drive ``zf`` ``[T, B, hidden]`` (float32 even under autocast)."""
        zf = lift_to_float32(zf)
        with torch.autocast(zf.device.type, enabled=False):
            return self._run_drive(zf, record)

    def _run_drive(self, zf: Tensor, record: bool) -> NeuronRun:
        w = self.recurrent_weight()  # masked once per window, used at every step
        b = None if self.fc_r is None else self.fc_r.bias
        params, detach = self.params, self.detach_prev
        state = self.initial_state(zf[0])
        spikes: list[Tensor] = []
        traces: dict[str, list[Tensor]] = {name: [] for name in NRRState._fields} if record else {}
        for zf_t in zf:
            s_t, state = nrr_step(zf_t, state, w, b, params, self.surrogate, detach, self.merged)
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
            f"decay={self.decay}, v_th={self.v_th}, detach_prev={self.detach_prev}, fast={self.fast}, "
            f"recurrent_input={self.recurrent_input}"
        )
