"""Fused Triton kernels for NRR-SNN's two-channel recurrent cell (:mod:`spikedyn.neurons.adaptive`).

The recurrence couples all N neurons of a sample at every step (``V^r_t = W~_r S_{t-1} + b_r``), so
a kernel instance owns ``BB`` whole samples (all N neurons, padded to a power of two ``NP``) and
runs all T steps for them, holding ``V``, ``a`` and ``S_{t-1}`` (backward: the running gradients)
in registers.  The recurrent product of a step is ``tl.dot`` over chunks of ``KC`` inputs, reading
``S_{t-1}`` back from the spikes the instance wrote one step before (a block barrier between the
steps makes them visible); ``W~_r`` is read from memory every step (it stays in cache).  Products
run in IEEE float32 (``input_precision="ieee"``, not TF32), as the torch loop computes them.

Forward writes the spikes and the potentials (``[V^f; V^r]`` for NRR's two channels, the one
membrane for ``recurrent_input="membrane"``), as the torch loop saves them; backward writes
``dL/dV`` per channel (its channel 0 is the drive's gradient) and PyTorch forms the recurrent
weights' and bias' gradients from it in one product over the folded window, as the torch loop does.

Both gradient forms of the cell: full BPTT (``detach_prev=False``: every reuse of ``S_{t-1}``, with
one ``tl.dot`` with ``W~_r`` per step) and reward propagation (``detach_prev=True``: only the
membrane path, elementwise).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from ..neurons.adaptive import NRRParams
from ..surrogate import Surrogate
from .triton_neurons import _surrogate_args, _surrogate_grad

#: samples per kernel instance (tl.dot needs at least 16 rows)
BB = 16


def _layout(n: int) -> tuple[int, int, int]:
    """``(NP, KC, num_warps)``: neurons padded to a power of two (at least 16), the chunk of the
    recurrent product (16, the smallest ``tl.dot`` takes: the fp32 product runs on FMAs, and a wider
    chunk only adds registers), and the warps per instance (more for wide layers, to spread the
    ``[BB, NP]`` state over more registers: compiled for sm_90, N = 256 and 500 spill at most a few
    hundred bytes per thread)."""
    np_ = max(16, triton.next_power_of_2(n))
    return np_, 16, min(16, max(4, np_ // 32))


@triton.jit
def _sample_block(B, N, NP: tl.constexpr, BB: tl.constexpr):
    """This instance's ``BB`` samples by all ``NP`` (padded) neurons: row and column indices, their masks,
    the 2-D mask and the offsets of the block in one step's ``[B, N]``."""
    rows = tl.program_id(0) * BB + tl.arange(0, BB)
    cols = tl.arange(0, NP)
    rmask = rows < B
    cmask = cols < N
    mask = rmask[:, None] & cmask[None, :]
    offs = rows[:, None].to(tl.int64) * N + cols[None, :]
    return rows, cols, rmask, cmask, mask, offs


