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

from ..surrogate import ATan, RectWindow, Surrogate, heaviside
from typing import Sequence

from .base import NeuronLayer


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
    """Whole-window decay-LIF as one autograd node; saves V (and S, the output)."""

    @staticmethod
    def forward(ctx, current: Tensor, decay: float, v_th: float, surrogate: Surrogate, detach_reset: bool, watch=None):  # type: ignore[override]
        T = current.shape[0]
        v = torch.empty_like(current)
        keep = torch.empty_like(current[0], dtype=torch.bool)  # 1 - S_{t-1}
        v[0] = current[0]
        for t in range(1, T):
            torch.le(v[t - 1], v_th, out=keep)
            # a NaN V_{t-1} gives keep = 0, and NaN * 0 = NaN: NaN propagates as in the reference
            torch.addcmul(current[t], v[t - 1], keep, value=decay, out=v[t])
        s = torch.gt(v, v_th).to(current.dtype)  # all spikes at once, outside the time loop
        if watch is not None:
            watch({"v": v[T - 1]}, lambda: {"v": v})
        ctx.save_for_backward(v, s)
        ctx.decay, ctx.v_th, ctx.surrogate, ctx.detach_reset = decay, v_th, surrogate, detach_reset
        return s

    @staticmethod
    def backward(ctx, grad_s: Tensor):  # type: ignore[override]
        v, s = ctx.saved_tensors
        decay = ctx.decay
        T = v.shape[0]
        # dL/dV_t = dL/dI_t, built in place over dS_t/dV_t (one large buffer in all)
        grad_v = ctx.surrogate.grad_(v - ctx.v_th)
        grad_v[T - 1].mul_(grad_s[T - 1])
        g_spk = torch.empty_like(v[0])
        for t in range(T - 2, -1, -1):
            g_next, g = grad_v[t + 1], grad_v[t]
            if ctx.detach_reset:
                g.mul_(grad_s[t])
            else:  # S_t also enters V_{t+1} through the reset flag: dV_{t+1}/dS_t = -decay V_t
                torch.addcmul(grad_s[t], g_next, v[t], value=-decay, out=g_spk)
                g.mul_(g_spk)
            # dV_{t+1}/dV_t = decay (1 - S_t)
            g.add_(g_next, alpha=decay).addcmul_(g_next, s[t], value=-decay)
        return grad_v, None, None, None, None, None


