"""Fused Triton kernels for the neuron families' whole-window fast paths.

Each family has one forward and one backward kernel.  A kernel instance owns ``BLOCK``
neurons of the flattened ``[B * neurons]`` step and loops over all T steps itself, keeping the
state (V, U, the running gradients) in registers; per step it reads one value of each input and
writes one value of each output, so a layer costs one launch per direction whatever T is.

What each forward writes for backward (S is recomputed from it, never stored twice):

================  =====================================  =======================================
family            forward writes                         backward needs
================  =====================================  =======================================
decay-LIF         S (output), V                          V (S_t = [V_t > V_th])
PLIF / LIF-tau    S (output), H                          H (S_t, V_{t-1} rebuilt), X (dL/dk)
MDN 2nd-order     S (output), V, U (only for dL/dtheta)  V, U; V'_t, U'_t rebuilt from step t-1
================  =====================================  =======================================

The arithmetic follows the torch loops of :mod:`spikedyn.neurons` operation by operation (see
each family's docstring there for the equations); the per-step reference path is the ground
truth both are tested against.  Learnable dynamics get per-element partial sums over T from
the kernel (PLIF: one partial sum per block; MDN: one value per element and theta row) and are
reduced by PyTorch afterwards, so the result is deterministic (no atomics).

Surrogates: the library's three (:class:`~spikedyn.surrogate.RectWindow`,
:class:`~spikedyn.surrogate.ATan`, :class:`~spikedyn.surrogate.Sigmoid`) are compiled in by kind;
another surrogate class falls back to the torch loops (:func:`spikedyn.kernels.use_triton`).

Only float32 is handled; the dispatcher (:func:`spikedyn.kernels.use_triton`) sends every other
dtype to the torch loops.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from ..surrogate import Surrogate
from . import surrogate_args

BLOCK = 1024
#: surrogate kinds compiled into the kernels: (kind, parameter 0, parameter 1), shared with the CPU loops
_surrogate_args = surrogate_args


def _grid(n: int) -> tuple[int]:
    return (triton.cdiv(n, BLOCK),)


@triton.jit
def _surrogate_grad(x, KIND: tl.constexpr, P0, P1):
    """dS/dx of the surrogate: rect ``P1 [|x| < P0]``; atan ``P0 / (2 (1 + (P1 x)^2))``; sigmoid
    ``P0 s (1 - s)`` with ``s = sigmoid(P0 x)``."""
    if KIND == 0:
        g = tl.where(tl.abs(x) < P0, P1, 0.0)
    elif KIND == 1:
        cx = P1 * x
        g = P0 / (2.0 * (1.0 + cx * cx))
    else:
        sig = tl.sigmoid(P0 * x)
        g = P0 * sig * (1.0 - sig)
    return g


# ---------------------------------------------------------------------------------------
# decay-with-reset-flag LIF:  V_t = decay V_{t-1} (1 - S_{t-1}) + I_t ;  S_t = [V_t > V_th]
# ---------------------------------------------------------------------------------------
@triton.jit
def _decay_lif_forward(i_ptr, v_ptr, s_ptr, N, T, decay, v_th, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    v = tl.zeros([BLOCK], dtype=tl.float32)
    keep = tl.zeros([BLOCK], dtype=tl.float32)  # 1 - S_{t-1}; V_{-1} = 0 makes its value irrelevant
    base = offs.to(tl.int64)
    for _ in range(T):
        i = tl.load(i_ptr + base, mask=mask, other=0.0)
        v = i + decay * v * keep
        s = (v > v_th).to(tl.float32)
        tl.store(v_ptr + base, v, mask=mask)
        tl.store(s_ptr + base, s, mask=mask)
        keep = 1.0 - s
        base += N


@triton.jit
def _decay_lif_backward(
    gs_ptr, v_ptr, gi_ptr, N, T, last, decay, v_th,
    KIND: tl.constexpr, P0, P1, DETACH_RESET: tl.constexpr, BLOCK: tl.constexpr,
):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    g_next = tl.zeros([BLOCK], dtype=tl.float32)  # dL/dV_{t+1}
    base = offs.to(tl.int64) + last  # last = (T - 1) N, 64-bit from the host
    for _ in range(T):
        v = tl.load(v_ptr + base, mask=mask, other=0.0)
        gs = tl.load(gs_ptr + base, mask=mask, other=0.0)
        sg = _surrogate_grad(v - v_th, KIND, P0, P1)
        s = (v > v_th).to(tl.float32)
        if DETACH_RESET:
            g = sg * gs
        else:  # S_t also enters V_{t+1} through the reset flag: dV_{t+1}/dS_t = -decay V_t
            g = sg * (gs - decay * g_next * v)
        g = g + decay * g_next * (1.0 - s)  # dV_{t+1}/dV_t = decay (1 - S_t)
        tl.store(gi_ptr + base, g, mask=mask)
        g_next = g
        base -= N


class DecayLIFTriton(torch.autograd.Function):
    """Decay-LIF over a whole window as one autograd node on the Triton kernels."""

    @staticmethod
    def forward(ctx, current: Tensor, decay: float, v_th: float, surrogate: Surrogate, detach_reset: bool, watch=None,  # type: ignore[override]
                inplace: bool = False):
        from ..neurons.base import writable_in_place

        inplace = writable_in_place(current, inplace)
        current = current.contiguous()
        T, n = current.shape[0], current[0].numel()
        v = torch.empty_like(current)
        s = current if inplace else torch.empty_like(current)  # each element's I_t is read before S_t is written
        _decay_lif_forward[_grid(n)](current, v, s, n, T, decay, v_th, BLOCK=BLOCK)
        if inplace:
            ctx.mark_dirty(current)
        if watch is not None:
            watch({"v": v[T - 1]}, lambda: {"v": v})
        ctx.save_for_backward(v)
        ctx.decay, ctx.v_th, ctx.surrogate, ctx.detach_reset = decay, v_th, surrogate, detach_reset
        return s

    @staticmethod
    def backward(ctx, grad_s: Tensor):  # type: ignore[override]
        (v,) = ctx.saved_tensors
        T, n = v.shape[0], v[0].numel()
        grad_i = torch.empty_like(v)
        kind, p0, p1 = _surrogate_args(ctx.surrogate)
        _decay_lif_backward[_grid(n)](
            grad_s.contiguous(), v, grad_i, n, T, (T - 1) * n, ctx.decay, ctx.v_th, kind, p0, p1, ctx.detach_reset, BLOCK=BLOCK
        )
        return grad_i, None, None, None, None, None, None


# ---------------------------------------------------------------------------------------
# PLIF / LIF-tau:  D_t = X_t - V_{t-1} + V_reset ;  H_t = V_{t-1} + k D_t ;  S_t = [H_t >= V_th]
#                  V_t = H_t - H_t S_t + V_reset S_t
# ---------------------------------------------------------------------------------------
@triton.jit
def _plif_forward(x_ptr, k_ptr, h_ptr, s_ptr, N, T, v_th, v_reset, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    k = tl.load(k_ptr)  # k = sigmoid(a) on the device: no host read
    v = tl.zeros([BLOCK], dtype=tl.float32) + v_reset
    base = offs.to(tl.int64)
    for _ in range(T):
        x = tl.load(x_ptr + base, mask=mask, other=0.0)
        d = x - v + v_reset
        h = v + d * k
        s = (h >= v_th).to(tl.float32)
        v = h - h * s + v_reset * s
        tl.store(h_ptr + base, h, mask=mask)
        tl.store(s_ptr + base, s, mask=mask)
        base += N


@triton.jit
def _plif_backward(
    gs_ptr, x_ptr, h_ptr, k_ptr, gx_ptr, gk_ptr, N, T, last, v_th, v_reset,
    KIND: tl.constexpr, P0, P1, DETACH_RESET: tl.constexpr, NEED_K: tl.constexpr, BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    k = tl.load(k_ptr)
    g_h_next = tl.zeros([BLOCK], dtype=tl.float32)  # dL/dH_{t+1}
    acc = tl.zeros([BLOCK], dtype=tl.float32)  # dL/dk per neuron, summed over the steps
    idx = offs.to(tl.int64)
    h = tl.load(h_ptr + idx + last, mask=mask, other=0.0)  # H_t, carried down from step to step; last = (T - 1) N
    for i in range(T):
        t = T - 1 - i
        base = idx + t.to(tl.int64) * N
        # H_{t-1} (step 0 reads itself, then discards it)
        h_prev = tl.load(h_ptr + idx + tl.maximum(t - 1, 0).to(tl.int64) * N, mask=mask, other=0.0)
        gs = tl.load(gs_ptr + base, mask=mask, other=0.0)
        sg = _surrogate_grad(h - v_th, KIND, P0, P1)
        s = (h >= v_th).to(tl.float32)
        dv_dh = 1.0 - s
        if not DETACH_RESET:  # the paper's (V_reset - H_t) dS_t/dH_t term
            dv_dh += (v_reset - h) * sg
        g_h = gs * sg + g_h_next * (1.0 - k) * dv_dh  # dH_{t+1}/dV_t = 1 - k
        tl.store(gx_ptr + base, k * g_h, mask=mask)  # dH_t/dX_t = k
        if NEED_K:  # dH_t/dk = D_t = X_t - V_{t-1} + V_reset, V_{t-1} rebuilt from H_{t-1} exactly as forward
            s_prev = (h_prev >= v_th).to(tl.float32)  # (S is 0 or 1: every product below is exact)
            v_prev = tl.where(t > 0, h_prev - h_prev * s_prev + v_reset * s_prev, v_reset)
            x = tl.load(x_ptr + base, mask=mask, other=0.0)
            acc += (x - v_prev + v_reset) * g_h
        g_h_next = g_h
        h = h_prev
    if NEED_K:
        tl.store(gk_ptr + pid, tl.sum(acc, axis=0))


class PLIFTriton(torch.autograd.Function):
    """PLIF (learnable ``k``) or LIF-tau over a whole window as one autograd node on the Triton kernels.

    Forward writes S (the output) and H; backward rebuilds S_t and V_{t-1} from H and, for ``dL/dk``,
    reads the input X again (kept by reference, no copy), so a learnable tau costs no extra ``[T, ...]``
    tensor and no extra pass over memory in the forward.
    """

    @staticmethod
    def forward(ctx, x: Tensor, k: Tensor, v_th: float, v_reset: float, surrogate: Surrogate, detach_reset: bool, watch=None):  # type: ignore[override]
        x = x.contiguous()
        T, n = x.shape[0], x[0].numel()
        k_ = k.detach().to(torch.float32).reshape(1).contiguous()
        need_k = ctx.needs_input_grad[1]
        h = torch.empty_like(x)
        s = torch.empty_like(x)
        _plif_forward[_grid(n)](x, k_, h, s, n, T, v_th, v_reset, BLOCK=BLOCK)
        if watch is not None:  # V_t = H_t (1 - S_t) + V_reset S_t is non-finite exactly where H_t is
            watch({"v": h[T - 1]}, lambda: {"v": h})
        ctx.save_for_backward(x if need_k else None, h, k_)
        ctx.k_shape, ctx.k_dtype = k.shape, k.dtype
        ctx.v_th, ctx.v_reset, ctx.surrogate, ctx.detach_reset = v_th, v_reset, surrogate, detach_reset
        return s

    @staticmethod
    def backward(ctx, grad_s: Tensor):  # type: ignore[override]
        x, h, k = ctx.saved_tensors
        T, n = h.shape[0], h[0].numel()
        need_k = ctx.needs_input_grad[1]
        grad_x = torch.empty_like(h)
        partial = h.new_empty(_grid(n)[0]) if need_k else h.new_empty(1)
        kind, p0, p1 = _surrogate_args(ctx.surrogate)
        _plif_backward[_grid(n)](
            grad_s.contiguous(), x if need_k else h, h, k, grad_x, partial, n, T, (T - 1) * n, ctx.v_th, ctx.v_reset,
            kind, p0, p1, ctx.detach_reset, need_k, BLOCK=BLOCK,
        )
        grad_k = partial.sum().reshape(ctx.k_shape).to(ctx.k_dtype) if need_k else None
        return grad_x, grad_k, None, None, None, None, None


# ---------------------------------------------------------------------------------------
# MDN 2nd-order:  V'_t = V_{t-1} - S_{t-1} (V_{t-1} - c) ;  U'_t = U_{t-1} + d S_{t-1}
#                 V_t = I_t + V'^2 - U' ;  U_t = (1 - a) U' + a b V' ;  S_t = [V_t > V_th]
# ---------------------------------------------------------------------------------------
@triton.jit
def _load_theta(th_ptr, offs, mask, M):
    """theta ``[4, M]`` at each element's column: one value per neuron (``M`` = neurons) or per batch slot
    and neuron (``M`` = the whole step)."""
    col = offs % M
    a = tl.load(th_ptr + col, mask=mask, other=0.0)
    b = tl.load(th_ptr + M + col, mask=mask, other=0.0)
    c = tl.load(th_ptr + 2 * M + col, mask=mask, other=0.0)
    dd = tl.load(th_ptr + 3 * M + col, mask=mask, other=0.0)
    return a, b, c, dd


@triton.jit
def _second_order_forward(
    i_ptr, th_ptr, v_ptr, u_ptr, s_ptr, N, M, T, v0, u0, v_th, STORE_U: tl.constexpr, BLOCK: tl.constexpr,
):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    a, b, c, dd = _load_theta(th_ptr, offs, mask, M)
    one_minus_a = 1.0 - a
    ab = a * b
    v = tl.zeros([BLOCK], dtype=tl.float32) + v0
    u = tl.zeros([BLOCK], dtype=tl.float32) + u0
    s = tl.zeros([BLOCK], dtype=tl.float32)  # S_{-1} = 0: V'_0 = V0, U'_0 = U0
    base = offs.to(tl.int64)
    for _ in range(T):
        i = tl.load(i_ptr + base, mask=mask, other=0.0)
        vp = v - s * (v - c)
        up = u + s * dd
        v = i + vp * vp - up
        u = up * one_minus_a + vp * ab
        s = (v > v_th).to(tl.float32)
        tl.store(v_ptr + base, v, mask=mask)
        if STORE_U:
            tl.store(u_ptr + base, u, mask=mask)
        tl.store(s_ptr + base, s, mask=mask)
        base += N


@triton.jit
def _second_order_backward(
    gs_ptr, v_ptr, u_ptr, th_ptr, gi_ptr, gth_ptr, N, M, T, v0, u0, v_th,
    KIND: tl.constexpr, P0, P1, NEED_THETA: tl.constexpr, BLOCK: tl.constexpr,
):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    a, b, c, dd = _load_theta(th_ptr, offs, mask, M)
    ab = a * b
    one_minus_a = 1.0 - a
    g_vp_next = tl.zeros([BLOCK], dtype=tl.float32)  # dL/dV'_{t+1}
    g_up_next = tl.zeros([BLOCK], dtype=tl.float32)  # dL/dU'_{t+1} (= dL/dU_t)
    acc_a = tl.zeros([BLOCK], dtype=tl.float32)
    acc_b = tl.zeros([BLOCK], dtype=tl.float32)
    acc_c = tl.zeros([BLOCK], dtype=tl.float32)
    acc_d = tl.zeros([BLOCK], dtype=tl.float32)
    idx = offs.to(tl.int64)
    for step in range(T):
        t = T - 1 - step
        base = idx + t.to(tl.int64) * N
        prev = idx + tl.maximum(t - 1, 0).to(tl.int64) * N  # step t-1 (step 0 reads itself, then discards it)
        v = tl.load(v_ptr + base, mask=mask, other=0.0)
        gs = tl.load(gs_ptr + base, mask=mask, other=0.0)
        sg = _surrogate_grad(v - v_th, KIND, P0, P1)
        s = (v > v_th).to(tl.float32)
        # S_t enters V'_{t+1} = V_t - S_t (V_t - c) and U'_{t+1} = U_t + d S_t
        g_spk = gs + g_vp_next * (c - v) + g_up_next * dd
        g_v = sg * g_spk + g_vp_next * (1.0 - s)
        tl.store(gi_ptr + base, g_v, mask=mask)  # dV_t/dI_t = 1
        # V'_t from step t-1 (V0 at step 0)
        v_prev = tl.load(v_ptr + prev, mask=mask, other=0.0)
        s_prev = (v_prev > v_th).to(tl.float32)
        vp = tl.where(t > 0, v_prev - s_prev * (v_prev - c), v0)
        # V_t = I + V'^2 - U' ;  U_t = (1 - a) U' + a b V'
        g_vp = 2.0 * g_v * vp + g_up_next * ab
        g_up = -g_v + g_up_next * one_minus_a
        if NEED_THETA:
            u_prev = tl.load(u_ptr + prev, mask=mask, other=0.0)
            up = tl.where(t > 0, u_prev + s_prev * dd, u0)
            acc_a += (b * vp - up) * g_up_next  # dU_t/da = b V'_t - U'_t
            acc_b += a * vp * g_up_next  # dU_t/db = a V'_t
            acc_c += g_vp_next * s  # dV'_{t+1}/dc = S_t
            acc_d += g_up_next * s  # dU'_{t+1}/dd = S_t
        g_vp_next = g_vp
        g_up_next = g_up
    if NEED_THETA:
        tl.store(gth_ptr + idx, acc_a, mask=mask)
        tl.store(gth_ptr + N + idx, acc_b, mask=mask)
        tl.store(gth_ptr + 2 * N + idx, acc_c, mask=mask)
        tl.store(gth_ptr + 3 * N + idx, acc_d, mask=mask)


class SecondOrderTriton(torch.autograd.Function):
    """MDN 2nd-order neurons over a whole window as one autograd node on the Triton kernels.

    ``theta`` is ``[4, *shape]`` (per neuron) or ``[4, B, *shape]`` (the authors' batch slots, as
    :meth:`~spikedyn.neurons.SecondOrder.theta_for` gives it); its gradient is the per-element sums
    over T from the kernel, reduced over the batch by PyTorch.
    """

    @staticmethod
    def forward(ctx, current: Tensor, theta: Tensor, v0: float, u0: float, v_th: float, surrogate: Surrogate, watch=None):  # type: ignore[override]
        current = current.contiguous()
        T, n = current.shape[0], current[0].numel()
        th = theta.detach().to(torch.float32).reshape(4, -1).contiguous()
        m = th.shape[1]
        need_theta = ctx.needs_input_grad[1]
        v = torch.empty_like(current)
        u = torch.empty_like(current) if need_theta else current.new_empty(1)
        s = torch.empty_like(current)
        _second_order_forward[_grid(n)](current, th, v, u, s, n, m, T, v0, u0, v_th, need_theta, BLOCK=BLOCK)
        if watch is not None:
            last = {"v": v[T - 1]}
            if need_theta:
                last["u"] = u[T - 1]
            watch(last, lambda: {"v": v, "u": u if need_theta else None})
        ctx.save_for_backward(v, u, th)
        ctx.theta_shape, ctx.theta_dtype = theta.shape, theta.dtype
        ctx.v0, ctx.u0, ctx.v_th, ctx.surrogate = v0, u0, v_th, surrogate
        return s

    @staticmethod
    def backward(ctx, grad_s: Tensor):  # type: ignore[override]
        v, u, th = ctx.saved_tensors
        T, n = v.shape[0], v[0].numel()
        need_theta = ctx.needs_input_grad[1]
        grad_i = torch.empty_like(v)
        grad_el = v.new_empty((4, n)) if need_theta else v.new_empty(1)
        kind, p0, p1 = _surrogate_args(ctx.surrogate)
        _second_order_backward[_grid(n)](
            grad_s.contiguous(), v, u, th, grad_i, grad_el, n, th.shape[1], T, ctx.v0, ctx.u0, ctx.v_th,
            kind, p0, p1, need_theta, BLOCK=BLOCK,
        )
        grad_theta = None
        if need_theta:
            grad_theta = grad_el.view(4, -1, th.shape[1]).sum(1).reshape(ctx.theta_shape).to(ctx.theta_dtype)
        return grad_i, grad_theta, None, None, None, None, None


__all__ = ["DecayLIFTriton", "PLIFTriton", "SecondOrderTriton", "BLOCK"]
