"""MDN second-order (quadratic, Izhikevich-like) meta-dynamic neuron.

Continuous form (Cheng et al., Eq. 2)::

    dV/dt = V^2 - V - U + I,    dU/dt = theta_a (theta_b V - U),    I = sigmoid(W x + b)
    if V > V_th:  V <- theta_c,  U <- U + theta_d

Discretised exactly as the authors' code (unit Euler step, reset applied at the start of the
*next* step, reset terms differentiated)::

    V'_t = V_{t-1} (1 - S_{t-1}) + theta_c S_{t-1}
    U'_t = U_{t-1} + theta_d S_{t-1}
    V_t  = V'_t + (V'_t^2 - V'_t - U'_t + I_t)   = V'_t^2 - U'_t + I_t
    U_t  = U'_t + theta_a (theta_b V'_t - U'_t)
    S_t  = H(V_t - V_th)        (strict >, V_th = 0.5, RectWindow(0.5, 0.5) surrogate)

Initial state ``V_0 = 0``, ``U_0 = 0.08``, ``S_0 = 0``.  theta = (theta_a..theta_d) is one
value per neuron, learnable in MDN's phase 1 (init 0.02, 0.2, 0.0, 0.08) and frozen to a named
preset (2nd-FS, 2nd-RS, 2nd-SDS, 2nd-WDS) in phase 3.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor, nn

from ..kernels import use_cpp, use_triton
from ..surrogate import RectWindow, Surrogate
from .base import RUNAWAY_LIMIT, NeuronLayer, writable_in_place

#: theta = (a, b, c, d) of the meta neurons found by the MDN pipeline (spec mdn.md section 2.3).
META_NEURON_PRESETS: dict[str, tuple[float, float, float, float]] = {
    "2nd-FS": (0.060, 0.219, -0.065, 0.003),  # fast spiking (MNIST, code M1)
    "2nd-RS": (0.060, 0.219, -0.010, 0.050),  # regular spiking (MNIST, M2)
    "2nd-M3": (0.060, 0.219, -0.135, -0.051),  # discarded candidate (Fig. 4c)
    "2nd-SDS": (-0.009, 0.246, -0.058, 0.065),  # strong depression (TIDigits, T1)
    "2nd-WDS": (0.005, 0.158, -0.058, 0.065),  # weak depression (TIDigits, T3)
}

#: initial theta of phase 1 (learning the dynamics).
THETA_INIT: tuple[float, float, float, float] = (0.02, 0.2, 0.0, 0.08)


class SecondOrderState(NamedTuple):
    v: Tensor
    u: Tensor
    s: Tensor


def second_order_step(
    i_t: Tensor,
    state: SecondOrderState,
    theta: Tensor,
    v_th: float,
    surrogate: Surrogate,
) -> tuple[Tensor, SecondOrderState]:
    """One step of the discretised MDN neuron; ``theta`` is ``[4, *neuron_shape]``."""
    a, b, c, d = theta
    v = state.v * (1.0 - state.s) + c * state.s
    u = state.u + d * state.s
    v_new = v + (v * v - v - u + i_t)
    u_new = u + a * (b * v - u)
    s = surrogate.spike(v_new - v_th, inclusive=False)
    return s, SecondOrderState(v_new, u_new, s)


class _SecondOrderSequence(torch.autograd.Function):
    """Whole-window MDN neuron as one autograd node; saves V (the PyTorch loops also U, for theta's gradient, and S;
    the compiled loops rebuild U and S from V, and the fused sigmoid input's I from the state).

    Backward runs one pass back through time over one step's buffers (the post-reset states rebuilt from
    the step before, the recursion's gradients in two rolling slots, theta's gradient summed per element):
    the only window-sized buffer it allocates is the input's gradient.
    """

    @staticmethod
    def forward(ctx, current: Tensor, theta: Tensor, v0: float, u0: float, v_th: float, surrogate: Surrogate, keep_u: bool, watch=None,  # type: ignore[override]
                compiled: bool = False, sigmoid_input: bool = False, inplace: bool = False):
        a, b, c, d = theta
        T = current.shape[0]
        # inplace (the layer allows it only for its own input): S written over the tensor given (with the sigmoid
        # inside: over Z, which then holds I until the loop has read it)
        inplace = writable_in_place(current, inplace)
        given = current
        # sigmoid_input (compiled only): ``current`` is Z, the current I = sigmoid(Z) computed inside the loop (no
        # pass of its own; within a few ulp of torch.sigmoid's rounding); not kept: backward solves I_t from the state
        if compiled:
            current = current.contiguous()
        v_out = torch.empty_like(current)
        # U is needed in backward only for theta's gradient (keep_u) and the sigmoid's I; the compiled backward
        # rebuilds it from V, so two rolling slots suffice there
        keep_u = keep_u and not compiled
        u_out = torch.empty_like(current) if keep_u else current.new_empty((2, *current.shape[1:]))
        slots = T if keep_u else 2  # U_t lives in u_out[t % slots]
        s = given if inplace else torch.empty_like(current)
        one_minus_a = 1.0 - a
        ab = a * b
        ctx.compiled = compiled
        if compiled:  # the same loop compiled (spikedyn.kernels.cpu): one pass a step
            from ..kernels import cpu

            cpu.ops().second_order_forward(
                current, sigmoid_input, c.contiguous(), d.contiguous(), one_minus_a, ab, v_out, u_out, s, v0, u0, v_th
            )
        else:
            _second_order_forward_loop(current, c, d, one_minus_a, ab, v_out, u_out, s, v0, u0, v_th)
        if watch is not None:  # one check of the last step; the trajectory is searched only if it fails
            watch({"v": v_out[T - 1], "u": u_out[(T - 1) % slots]}, lambda: {"v": v_out, "u": u_out if keep_u else None})
        if inplace:
            ctx.mark_dirty(given)
        # the compiled backward rebuilds S_t = [V_t > V_th] and U from V; the PyTorch loops read them back
        ctx.save_for_backward(v_out, None if compiled else u_out, None if compiled else s, theta)
        ctx.sigmoid_input = sigmoid_input
        ctx.v0, ctx.u0, ctx.v_th, ctx.surrogate = v0, u0, v_th, surrogate
        return s

    @staticmethod
    def backward(ctx, grad_s: Tensor):  # type: ignore[override]
        v, u, s, theta = ctx.saved_tensors
        a, b, c, d = theta
        T = v.shape[0]
        if ctx.compiled:
            return _SecondOrderSequence._compiled_backward(ctx, grad_s, v, theta)
        # dL/dV_t is built in place over dS_t/dV_t (the only window-sized buffer backward allocates)
        grad_v = ctx.surrogate.grad_(v - ctx.v_th)
        need_theta = ctx.needs_input_grad[1]
        ab = a * b
        one_minus_a = 1.0 - a
        step = v.shape[1:]
        # one step's buffers: dL/dV'_t and dL/dU'_t in rolling slots t % 2, the post-reset V'_t (U'_t) rebuilt
        # from step t-1, and theta's gradient summed over the steps per element (reduced over the batch at the end)
        grad_vp = v.new_empty((2, *step))
        grad_up = v.new_empty((2, *step))
        vp = v.new_empty(step)
        g_spk = v.new_empty(step)
        buf = v.new_empty(step)
        if need_theta:
            up = v.new_empty(step)
            acc = torch.zeros((4, *step), dtype=v.dtype, device=v.device)
        for t in range(T - 1, -1, -1):
            g_v = grad_v[t]  # holds dS_t/dV_t until overwritten here with dL/dV_t (== dL/dI_t)
            last = t == T - 1
            if last:
                g_v.mul_(grad_s[t])
            else:
                g_vp_next, g_u = grad_vp[(t + 1) % 2], grad_up[(t + 1) % 2]  # g_u = dL/dU'_{t+1} = dL/dU_t
                # S_t enters V'_{t+1} = V_t - S_t (V_t - c) and U'_{t+1} = U_t + d S_t
                torch.sub(c, v[t], out=buf)
                torch.addcmul(grad_s[t], g_vp_next, buf, out=g_spk)
                g_spk.addcmul_(g_u, d)
                g_v.mul_(g_spk).add_(g_vp_next).addcmul_(g_vp_next, s[t], value=-1.0)
            if t == 0:  # V'_t = V_{t-1} - S_{t-1} (V_{t-1} - c), V'_0 = V0
                vp.fill_(ctx.v0)
            else:
                torch.sub(v[t - 1], c, out=vp)
                vp.mul_(s[t - 1])
                torch.sub(v[t - 1], vp, out=vp)
            if need_theta and not last:
                if t == 0:  # U'_t = U_{t-1} + d S_{t-1}, U'_0 = U0
                    up.fill_(ctx.u0)
                else:
                    torch.addcmul(u[t - 1], s[t - 1], d, out=up)
                torch.mul(vp, b, out=buf)
                acc[0].addcmul_(buf.sub_(up), g_u)  # dU_t/da = b V' - U'
                acc[1].addcmul_(vp, g_u)  # dU_t/db = a V' (a applied after the sum)
                acc[2].addcmul_(g_vp_next, s[t])  # dV'_{t+1}/dc = S_t
                acc[3].addcmul_(g_u, s[t])  # dU'_{t+1}/dd = S_t
            # V_t = V'^2 - U' + I ;  U_t = (1 - a) U' + a b V'
            g_vp, g_up = grad_vp[t % 2], grad_up[t % 2]
            torch.mul(g_v, vp, out=g_vp)
            g_vp.mul_(2.0)
            torch.neg(g_v, out=g_up)
            if not last:
                g_vp.addcmul_(g_u, ab)
                g_up.addcmul_(g_u, one_minus_a)
        if not need_theta:
            return grad_v, None, None, None, None, None, None, None, None, None, None
        return grad_v, _theta_gradient(acc, v, theta), None, None, None, None, None, None, None, None, None

    @staticmethod
    def _compiled_backward(ctx, grad_s: Tensor, v: Tensor, theta: Tensor):
        """Backward in one compiled pass a step (spikedyn.kernels.cpu), dL/dI written over the saved V (dL/dZ
        when the node applied the sigmoid input function itself: I_t solved from V_t = (I_t + V'_t^2) - U'_t with
        U rebuilt from V, which the forward's rounding leaves equal to within one rounding)."""
        from ..kernels import cpu, surrogate_args

        a, b, c, d = theta
        need_theta = ctx.needs_input_grad[1]
        # each thread's sums of theta's gradient per neuron, over its samples and steps, in float64
        acc = (torch.zeros((torch.get_num_threads(), 4, c.numel()), dtype=torch.float64) if need_theta
               else v.new_empty(0))
        cpu.ops().second_order_backward(
            v, ctx.sigmoid_input, grad_s.contiguous(), b.contiguous(), c.contiguous(), d.contiguous(), 1.0 - a,
            a * b, acc,
            ctx.v0, ctx.u0, ctx.v_th, *surrogate_args(ctx.surrogate),
        )
        cpu.mark_overwritten(v)  # V was overwritten: a second backward through the node must be refused
        grad_theta = None
        if need_theta:
            grad_theta = acc.sum(0).to(theta.dtype).reshape(theta.shape)
            grad_theta[1].mul_(theta[0])
        return v, grad_theta, None, None, None, None, None, None, None, None, None


def _second_order_forward_loop(current: Tensor, c: Tensor, d: Tensor, one_minus_a: Tensor, ab: Tensor, v_out: Tensor,
                               u_out: Tensor, s: Tensor, v0: float, u0: float, v_th: float) -> None:
    """:class:`_SecondOrderSequence`'s forward through time in PyTorch operations (U_t in row ``t % len(u_out)``)."""
    T, slots = current.shape[0], u_out.shape[0]
    vp = torch.full_like(current[0], v0)  # V'_t (post-reset)
    up = torch.full_like(current[0], u0)  # U'_t
    for t in range(T):
        u_now = u_out[t % slots]
        if t > 0:
            # V' = V - S (V - c) ;  U' = U + d S
            torch.sub(v_out[t - 1], c, out=vp)
            vp.mul_(s[t - 1])
            torch.sub(v_out[t - 1], vp, out=vp)
            torch.addcmul(u_out[(t - 1) % slots], s[t - 1], d, out=up)
        # V = V'^2 - U' + I ;  U = (1 - a) U' + a b V'
        torch.addcmul(current[t], vp, vp, out=v_out[t])
        v_out[t].sub_(up)
        torch.mul(up, one_minus_a, out=u_now)
        u_now.addcmul_(vp, ab)
        torch.gt(v_out[t], v_th, out=s[t])


def _theta_gradient(acc: Tensor, v: Tensor, theta: Tensor) -> Tensor:
    """theta's gradient from the per-element sums ``acc`` ``[4, *step]`` (rows a, b / a, c, d): summed over
    the axes theta does not have (the batch), row b times a."""
    batch_dims = tuple(range(1, v.dim() - theta.dim() + 1))  # acc's axes that theta does not have
    grad_theta = acc.sum(batch_dims) if batch_dims else acc
    grad_theta[1].mul_(theta[0])
    return grad_theta.reshape(theta.shape)


class SecondOrder(NeuronLayer):
    """Layer of MDN second-order neurons with per-neuron ``theta`` of shape ``[4, *shape]``.

    ``shape`` is the neuron shape (e.g. ``500`` or ``(C, H, W)``), checked against the input's
    trailing dimensions; theta broadcasts over the batch.  V and U are watched at the end of
    every call (:meth:`~spikedyn.neurons.base.NeuronLayer.watch_state`): with ``theta_a < 0``
    (2nd-SDS) they grow without bound over long windows, which gives one warning.  ``learnable=True`` makes theta an ``nn.Parameter`` (MDN phase 1), otherwise a buffer.

    ``theta_slots=S`` reproduces the authors' code (spec mdn.md section 4.1 [C]): theta is
    ``[4, S, *shape]``, one copy per batch slot, and sample ``i`` of a batch uses copy ``i mod S``
    (the authors' batches are always full, ``S`` = batch size; a shorter last batch or a larger
    evaluation batch wraps around the slots).
    """

    watched_fields = ("v", "u")
    #: inplace=True: with the sigmoid input inside the compiled loops, S is written over the pre-sigmoid current
    supports_inplace = True
    keeps_output_spikes = False  # the compiled loops and the kernels rebuild S from V
    runaway_limit = RUNAWAY_LIMIT
    dynamics_names = ("theta_a", "theta_b", "theta_c", "theta_d")

    def __init__(
        self,
        shape: int | Sequence[int],
        theta: Sequence[float] = THETA_INIT,
        learnable: bool = True,
        v_th: float = 0.5,
        v0: float = 0.0,
        u0: float = 0.08,
        surrogate: Surrogate | None = None,
        fast: bool = True,
        theta_slots: int | None = None,
        inplace: bool = False,
    ) -> None:
        super().__init__(input_fn="sigmoid", fast=fast, shape=shape)
        self.inplace = bool(inplace)
        shape = self.shape
        if len(theta) != 4:
            raise ValueError(f"theta must have 4 values (a, b, c, d), got {len(theta)}")
        if theta_slots is not None and (not isinstance(theta_slots, int) or theta_slots < 1):
            raise ValueError(f"theta_slots must be a positive integer (the batch size) or None, got {theta_slots!r}")
        per = (theta_slots, *shape) if theta_slots else shape
        full = torch.tensor([float(x) for x in theta]).reshape(4, *([1] * len(per))).expand(4, *per).clone()
        if learnable:
            self.theta = nn.Parameter(full)
        else:
            self.register_buffer("theta", full)
        self.theta_slots = theta_slots
        self.learnable = learnable
        self.v_th, self.v0, self.u0 = float(v_th), float(v0), float(u0)
        self.surrogate = surrogate if surrogate is not None else RectWindow(0.5, 1.0)

    @classmethod
    def preset(cls, name: str, shape: int | Sequence[int], **kwargs) -> "SecondOrder":
        """A frozen meta neuron by name: ``2nd-FS``, ``2nd-RS``, ``2nd-SDS``, ``2nd-WDS`` (or ``2nd-M3``)."""
        key = _preset_key(name)
        return cls(shape, theta=META_NEURON_PRESETS[key], learnable=False, **kwargs)

    def initial_state(self, like: Tensor) -> SecondOrderState:
        return SecondOrderState(
            torch.full_like(like, self.v0), torch.full_like(like, self.u0), torch.zeros_like(like)
        )

    def learned_dynamics(self) -> Tensor | None:
        """theta ``[4, *shape]`` (or ``[4, slots, *shape]``) when it is learnable, else None."""
        return self.theta.detach().cpu().clone() if self.learnable else None

    def theta_for(self, batch: int, dtype: torch.dtype) -> Tensor:
        """theta as used for a batch: ``[4, *shape]``, or ``[4, batch, *shape]`` with batch slots."""
        theta = self.theta.to(dtype)
        if self.theta_slots is None or batch == self.theta_slots:
            return theta
        index = torch.arange(batch, device=theta.device) % self.theta_slots
        return theta.index_select(1, index)

    def step_current(self, i_t: Tensor, state: SecondOrderState) -> tuple[Tensor, SecondOrderState]:
        return second_order_step(i_t, state, self.theta_for(i_t.shape[0], i_t.dtype), self.v_th, self.surrogate)

    fuses_sigmoid_input = True

    def fast_sequence(self, current: Tensor, sigmoid_input: bool = False, inplace: bool = False) -> Tensor:
        theta = self.theta_for(current.shape[1], current.dtype)
        if not sigmoid_input and use_triton(current, self.surrogate):
            from ..kernels.triton_neurons import SecondOrderTriton

            return SecondOrderTriton.apply(current, theta, self.v0, self.u0, self.v_th, self.surrogate, self.watch_state)
        keep_u = theta.requires_grad and torch.is_grad_enabled()
        return _SecondOrderSequence.apply(
            current, theta, self.v0, self.u0, self.v_th, self.surrogate, keep_u, self.watch_state,
            sigmoid_input or use_cpp(current, self.surrogate), sigmoid_input, inplace,
        )

    def extra_repr(self) -> str:
        slots = f", theta_slots={self.theta_slots}" if self.theta_slots else ""
        return f"shape={self.shape}, learnable={self.learnable}{slots}, v_th={self.v_th}, fast={self.fast}"


def _preset_key(name: str) -> str:
    wanted = name.upper().replace("_", "-")
    if not wanted.startswith("2ND-"):
        wanted = "2ND-" + wanted
    for key in META_NEURON_PRESETS:
        if key.upper() == wanted:
            return key
    raise ValueError(f"unknown meta-neuron preset {name!r}; choose one of {sorted(META_NEURON_PRESETS)}")