class DecayLIF(NeuronLayer):
    """Decay-with-reset-flag LIF (see module docstring). ``shape``: the neuron shape, checked
    against the input when given."""

    def __init__(
        self,
        decay: float = 0.2,
        v_th: float = 0.5,
        input_fn: str = "identity",
        surrogate: Surrogate | None = None,
        detach_reset: bool = False,
        fast: bool = True,
        shape: int | Sequence[int] | None = None,
    ) -> None:
        super().__init__(input_fn=input_fn, fast=fast, shape=shape)
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"decay must lie in [0, 1], got {decay}")
        self.decay = float(decay)
        self.v_th = float(v_th)
        self.surrogate = surrogate if surrogate is not None else RectWindow(0.5, 1.0)
        self.detach_reset = detach_reset

    def initial_state(self, like: Tensor) -> LIFState:
        return LIFState(torch.zeros_like(like), torch.zeros_like(like))

    def step_current(self, i_t: Tensor, state: LIFState) -> tuple[Tensor, LIFState]:
        return decay_lif_step(i_t, state, self.decay, self.v_th, self.surrogate, self.detach_reset)

    def fast_sequence(self, current: Tensor) -> Tensor:
        return _DecayLIFSequence.apply(current, self.decay, self.v_th, self.surrogate, self.detach_reset, self.watch_state)

    def extra_repr(self) -> str:
        return (
            f"decay={self.decay}, v_th={self.v_th}, surrogate={self.surrogate}, "
            f"detach_reset={self.detach_reset}, {super().extra_repr()}"
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
    """Whole-window PLIF as one autograd node; saves X, H (S is the output)."""

    @staticmethod
    def forward(ctx, x: Tensor, k: Tensor, v_th: float, v_reset: float, surrogate: Surrogate, detach_reset: bool, watch=None):  # type: ignore[override]
        T = x.shape[0]
        kf = float(k)
        h = torch.empty_like(x)
        v = torch.full_like(x[0], v_reset)
        keep = torch.empty_like(x[0], dtype=torch.bool)  # 1 - S_t
        for t in range(T):
            # H = (1 - k) V + k X + k V_reset
            torch.mul(v, 1.0 - kf, out=h[t])
            h[t].add_(x[t], alpha=kf)
            if v_reset != 0.0:
                h[t].add_(kf * v_reset)
            # hard reset V = H (1 - S) + V_reset S by multiplication, as the reference: a NaN H
            # (keep = 0) stays NaN, and a firing +inf gives inf * 0 = NaN there too
            torch.lt(h[t], v_th, out=keep)
            torch.mul(h[t], keep, out=v)
            if v_reset != 0.0:
                v.add_(torch.logical_not(keep), alpha=v_reset)
        s = torch.ge(h, v_th).to(x.dtype)  # all spikes at once, outside the time loop
        if watch is not None:
            watch({"v": v}, lambda: {"v": h})  # V_t is non-finite exactly where H_t is
        ctx.save_for_backward(x, h, s, k)
        ctx.v_th, ctx.v_reset, ctx.surrogate, ctx.detach_reset = v_th, v_reset, surrogate, detach_reset
        return s

    @staticmethod
    def backward(ctx, grad_s: Tensor):  # type: ignore[override]
        x, h, s, k = ctx.saved_tensors
        kf = float(k)
        v_reset = ctx.v_reset
        T = x.shape[0]
        sg = ctx.surrogate.grad_(h - ctx.v_th)  # dS_t/dH_t
        carry = torch.sub(1.0, s)  # dV_t/dH_t
        if not ctx.detach_reset:
            carry.addcmul_(v_reset - h, sg)
        carry.mul_(1.0 - kf)  # dH_{t+1}/dH_t = dV_t/dH_t * (1 - k)
        grad_h = sg.mul_(grad_s)  # dL/dH_t, in place over the surrogate gradient
        for t in range(T - 2, -1, -1):
            grad_h[t].addcmul_(grad_h[t + 1], carry[t])
        # dH_t/dk = X_t - V_{t-1} + V_reset, with V = H (1 - S) + V_reset S; reuses carry's buffer
        dh_dk = carry
        if T > 1:
            torch.mul(h[:-1], s[:-1], out=dh_dk[1:])
            torch.sub(h[:-1], dh_dk[1:], out=dh_dk[1:])
            if v_reset != 0.0:
                dh_dk[1:].add_(s[:-1], alpha=v_reset)
        dh_dk[0].fill_(v_reset)
        torch.sub(x, dh_dk, out=dh_dk)
        if v_reset != 0.0:
            dh_dk.add_(v_reset)
        grad_k = dh_dk.mul_(grad_h).sum().reshape(k.shape)
        grad_x = grad_h.mul_(kf)
        return grad_x, grad_k, None, None, None, None, None


class ParametricLIF(NeuronLayer):
    """PLIF (``learnable=True``) or fixed-tau LIF (``learnable=False``).

    ``a`` is initialised to ``-ln(tau - 1)`` so that ``k = sigmoid(a) = 1/tau``.  ``shape``:
    the neuron shape, checked against the input when given.  The layer computes in the promoted
    dtype of ``a`` and the input (a float64 layer returns float64 spikes for float32 input).
    """

    dynamics_names = ("tau",)

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
    ) -> None:
        super().__init__(input_fn="identity", fast=fast, shape=shape)
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

    def fast_sequence(self, current: Tensor) -> Tensor:
        k = torch.sigmoid(self.a).to(current.dtype)
        return _PLIFSequence.apply(current, k, self.v_th, self.v_reset, self.surrogate, self.detach_reset, self.watch_state)

    def extra_repr(self) -> str:
        shape = f"shape={self.shape}, " if self.shape is not None else ""
        return (
            f"{shape}tau={self.tau:.3f}, learnable={self.learnable}, v_th={self.v_th}, v_reset={self.v_reset}, "
            f"surrogate={self.surrogate}, detach_reset={self.detach_reset}, fast={self.fast}"
        )


def PLIF(tau: float = 2.0, **kwargs) -> ParametricLIF:
    """Parametric LIF with learnable ``tau`` (initial value ``tau``)."""
    return ParametricLIF(tau=tau, learnable=True, **kwargs)


def LIF(tau: float = 2.0, **kwargs) -> ParametricLIF:
    """LIF with fixed ``tau`` (PLIF's baseline)."""
    return ParametricLIF(tau=tau, learnable=False, **kwargs)