@triton.jit
def _nrr_forward(
    zf_ptr, wt_ptr, b_ptr, pot_ptr, s_ptr, B, N, T, step, channel, decay, v_th, alpha, beta, gamma,
    HAS_W: tl.constexpr, HAS_B: tl.constexpr, TWO: tl.constexpr, USE_GAMMA: tl.constexpr,
    NP: tl.constexpr, BB: tl.constexpr, KC: tl.constexpr,
):
    rows, cols, rmask, cmask, mask, offs = _sample_block(B, N, NP, BB)
    # step = B N, channel = T B N (the offset of V^r in the potentials [2, T, B, N]): 64-bit from the host
    if HAS_B:
        bias = tl.load(b_ptr + cols, mask=cmask, other=0.0)
    v = tl.zeros([BB, NP], dtype=tl.float32)  # V_{t-1} = V^f + V^r
    a = tl.zeros([BB, NP], dtype=tl.float32)  # threshold trace
    s_prev = tl.zeros([BB, NP], dtype=tl.float32)  # S_{t-1} in {0, 1, 2}
    for t in range(T):
        base = t * step
        z = tl.load(zf_ptr + base + offs, mask=mask, other=0.0)
        a = a * alpha + s_prev * beta  # a_t = alpha a_{t-1} + beta S_{t-1}
        u = v * decay
        vf = (u - u * s_prev) + z  # V^f_t = lambda V_{t-1} (1 - S_{t-1}) + z^f_t
        if USE_GAMMA:
            vf = vf - a * gamma
        if HAS_W or HAS_B:
            r = tl.zeros([BB, NP], dtype=tl.float32)
            if HAS_W:  # W~_r S_{t-1}: S_{t-1} read back from the spikes written one step before
                prev = tl.maximum(t - 1, 0) * step
                for k0 in range(0, NP, KC):  # a loop, not unrolled: wide layers would compile for minutes
                    ks = k0 + tl.arange(0, KC)
                    kmask = ks < N
                    sp = tl.load(s_ptr + prev + rows[:, None].to(tl.int64) * N + ks[None, :],
                                 mask=rmask[:, None] & kmask[None, :], other=0.0)
                    sp = tl.where(t > 0, sp, 0.0)  # S_{-1} = 0
                    wc = tl.load(wt_ptr + ks[:, None] * N + cols[None, :], mask=kmask[:, None] & cmask[None, :], other=0.0)
                    r += tl.dot(sp, wc, input_precision="ieee")
            if HAS_B:
                r = r + bias[None, :]
            if TWO:  # NRR: a memory-less recurrent channel with its own threshold
                spk = (vf > v_th).to(tl.float32) + (r > v_th).to(tl.float32)
                tl.store(pot_ptr + channel + base + offs, r, mask=mask)
                tl.store(pot_ptr + base + offs, vf, mask=mask)
                v = vf + r
            else:  # the recurrent input enters the membrane
                vf = vf + r
                spk = (vf > v_th).to(tl.float32)
                tl.store(pot_ptr + base + offs, vf, mask=mask)
                v = vf
        else:
            spk = (vf > v_th).to(tl.float32)
            tl.store(pot_ptr + base + offs, vf, mask=mask)
            v = vf
        tl.store(s_ptr + base + offs, spk, mask=mask)
        tl.debug_barrier()  # S_t visible to the whole instance before the next step reads it
        s_prev = spk


@triton.jit
def _nrr_backward(
    gs_ptr, pot_ptr, s_ptr, w_ptr, gv_ptr, B, N, T, step, channel, decay, v_th, alpha, gamma_beta,
    KIND: tl.constexpr, P0, P1, HAS_W: tl.constexpr, TWO: tl.constexpr, DETACH: tl.constexpr,
    TRACE: tl.constexpr, NP: tl.constexpr, BB: tl.constexpr, KC: tl.constexpr,
):
    rows, cols, rmask, cmask, mask, offs = _sample_block(B, N, NP, BB)
    g_next = tl.zeros([BB, NP], dtype=tl.float32)  # dL/dV^f_{t+1}
    h = tl.zeros([BB, NP], dtype=tl.float32)  # -dL/da_{t+1} / gamma, the threshold trace's running gradient
    for i in range(T):
        t = T - 1 - i
        base = t * step
        pf = tl.load(pot_ptr + base + offs, mask=mask, other=0.0)
        gs = tl.load(gs_ptr + base + offs, mask=mask, other=0.0)
        s_t = tl.load(s_ptr + base + offs, mask=mask, other=0.0)
        sgf = _surrogate_grad(pf - v_th, KIND, P0, P1)
        if TWO:
            pr = tl.load(pot_ptr + channel + base + offs, mask=mask, other=0.0)
            sgr = _surrogate_grad(pr - v_th, KIND, P0, P1)
        g_mem = (decay - decay * s_t) * g_next  # dV^f_{t+1}/dV_t = lambda (1 - S_t)
        if DETACH:
            g = gs
        else:  # S_t also enters V^f_{t+1} (reset factor), a_{t+1} (beta) and V^r_{t+1} (W~_r)
            if TWO:
                vt = pf + pr
            else:
                vt = pf
            g = gs - decay * (vt * g_next)
            if TRACE:
                g = g - gamma_beta * h
            if HAS_W:  # dL/dV^r_{t+1} W~_r, dL/dV^r_{t+1} read back from the step written before
                nxt = tl.minimum(t + 1, T - 1) * step
                if TWO:
                    gr_base = gv_ptr + channel + nxt
                else:
                    gr_base = gv_ptr + nxt
                for k0 in range(0, NP, KC):  # a loop, not unrolled: wide layers would compile for minutes
                    ks = k0 + tl.arange(0, KC)
                    kmask = ks < N
                    gr_c = tl.load(gr_base + rows[:, None].to(tl.int64) * N + ks[None, :],
                                   mask=rmask[:, None] & kmask[None, :], other=0.0)
                    gr_c = tl.where(t < T - 1, gr_c, 0.0)  # nothing after the last step
                    wc = tl.load(w_ptr + ks[:, None] * N + cols[None, :], mask=kmask[:, None] & cmask[None, :], other=0.0)
                    g += tl.dot(gr_c, wc, input_precision="ieee")
        gf = g_mem + sgf * g
        tl.store(gv_ptr + base + offs, gf, mask=mask)
        if TWO:
            tl.store(gv_ptr + channel + base + offs, g_mem + sgr * g, mask=mask)
        tl.debug_barrier()  # dL/dV_t visible before the next (earlier) step reads it
        if TRACE:
            h = gf + alpha * h
        g_next = gf


