"""Leaky integrate-and-fire families.

* :class:`DecayLIF` -- the CASIA "decay-with-reset-flag" cell of MDN (1st-order meta neuron,
  ``input_fn="sigmoid"``), BRP and NRR (``input_fn="identity"``)::

      V_t = lambda * V_{t-1} * (1 - S_{t-1}) + I_t,     S_t = H(V_t - V_th)   (strict >)

  with ``lambda = 0.2``, ``V_th = 0.5``, RectWindow(0.5, 0.5) surrogate.  The factor
  ``(1 - S_{t-1})`` is the refractory/reset flag; it is differentiated unless
  ``detach_reset=True``.

* :class:`ParametricLIF` -- PLIF (Fang et al. 2021) and the fixed-tau LIF baseline::

      H_t = V_{t-1} + k (X_t - (V_{t-1} - V_reset)),   k = sigmoid(a) = 1/tau
      S_t = Theta(H_t - V_th)                            (>=)
      V_t = H_t (1 - S_t) + V_reset S_t

  with one scalar ``a`` per layer (learnable for PLIF, a buffer for LIF), ``V_th = 1``,
  ATan(2) surrogate, ``detach_reset=True`` (code) by default; ``False`` keeps the paper's
  ``(V_reset - H_t) dS_t/dH_t`` term.

Both take an optional neuron ``shape`` (``make_neuron`` passes the layer's): when given, an
input whose trailing dimensions differ is an error, as for the 2nd-order layers; ``None``
accepts any shape.  Neither family can run away on finite input, so only a non-finite
membrane potential at the end of a call is warned about (see :mod:`spikedyn.neurons.base`).
NaN input propagates through ``V`` on both paths (the fast path resets by multiplying with
``1 - S``, as the reference does, never by selecting ``V_reset``), so both give the same spikes.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ..surrogate import ATan, RectWindow, Surrogate
from typing import Sequence

from ..kernels import use_cpp, use_triton
from .base import NeuronLayer, writable_in_place


class LIFState(NamedTuple):
    v: Tensor
    s: Tensor


# ---------------------------------------------------------------------------------------
# Decay-with-reset-flag LIF
# ---------------------------------------------------------------------------------------
def decay_lif_step(
    i_t: Tensor,
    state: LIFState,
    decay: float,
    v_th: float,
    surrogate: Surrogate,
    detach_reset: bool = False,
) -> tuple[Tensor, LIFState]:
    """One step: ``V_t = decay * V_{t-1} (1 - S_{t-1}) + I_t``; ``S_t = H(V_t - V_th)``."""
    s_prev = state.s.detach() if detach_reset else state.s
    v = decay * state.v * (1.0 - s_prev) + i_t
    s = surrogate.spike(v - v_th, inclusive=False)
    return s, LIFState(v, s)


class _DecayLIFSequence(torch.autograd.Function):
    """Whole-window decay-LIF as one autograd node; saves V only (S is ``[V > V_th]``; with the sigmoid input inside
    the compiled loop, I is solved from V); backward overwrites V with the input's gradient, one step at a time.  ``inplace``: S is written over the input current (marked
    dirty for autograd), so the forward holds one window-sized tensor fewer."""

    @staticmethod
    def forward(ctx, current: Tensor, decay: float, v_th: float, surrogate: Surrogate, detach_reset: bool, watch=None,  # type: ignore[override]
                compiled: bool = False, sigmoid_input: bool = False, inplace: bool = False):
        T = current.shape[0]
        ctx.compiled = compiled
        inplace = writable_in_place(current, inplace)  # with the sigmoid inside, S goes over Z
        # sigmoid_input (compiled only): ``current`` is Z, the current I = sigmoid(Z) computed inside the loop (no
        # pass of its own; within a few ulp of torch.sigmoid's rounding); not kept: backward solves I_t from V
        ctx.sigmoid_input = sigmoid_input
        if compiled:  # the same loop compiled (spikedyn.kernels.cpu): one pass a step, spikes included
            from ..kernels import cpu

            current_in = current.contiguous()
            v = torch.empty_like(current_in)
            s = current if inplace else torch.empty_like(current_in)  # S_t over I_t once the loop has read it
            cpu.ops().lif_forward(current_in, sigmoid_input, v, s, decay, v_th)
        else:
            v = torch.empty_like(current)
            keep = torch.empty_like(current[0], dtype=torch.bool)  # 1 - S_{t-1}
            v[0] = current[0]
            for t in range(1, T):
                torch.le(v[t - 1], v_th, out=keep)
                # a NaN V_{t-1} gives keep = 0, and NaN * 0 = NaN: NaN propagates as in the reference
                torch.addcmul(current[t], v[t - 1], keep, value=decay, out=v[t])
            # all spikes at once, outside the time loop; written straight as floats (a bool temporary and its
            # conversion cost ten times the comparison on large conv maps)
            s = torch.gt(v, v_th, out=current if inplace else torch.empty_like(v))
        if inplace:
            ctx.mark_dirty(current)
        if watch is not None:
            watch({"v": v[T - 1]}, lambda: {"v": v})
        ctx.save_for_backward(v)  # S_t is [V_t > V_th]: rebuilt in backward, not kept
        ctx.decay, ctx.v_th, ctx.surrogate, ctx.detach_reset = decay, v_th, surrogate, detach_reset
        return s

    @staticmethod
    def backward(ctx, grad_s: Tensor):  # type: ignore[override]
        (v,) = ctx.saved_tensors
        decay = ctx.decay
        T = v.shape[0]
        if ctx.compiled:  # dL/dI (or dL/dZ with the sigmoid input) written over V
            from ..kernels import cpu, surrogate_args

            cpu.ops().lif_backward(
                v, grad_s.contiguous(), ctx.sigmoid_input, decay, ctx.v_th, ctx.detach_reset,
                *surrogate_args(ctx.surrogate),
            )
            cpu.mark_overwritten(v)  # V was overwritten: a second backward through the node must be refused
            return v, None, None, None, None, None, None, None, None
        # dL/dV_t (= dL/dI_t) is written over the saved V_t once step t is done with it, so the input's
        # gradient takes no buffer of its own (a second backward through the node is refused by autograd's
        # version check); dS_t/dV_t is computed one step at a time into a step-sized buffer
        sg = torch.empty_like(v[0])
        s_t = torch.empty_like(v[0])  # S_t = [V_t > V_th], rebuilt before V_t is overwritten
        g_next = None  # dL/dV_{t+1}
        for t in range(T - 1, -1, -1):
            if g_next is not None:
                torch.gt(v[t], ctx.v_th, out=s_t)
            ctx.surrogate.grad_(torch.sub(v[t], ctx.v_th, out=sg))
            g = v[t]
            if g_next is None or ctx.detach_reset:
                torch.mul(grad_s[t], sg, out=g)
            else:  # S_t also enters V_{t+1} through the reset flag: dV_{t+1}/dS_t = -decay V_t
                torch.addcmul(grad_s[t], g, g_next, value=-decay, out=g)
                g.mul_(sg)
            if g_next is not None:  # dV_{t+1}/dV_t = decay (1 - S_t)
                g.add_(g_next, alpha=decay).addcmul_(g_next, s_t, value=-decay)
            g_next = g
        return v, None, None, None, None, None, None, None, None


class DecayLIF(NeuronLayer):
    """Decay-with-reset-flag LIF (see module docstring). ``shape``: the neuron shape, checked
    against the input when given.  ``inplace=True``: the fast paths write the spikes over the layer's
    input, as ``nn.ReLU(inplace=True)`` does (one window-sized tensor fewer in the forward), where the
    input is the current itself or the node applies the sigmoid itself; the caller must not need the
    input afterwards (autograd refuses a backward that did)."""

    def __init__(
        self,
        decay: float = 0.2,
        v_th: float = 0.5,
        input_fn: str = "identity",
        surrogate: Surrogate | None = None,
        detach_reset: bool = False,
        fast: bool = True,
        shape: int | Sequence[int] | None = None,
        inplace: bool = False,
    ) -> None:
        super().__init__(input_fn=input_fn, fast=fast, shape=shape)
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"decay must lie in [0, 1], got {decay}")
        self.decay = float(decay)
        self.v_th = float(v_th)
        self.surrogate = surrogate if surrogate is not None else RectWindow(0.5, 1.0)
        self.detach_reset = detach_reset
        self.inplace = bool(inplace)

    def initial_state(self, like: Tensor) -> LIFState:
        return LIFState(torch.zeros_like(like), torch.zeros_like(like))

    def step_current(self, i_t: Tensor, state: LIFState) -> tuple[Tensor, LIFState]:
        return decay_lif_step(i_t, state, self.decay, self.v_th, self.surrogate, self.detach_reset)

    fuses_sigmoid_input = True
    supports_inplace = True
    keeps_output_spikes = False  # S_t = [V_t > V_th] is rebuilt from the saved V

    def fast_sequence(self, current: Tensor, sigmoid_input: bool = False, inplace: bool = False) -> Tensor:
        if not sigmoid_input and use_triton(current, self.surrogate):
            from ..kernels.triton_neurons import DecayLIFTriton

            return DecayLIFTriton.apply(
                current, self.decay, self.v_th, self.surrogate, self.detach_reset, self.watch_state, inplace
            )
        return _DecayLIFSequence.apply(
            current, self.decay, self.v_th, self.surrogate, self.detach_reset, self.watch_state,
            sigmoid_input or use_cpp(current, self.surrogate), sigmoid_input, inplace,
        )

    def extra_repr(self) -> str:
        return (
            f"decay={self.decay}, v_th={self.v_th}, surrogate={self.surrogate}, "
            f"detach_reset={self.detach_reset}, {super().extra_repr()}" + (", inplace=True" if self.inplace else "")
        )


# ---------------------------------------------------------------------------------------
# Parametric LIF (learnable membrane time constant) and fixed-tau LIF
# ---------------------------------------------------------------------------------------
def plif_step(
    x_t: Tensor,
    state: LIFState,
    k: Tensor,
    v_th: float,
    v_reset: float,
    surrogate: Surrogate,
    detach_reset: bool = True,
) -> tuple[Tensor, LIFState]:
    """Charge ``H = V + k (X - (V - V_reset))``, fire ``S = Theta(H - V_th)``, hard reset."""
    h = state.v + k * (x_t - (state.v - v_reset))
    s = surrogate.spike(h - v_th, inclusive=True)
    s_reset = s.detach() if detach_reset else s
    v = h * (1.0 - s_reset) + v_reset * s_reset
    return s, LIFState(v, s)


class _PLIFSequence(torch.autograd.Function):
    """Whole-window PLIF as one autograd node; saves ``X_t - V_{t-1} + V_reset``, H and V (S is the output).

    Forward, four in-place passes a step, each writing into the window's buffers: the drive
    ``D_t = X_t - (V_{t-1} - V_reset)``, the charge ``H_t = V_{t-1} + k D_t`` (the reference's
    formula; ``k`` a 0-d tensor: no host read), the spikes ``S_t = [H_t >= V_th]`` written as floats
    (no boolean temporary), and the hard reset ``V_t = H_t - H_t S_t (+ V_reset S_t)`` by
    multiplication, as the reference (a NaN ``H`` stays NaN, a firing +inf gives inf - inf = NaN).
    ``D_t = dH_t/dk`` is what backward needs of the input, so ``X`` itself is not kept (nor ``D`` when ``k``
    is fixed, LIF-tau); ``V`` lives in two rolling slots.  On the compiled loops with the reset detached, S is
    not kept (``1 - S_t = [H_t < V_th]``), and with a learnable ``k`` neither is H: backward rebuilds it from
    D per block of neurons, ``H_t = V_{t-1} + k D_t`` with ``V_{t-1}`` from ``H_{t-1}``, the forward's own
    expressions, so the same bits; one window-sized tensor is kept where the PyTorch loops keep three.

    Backward (detached reset, the default): ``k dS_t/dH_t dL/dS_t`` in place over the saved ``H``
    (which backward needs no more; a second backward through the node is refused by autograd's
    version check), the recursion through the membrane on ``k dL/dH`` (the input's gradient), and
    ``dL/dk = sum <D, dL/dH>`` accumulated per neuron over the steps, then one cascade sum (a long
    float32 dot product loses digits where terms of both signs cancel).  No ``[T, ...]`` temporary.
    """

    @staticmethod
    def forward(ctx, x: Tensor, k: Tensor, v_th: float, v_reset: float, surrogate: Surrogate, detach_reset: bool, watch=None,  # type: ignore[override]
                compiled: bool = False, inplace: bool = False):
        T = x.shape[0]
        need_k = ctx.needs_input_grad[1]  # PLIF's learnable k; a fixed-tau LIF keeps no D (one step's slot)
        ctx.compiled = compiled
        inplace = writable_in_place(x, inplace)  # S_t written over X_t once the step has read it
        given = x
        if compiled:
            x = x.contiguous()
        d = x.new_empty(x.shape if need_k else (1, *x.shape[1:]))  # D_t = X_t - V_{t-1} + V_reset = dH_t/dk
        # compiled, learnable k, reset detached: only D is kept; backward rebuilds H from it (the same bits) and
        # writes the input's gradient over it, and S = [H >= V_th] comes from H
        ctx.drive_only = compiled and need_k and detach_reset
        h = x.new_empty(0 if ctx.drive_only else x.shape)
        s = given if inplace else torch.empty_like(x)
        v = x.new_empty((2, *x.shape[1:]))  # V_t in slot t % 2: backward rebuilds nothing from V
        if compiled:  # the same loop compiled (spikedyn.kernels.cpu): one pass a step
            from ..kernels import cpu

            cpu.ops().plif_forward(x, k.detach().to(x.dtype), d, h, s, v, v_th, v_reset)
        else:
            ds, hs, ss, vs = d.unbind(0) if need_k else (d[0],) * T, h.unbind(0), s.unbind(0), v.unbind(0)
            _plif_forward_loop(x, k.detach().to(x.dtype), ds, hs, ss, vs, v_th, v_reset)
        if inplace:
            ctx.mark_dirty(given)
        if watch is not None:  # V_t is non-finite exactly where H_t is, and H = V_{t-1} + k D first where D first is
            watch({"v": v[(T - 1) % 2]}, lambda: {"v": d if ctx.drive_only else h})
        # the compiled backward with the reset detached reads H, not S
        ctx.save_for_backward(d, h, None if compiled and detach_reset else s, k)
        ctx.v_th, ctx.v_reset, ctx.surrogate, ctx.detach_reset = v_th, v_reset, surrogate, detach_reset
        return s

    @staticmethod
    def backward(ctx, grad_s: Tensor):  # type: ignore[override]
        d, h, s, k = ctx.saved_tensors
        kf = float(k)
        v_reset = ctx.v_reset
        T = grad_s.shape[0]  # (D is one step long when k is fixed)
        # G_t = k dL/dH_t (= dL/dX_t, the input's gradient): the recursion runs on G directly, so that
        # no pass over the window is left for scaling at the end (k = 0, tau infinite: on dL/dH, then 0)
        scale = kf if kf > 0.0 else 1.0
        need_k = ctx.needs_input_grad[1]
        acc = torch.empty_like(grad_s[0]) if need_k else None  # dL/dk per neuron, summed over the steps
        if ctx.drive_only:  # H rebuilt from D per block, the input's gradient over D (spikedyn.kernels.cpu)
            from ..kernels import cpu, surrogate_args

            grad_x = d
            cpu.ops().plif_backward_drive(
                grad_x, grad_s.contiguous(), acc, kf, 1.0 - kf, scale, ctx.v_th, v_reset, *surrogate_args(ctx.surrogate),
            )
            cpu.mark_overwritten(d)  # D was overwritten: a second backward through the node must be refused
        elif ctx.compiled and ctx.detach_reset:  # all of it in one pass a step (spikedyn.kernels.cpu), over H
            from ..kernels import cpu, surrogate_args

            grad_x = h
            cpu.ops().plif_backward(  # no S: with H at hand the kernel takes 1 - S_t as [H_t < V_th]
                grad_x, grad_s.contiguous(), None, d if need_k else None, None, acc if need_k else h.new_empty(0),
                1.0 - kf, scale, ctx.v_th, *surrogate_args(ctx.surrogate),
            )
            cpu.mark_overwritten(h)  # H was overwritten: a second backward through the node must be refused
        else:
            if ctx.detach_reset:
                # k dS_t/dH_t dL/dS_t in place over the saved H, which backward needs no more
                grad_x = ctx.surrogate.grad_mul_(h.sub_(ctx.v_th), grad_s, scale=scale)
                carry = None
            else:  # dV_t/dH_t = 1 - S_t + (V_reset - H_t) dS_t/dH_t
                sg = ctx.surrogate.grad_(h - ctx.v_th)
                carry = torch.sub(1.0, s[:-1]).addcmul_(v_reset - h[:-1], sg[:-1]).mul_(1.0 - kf) if T > 1 else None
                grad_x = sg.mul_(grad_s).mul_(scale)
            if ctx.compiled:  # the recursion in one pass a step (spikedyn.kernels.cpu)
                from ..kernels import cpu

                cpu.ops().plif_backward(
                    grad_x, None, s, d if need_k else None, carry, acc if need_k else s.new_empty(0),
                    1.0 - kf, scale, ctx.v_th, 0, 0.0, 0.0,
                )
            else:
                _plif_backward_loop(grad_x, s, d if need_k else None, carry, acc, kf)
        grad_k = acc.sum() / scale if need_k else None  # the sums ran over k dL/dH
        if scale != kf:
            grad_x.mul_(kf)
        return grad_x, grad_k.reshape(k.shape).to(k.dtype) if need_k else None, None, None, None, None, None, None, None


def _plif_forward_loop(x: Tensor, k: Tensor, ds, hs, ss, vs, v_th: float, v_reset: float) -> None:
    """:class:`_PLIFSequence`'s forward through time in PyTorch operations, into the per-step views
    ``ds`` (one slot when ``k`` is fixed), ``hs``, ``ss`` and the two rolling slots ``vs``."""
    th = torch.tensor(v_th, dtype=x.dtype, device=x.device)
    v_init = torch.full_like(hs[0], v_reset)  # V_{-1}
    for t in range(x.shape[0]):
        v_prev = vs[(t - 1) % 2] if t > 0 else v_init
        if t > 0 or v_reset != 0.0:
            torch.sub(x[t], v_prev, out=ds[t])  # an infinite X gives an infinite D and H, as the reference
            if v_reset != 0.0:
                ds[t].add_(v_reset)
        else:
            ds[0].copy_(x[0])
        torch.addcmul(v_prev, ds[t], k, out=hs[t])
        torch.ge(hs[t], th, out=ss[t])
        v_now = vs[t % 2]
        torch.addcmul(hs[t], hs[t], ss[t], value=-1.0, out=v_now)  # H (1 - S): H, 0, or NaN for H = inf
        if v_reset != 0.0:
            v_now.add_(ss[t], alpha=v_reset)


def _plif_backward_loop(grad_x: Tensor, s: Tensor, d: Tensor | None, carry: Tensor | None, acc: Tensor | None,
                        kf: float) -> None:
    """:class:`_PLIFSequence`'s backward through time in PyTorch operations: ``grad_x`` (``k dS/dH dL/dS``
    on entry) becomes ``G_t = k dL/dH_t`` in place; ``acc`` (given with ``d``) becomes ``sum_t D_t G_t``."""
    T = grad_x.shape[0]
    if d is not None:
        torch.mul(d[T - 1], grad_x[T - 1], out=acc)
    for t in range(T - 2, -1, -1):
        g_next = grad_x[t + 1]
        if carry is None:  # dH_{t+1}/dH_t = (1 - k)(1 - S_t): two in-place passes, no temporary
            grad_x[t].add_(g_next, alpha=1.0 - kf).addcmul_(g_next, s[t], value=kf - 1.0)
        else:
            grad_x[t].addcmul_(g_next, carry[t])
        if d is not None:
            acc.addcmul_(d[t], grad_x[t])


class ParametricLIF(NeuronLayer):
    """PLIF (``learnable=True``) or fixed-tau LIF (``learnable=False``).

    ``a`` is initialised to ``-ln(tau - 1)`` so that ``k = sigmoid(a) = 1/tau``.  ``shape``:
    the neuron shape, checked against the input when given.  The layer computes in the promoted
    dtype of ``a`` and the input (a float64 layer returns float64 spikes for float32 input).
    """

    dynamics_names = ("tau",)

    #: the compiled loops (reset detached) and the Triton kernel rebuild S_t = [H_t >= V_th], keeping no spikes
    keeps_output_spikes = False
    #: the CPU paths can write the spikes over the input (the Triton kernel ignores the option)
    supports_inplace = True

    def __init__(
        self,
        tau: float = 2.0,
        learnable: bool = True,
        v_th: float = 1.0,
        v_reset: float = 0.0,
        surrogate: Surrogate | None = None,
        detach_reset: bool = True,
        fast: bool = True,
        shape: int | Sequence[int] | None = None,
        inplace: bool = False,
    ) -> None:
        super().__init__(input_fn="identity", fast=fast, shape=shape)
        self.inplace = bool(inplace)
        if tau <= 1.0:
            raise ValueError(f"tau must be > 1 (k = 1/tau in (0, 1)), got {tau}")
        a = torch.tensor(-math.log(tau - 1.0))
        if learnable:
            self.a = nn.Parameter(a)
        else:
            self.register_buffer("a", a)
        self.learnable = learnable
        self.v_th = float(v_th)
        self.v_reset = float(v_reset)
        self.surrogate = surrogate if surrogate is not None else ATan(2.0)
        self.detach_reset = detach_reset

    @property
    def tau(self) -> float:
        """Current membrane time constant ``1 / sigmoid(a)``."""
        return float(1.0 / torch.sigmoid(self.a.detach()))

    def learned_dynamics(self) -> Tensor | None:
        """tau = ``1 / sigmoid(a)`` (0-d) when ``a`` is learnable (PLIF), else None (fixed-tau LIF)."""
        return (1.0 / torch.sigmoid(self.a.detach())).cpu().clone() if isinstance(self.a, nn.Parameter) else None

    def initial_state(self, like: Tensor) -> LIFState:
        return LIFState(torch.full_like(like, self.v_reset), torch.zeros_like(like))

    def step_current(self, i_t: Tensor, state: LIFState) -> tuple[Tensor, LIFState]:
        k = torch.sigmoid(self.a)
        return plif_step(i_t, state, k, self.v_th, self.v_reset, self.surrogate, self.detach_reset)

    def fast_sequence(self, current: Tensor, inplace: bool = False) -> Tensor:
        k = torch.sigmoid(self.a).to(current.dtype)
        if use_triton(current, self.surrogate):
            from ..kernels.triton_neurons import PLIFTriton

            return PLIFTriton.apply(current, k, self.v_th, self.v_reset, self.surrogate, self.detach_reset, self.watch_state)
        return _PLIFSequence.apply(
            current, k, self.v_th, self.v_reset, self.surrogate, self.detach_reset, self.watch_state,
            use_cpp(current, self.surrogate), inplace,
        )

    def extra_repr(self) -> str:
        shape = f"shape={self.shape}, " if self.shape is not None else ""
        return (
            f"{shape}tau={self.tau:.3f}, learnable={self.learnable}, v_th={self.v_th}, v_reset={self.v_reset}, "
            f"surrogate={self.surrogate}, detach_reset={self.detach_reset}, fast={self.fast}"
            + (", inplace=True" if self.inplace else "")
        )


def PLIF(tau: float = 2.0, **kwargs) -> ParametricLIF:
    """Parametric LIF with learnable ``tau`` (initial value ``tau``)."""
    return ParametricLIF(tau=tau, learnable=True, **kwargs)


def LIF(tau: float = 2.0, **kwargs) -> ParametricLIF:
    """LIF with fixed ``tau`` (PLIF's baseline)."""
    return ParametricLIF(tau=tau, learnable=False, **kwargs)