class NRRTriton(torch.autograd.Function):
    """The NRR cell over a whole window as one autograd node on the Triton kernels; the same inputs,
    outputs and gradients as the torch loop (``_NRRSequence``)."""

    @staticmethod
    def forward(ctx, zf, w, b, params: NRRParams, surrogate: Surrogate, detach_prev: bool, merged: bool = False):  # type: ignore[override]
        decay, v_th, alpha, beta, gamma = params
        zf = zf.contiguous()
        T, B, N = zf.shape
        recurrent = w is not None or b is not None
        two = recurrent and not merged
        pot = zf.new_empty((2 if two else 1, T, B, N))
        s = torch.empty_like(zf)
        np_, kc, warps = _layout(N)
        w_t = w.detach().t().contiguous() if w is not None else zf.new_empty(1)
        bias = b.detach().contiguous() if b is not None else zf.new_empty(1)
        _nrr_forward[(triton.cdiv(B, BB),)](
            zf, w_t, bias, pot, s, B, N, T, B * N, T * B * N, decay, v_th, alpha, beta, gamma,
            w is not None, b is not None, two, gamma != 0.0, NP=np_, BB=BB, KC=kc, num_warps=warps,
        )
        ctx.save_for_backward(pot, s, w)
        ctx.params, ctx.surrogate, ctx.detach_prev, ctx.two, ctx.recurrent = params, surrogate, detach_prev, two, recurrent
        return s

    @staticmethod
    def backward(ctx, grad_s: Tensor):  # type: ignore[override]
        pot, s, w = ctx.saved_tensors
        decay, v_th, alpha, beta, gamma = ctx.params
        T, B, N = s.shape
        gv = torch.empty_like(pot)
        np_, kc, warps = _layout(N)
        kind, p0, p1 = _surrogate_args(ctx.surrogate)
        w_ = w.detach().contiguous() if w is not None else s.new_empty(1)
        _nrr_backward[(triton.cdiv(B, BB),)](
            grad_s.contiguous(), pot, s, w_, gv, B, N, T, B * N, T * B * N, decay, v_th, alpha, gamma * beta,
            kind, p0, p1, w is not None, ctx.two, ctx.detach_prev, not ctx.detach_prev and gamma != 0.0,
            NP=np_, BB=BB, KC=kc, num_warps=warps,
        )
        gvr = gv[1] if ctx.two else gv[0]
        grad_w = grad_b = None
        if w is not None and ctx.needs_input_grad[1]:
            grad_w = gvr[1:].reshape(-1, N).t().mm(s[:-1].reshape(-1, N)) if T > 1 else torch.zeros_like(w)
        if ctx.recurrent and ctx.needs_input_grad[2]:
            grad_b = gvr.sum((0, 1))
        grad_zf = gv[0] if ctx.needs_input_grad[0] else None
        return grad_zf, grad_w, grad_b, None, None, None, None


__all__ = ["NRRTriton", "BB"]
