"""Shared machinery of all neuron families.

A neuron family is

* a typed state (a ``NamedTuple`` of tensors, e.g. ``(v, s)``),
* one pure step function ``step_current(i_t, state) -> (s_t, new_state)`` over that state, from
  the input current ``I_t = f(z_t)``, which serves the reference path, analysis and plots, and
* a *fast path*: the whole time loop as one autograd node (forward over T saving only what
  backward needs, hand-written backward through time).

:class:`NeuronLayer` is the thin ``nn.Module`` around them.  It takes a time-major sequence
``[T, B, ...]`` of synaptic input, applies the family's input function (identity or sigmoid)
once over the folded sequence, and runs the whole window from the initial state: there is no
``reset`` to forget between batches.  :meth:`NeuronLayer.step` is one step of that same
``forward``: it takes the synaptic input ``z_t`` ``[B, ...]`` (not the current), applies the input
function and calls ``step_current``, so feeding a sequence step by step from
:meth:`~NeuronLayer.initial_state` gives the spikes and membrane of ``forward`` on the whole
sequence.  Callers that already hold the current ``I_t`` (the reference loop, streaming) call
``step_current``.

Input checks (every path, :meth:`NeuronLayer.check_input`): the input must be a floating-point
``[T, B, ...]`` sequence whose trailing dimensions are the layer's neuron ``shape`` when the
layer has one (``None``: any shape).  A layer with floating parameters or buffers (MDN's theta,
PLIF's ``a``) computes in the promoted dtype of its parameters and the input, as any PyTorch
operation would: a float64 layer fed float32 input returns float64 spikes, and the fast and
reference paths agree on the dtype.

State watch: after every call (not every step) the layer looks at its membrane state at the
end of the window (one reduction per state field).  On a GPU the result is read at a later call,
once the device has it, so that the host never waits for the device (the warning then cannot
name the step; :func:`read_deferred_state_checks` reads what is pending).  A non-finite value (NaN or inf input, or
an overflow), or for families that can run away by themselves (the 2nd-order neurons with
``theta_a < 0``, e.g. 2nd-SDS) a magnitude above :data:`RUNAWAY_LIMIT`, gives one
:class:`NeuronStateWarning` per layer naming the layer and the first step where it happened
(searched only then).  NaN input propagates through the state on both paths, as IEEE arithmetic
does; the spikes after it are 0.
"""

from __future__ import annotations

import math
import operator
import warnings
from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from ..kernels import use_cpp, use_triton
from ..precision import lift_to_float32

#: a membrane state (V or U) beyond this magnitude counts as runaway; the 2nd-order states stay below
#: ~50 on their sigmoid input in (0, 1), while 2nd-SDS passes it after ~700 steps (U grows by 0.9% a step).
RUNAWAY_LIMIT = 1e3


class NeuronStateWarning(RuntimeWarning):
    """A neuron layer's membrane state became non-finite or ran away (warned once per layer)."""


def neuron_shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    """``500`` -> ``(500,)``, ``(C, H, W)`` -> a tuple of positive ints; ValueError otherwise."""
    try:
        dims = (operator.index(shape),) if not isinstance(shape, Sequence) else tuple(operator.index(d) for d in shape)
    except TypeError:
        dims = ()
    if not dims or isinstance(shape, bool) or not all(d > 0 for d in dims):
        raise ValueError(f"a neuron shape is a positive int or a tuple of them (e.g. 500 or (8, 14, 14)), got {shape!r}")
    return dims


def first_bad_step(trace: Tensor, limit: float | None) -> int | None:
    """Index of the first step of ``trace [T, ...]`` holding a non-finite value (or one beyond ``limit``)."""
    bad = ~torch.isfinite(trace) if limit is None else ~(trace.abs() <= limit)
    steps = bad.flatten(1).any(1).nonzero()
    return int(steps[0]) if len(steps) else None


INPUT_FUNCTIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "identity": lambda z: z,
    "sigmoid": torch.sigmoid,
}


@dataclass
class NeuronRun:
    """Result of :meth:`NeuronLayer.run`.

    ``spikes`` is ``[T, B, ...]``; ``state`` is the family's state after the last step;
    ``traces`` maps each state field (``v``, ``u``, ...) to its ``[T, B, ...]`` trajectory
    (empty unless ``record=True``).
    """

    spikes: Tensor
    state: NamedTuple
    traces: dict[str, Tensor] = field(default_factory=dict)


def _within(v: Tensor, limit: float | None) -> Tensor:
    """0-d bool: every value of ``v`` is finite (``limit`` None) or has magnitude at most ``limit``; one pass
    (``aminmax``, no temporaries: a NaN makes both comparisons false)."""
    if v.numel() == 0:
        return torch.ones((), dtype=torch.bool, device=v.device)
    low, high = torch.aminmax(v)
    if limit is None:
        return (low > -math.inf) & (high < math.inf)
    return (low >= -limit) & (high <= limit)


def enable_inplace(layer: nn.Module) -> nn.Module:
    """Turn on ``inplace`` for a neuron layer whose family supports it (a network whose neuron layers are
    fed fresh synapse outputs, used once); other layers are returned unchanged."""
    if getattr(layer, "supports_inplace", False):
        layer.inplace = True
    return layer


def writable_in_place(current: Tensor, inplace: bool) -> bool:
    """Whether a fast path asked for ``inplace`` may write its spikes over ``current``: a contiguous
    tensor that is not a leaf requiring a gradient (autograd refuses to change those in place) and not a
    view (an in-place write into a view makes autograd copy the whole base in the backward pass, which
    costs more than the memory it saves; ``spikedyn.layers.time_linear`` gives synapse outputs that are
    not views)."""
    return (inplace and current.is_contiguous() and current._base is None
            and not (current.is_leaf and current.requires_grad))


class NeuronLayer(nn.Module):
    """Base class: a layer of spiking neurons run over a whole ``[T, B, ...]`` sequence.

    Subclasses implement :meth:`initial_state`, :meth:`step_current` (pure, autograd-differentiable
    reference step from the input current) and :meth:`fast_sequence` (one autograd node over the
    whole window).  ``fast=False`` selects the per-step autograd reference path everywhere.

    ``shape`` is the neuron shape the input's trailing dimensions must have (``None``: any).
    ``label`` names the layer in warnings (:func:`label_neuron_layers` sets it to the module
    name in a model).  ``watched_fields`` are the state fields checked at the end of every call,
    ``runaway_limit`` the magnitude beyond which they count as runaway (``None``: only
    non-finite values are reported; the LIF families cannot run away on finite input).
    """

    watched_fields: tuple[str, ...] = ("v",)
    #: the family's fast paths can write the spikes over the layer's input (its ``inplace`` option)
    supports_inplace: bool = False
    #: write the spikes over the layer's input where it may be overwritten (see :meth:`fast_sequence_input`)
    inplace: bool = False
    #: the fast path's backward keeps the output spikes (so the next synapse may save them by reference;
    #: a family that rebuilds them from its state says False, and the synapse keeps them as bytes)
    keeps_output_spikes: bool = True
    runaway_limit: float | None = None
    #: names of the parameters in :meth:`learned_dynamics` (its rows; one name for a 0-d value)
    dynamics_names: tuple[str, ...] = ()

    def __init__(self, input_fn: str = "identity", fast: bool = True, shape: int | Sequence[int] | None = None) -> None:
        super().__init__()
        if input_fn not in INPUT_FUNCTIONS:
            raise ValueError(f"unknown input_fn {input_fn!r}; choose one of {sorted(INPUT_FUNCTIONS)}")
        self.input_fn = input_fn
        self.fast = fast
        self.shape = None if shape is None else neuron_shape(shape)
        self.label: str | None = None
        self._state_warned = False

    # -- to be provided by each family -------------------------------------------------
    def initial_state(self, like: Tensor) -> NamedTuple:  # pragma: no cover - abstract
        raise NotImplementedError

    def step_current(self, i_t: Tensor, state: NamedTuple) -> tuple[Tensor, NamedTuple]:  # pragma: no cover
        """One reference step from the input current ``I_t = f(z_t)`` ``[B, ...]`` (the input function
        already applied); returns the spikes ``S_t`` and the new state."""
        raise NotImplementedError

    def fast_sequence(self, current: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------
    def current(self, x: Tensor) -> Tensor:
        """Input current ``I = f(z)`` of the whole sequence (f applied once, folded over time)."""
        return INPUT_FUNCTIONS[self.input_fn](x)

    def step(self, x_t: Tensor, state: NamedTuple) -> tuple[Tensor, NamedTuple]:
        """One step of :meth:`forward`: synaptic input ``x_t`` ``[B, ...]`` (what ``forward`` reads at one
        step) -> ``(S_t, new_state)``.

        Applies the layer's input function, as ``forward`` does, then :meth:`step_current`; so
        stepping through ``x`` from ``initial_state(x[0])`` gives ``forward(x)`` step by step.  The
        input is checked as :meth:`check_input` checks a sequence (floating point, neuron shape) and
        promoted to the compute dtype.
        """
        return self.step_current(self.current(self.check_step_input(x_t)), state)

    def describe(self) -> str:
        """The layer as named in errors and warnings."""
        shape = f" of neuron shape {self.shape}" if self.shape is not None else ""
        name = f"layer {self.label!r} ({type(self).__name__})" if self.label else f"{type(self).__name__} layer"
        return name + shape

    def parameter_dtype(self) -> torch.dtype | None:
        """dtype of the layer's own floating parameters/buffers (None when it has none)."""
        for tensor in (*self.parameters(recurse=False), *self.buffers(recurse=False)):
            if tensor.is_floating_point():
                return tensor.dtype
        return None

    def check_input(self, x: Tensor) -> Tensor:
        """``x`` checked (time-major, floating point, neuron shape) and promoted to the compute dtype."""
        if x.dim() < 2:
            raise ValueError(
                f"{type(self).__name__} expects a time-major sequence [T, B, ...], got shape {tuple(x.shape)}"
            )
        return self._checked(x, 2, "got input", "[T, B, ", "(one value per neuron and step)")

    def check_step_input(self, x_t: Tensor) -> Tensor:
        """One step's input ``x_t`` ``[B, ...]`` checked (floating point, neuron shape) and promoted."""
        if x_t.dim() < 1:
            raise ValueError(f"{type(self).__name__}.step expects one step's input [B, ...], got a 0-d tensor")
        return self._checked(x_t, 1, ": step got input", "one step [B, ", "(one value per neuron)")

    def _checked(self, x: Tensor, lead: int, got: str, expected: str, per: str) -> Tensor:
        """``x`` promoted after checking it is floating point and its axes after the ``lead`` leading ones
        are the neuron shape (the messages of :meth:`check_input` / :meth:`check_step_input`)."""
        if not x.is_floating_point():
            raise ValueError(
                f"{self.describe()} expects floating-point input, got {x.dtype}; convert it first (e.g. x.float())"
            )
        if self.shape is not None and tuple(x.shape[lead:]) != self.shape:
            raise ValueError(
                f"{self.describe()}{'' if got.startswith(':') else ' '}{got} of shape {tuple(x.shape)}; expected "
                f"{expected}{', '.join(map(str, self.shape))}] {per}"
            )
        return self.promote(x)

    def promote(self, x: Tensor) -> Tensor:
        """``x`` in the promoted dtype of the layer's floating parameters and ``x`` (as PyTorch ops would compute).

        Under bfloat16 autocast (``--precision bf16``, :mod:`spikedyn.precision`) a bfloat16 current is
        first lifted to float32, so the membrane state is computed in single precision.
        """
        x = lift_to_float32(x)
        dtype = self.parameter_dtype()
        if dtype is not None and x.dtype != dtype:
            x = x.to(torch.promote_types(x.dtype, dtype))
        return x

    def watch_state(self, last: dict[str, Tensor], traces: Callable[[], dict[str, Tensor | None]] | None) -> None:
        """Warn once if a state field at the end of the window is non-finite or beyond ``runaway_limit``.

        ``last`` maps field names to their values after the last step; ``traces`` (called only when
        the check fails) returns their ``[T, ...]`` trajectories, where known, to find the first step.
        """
        if getattr(self, "_state_warned", False) or not last:
            return
        limit = self.runaway_limit
        with torch.no_grad():
            checks = [_within(v, limit) for v in last.values()]
            healthy = checks[0] if len(checks) == 1 else torch.stack(checks).all()  # one launch fewer on a GPU
            if self.defer_watch(healthy):
                self._read_deferred(wait=False)
                self._defer(healthy, last)
                return
            if bool(healthy):
                return
            steps = {}
            for name, trace in (traces() if traces is not None else {}).items():
                if trace is not None:
                    step = first_bad_step(trace.detach(), limit)
                    if step is not None:
                        steps[name] = (step, len(trace))
        self._state_warned = True
        nonfinite = any(not bool(torch.isfinite(v).all()) for v in last.values())
        if steps:
            name, (step, total) = min(steps.items(), key=lambda item: item[1][0])
            where = f"{name.upper()} from step {step + 1} of {total} (1-based) on"
        else:
            where = f"{', '.join(n.upper() for n in last)} by the last step"
        if nonfinite and limit is None:
            why = (
                "it is NaN or infinite: non-finite input (check the data and the layer before) or an overflow; "
                "the spikes after that step are 0"
            )
        else:
            why = (
                f"it is non-finite or its magnitude exceeds {limit:g}: these dynamics grow without bound over long "
                f"windows (a 2nd-order neuron with theta_a < 0, such as 2nd-SDS, diverges); spikes and gradients "
                f"there are meaningless. Use fewer time steps (--steps) or a neuron whose dynamics stay bounded"
            )
        warnings.warn(f"{self.describe()}: membrane state {where}: {why}.", NeuronStateWarning, stacklevel=2)

    def defer_watch(self, healthy: Tensor) -> bool:
        """Whether the state check is read later instead of now: on a GPU, reading it at once would make
        the host wait for the device at every call (see :meth:`_defer`)."""
        return healthy.device.type == "cuda"

    def _defer(self, healthy: Tensor, last: dict[str, Tensor]) -> None:
        """Queue the check's copy to the host and read it at a later call, once the device is done with it.

        The warning then names the layer and the state fields but not the step (the trajectories are gone);
        :func:`read_deferred_state_checks` reads what is still pending (the trainer, after every epoch).
        """
        if healthy.device.type == "cuda":
            flag = torch.empty((), dtype=torch.bool, pin_memory=True)
            flag.copy_(healthy, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
        else:  # another device (or a test on the CPU): the flag is read when asked for
            flag, event = healthy, None
        self._pending_check = (flag, event, tuple(last))

    def _read_deferred(self, wait: bool) -> None:
        """Warn if a deferred check failed; ``wait=False`` skips a check the device has not finished."""
        pending = getattr(self, "_pending_check", None)
        if pending is None or self._state_warned:
            return
        flag, event, names = pending
        if event is not None and not wait and not event.query():
            return
        if event is not None:
            event.synchronize()
        self._pending_check = None
        if bool(flag):
            return
        self._state_warned = True
        warnings.warn(
            f"{self.describe()}: membrane state {', '.join(n.upper() for n in names)} at the end of a recent call "
            f"is non-finite or beyond {self.runaway_limit if self.runaway_limit is not None else 'the finite range'} "
            f"(checked without stopping the GPU, so the step is not known; rerun the batch on the CPU to find it). "
            f"Non-finite input or an overflow, or dynamics that grow without bound over long windows (a 2nd-order "
            f"neuron with theta_a < 0): spikes and gradients there are meaningless.",
            NeuronStateWarning,
            stacklevel=3,
        )

    def forward(self, x: Tensor) -> Tensor:
        """Spikes ``[T, B, ...]`` for synaptic input ``x`` of the same shape."""
        x = self.check_input(x)
        if self.fast:
            return self.fast_sequence_input(x)
        return self.run_current(self.current(x)).spikes

    #: a family whose compiled CPU loops can take the sigmoid input function into their node (its
    #: ``fast_sequence`` accepts ``sigmoid_input=True``: the pre-activation in, sigmoid and its derivative inside)
    fuses_sigmoid_input = False

    def fast_sequence_input(self, x: Tensor) -> Tensor:
        """The fast path from the synaptic input ``x``: :meth:`current`, then :meth:`fast_sequence`; on the
        compiled CPU loops of a family that fuses it, the sigmoid input runs inside the node and its derivative
        in the node's backward pass (no window-sized pass of its own)."""
        surrogate = getattr(self, "surrogate", None)
        if (self.fuses_sigmoid_input and self.input_fn == "sigmoid" and not use_triton(x, surrogate)
                and use_cpp(x, surrogate)):
            return self.fast_sequence(x, sigmoid_input=True, **self._overwrite(True))
        current = self.current(x)
        # only the layer's own input may take the spikes: an input function's result (sigmoid) is kept by
        # that function's backward
        return self.fast_sequence(current, **self._overwrite(current is x))

    def _overwrite(self, allowed: bool) -> dict:
        """``fast_sequence``'s ``inplace`` argument for a family that has one: the option, where allowed."""
        return {"inplace": self.inplace and allowed} if self.supports_inplace else {}

    def run(self, x: Tensor, record: bool = False) -> NeuronRun:
        """Reference (per-step autograd) run; ``record=True`` keeps every state field's trace."""
        return self.run_current(self.current(self.check_input(x)), record=record)

    def run_current(self, current: Tensor, record: bool = False) -> NeuronRun:
        """Reference run from the input current ``I = f(z)`` ``[T, B, ...]`` (input function already applied)."""
        state = self.initial_state(current[0])
        spikes = []
        traces: dict[str, list[Tensor]] = {name: [] for name in state._fields} if record else {}
        for i_t in current:
            s_t, state = self.step_current(i_t, state)
            spikes.append(s_t)
            for name in traces:
                traces[name].append(getattr(state, name))
        run = NeuronRun(
            spikes=torch.stack(spikes),
            state=state,
            traces={name: torch.stack(values) for name, values in traces.items()},
        )
        watched = {name: getattr(state, name) for name in self.watched_fields if name in state._fields}
        self.watch_state(watched, (lambda: {n: run.traces.get(n) for n in watched}) if record else None)
        return run

    def learned_dynamics(self) -> Tensor | None:
        """A detached CPU copy of the layer's learnable dynamics (MDN's theta, PLIF's tau), else None."""
        return None

    def named_dynamics(self) -> dict[str, Tensor]:
        """:meth:`learned_dynamics` by parameter name (:attr:`dynamics_names`): ``{"tau": 0-d}`` (PLIF),
        ``{"theta_a": [*shape], ..., "theta_d": ...}`` (MDN); ``{}`` when the dynamics are fixed.

        Rows without a name are called ``p0``, ``p1``, ...
        """
        value = self.learned_dynamics()
        if value is None:
            return {}
        names = self.dynamics_names
        if value.dim() == 0:
            return {names[0] if names else "p0": value}
        if len(names) != len(value):
            names = tuple(f"p{i}" for i in range(len(value)))
        return dict(zip(names, value))

    def threshold_trace(self, run: NeuronRun) -> Tensor | None:
        """The firing threshold at every step of a recorded ``run`` (``[T, B, ...]``), for a family whose
        threshold on ``V`` moves (an adaptive threshold); None when it is the constant ``v_th``.

        Plots (:func:`~spikedyn.plots.plot_neuron_traces`) draw this trace against ``V``.  Every built-in
        family has a constant threshold on its recorded ``V`` (NRR's adaptive term ``gamma a_t`` is
        subtracted inside ``V^f``), so only a subclass with a moving threshold overrides it.
        """
        return None

    def extra_repr(self) -> str:
        shape = f"shape={self.shape}, " if self.shape is not None else ""
        return f"{shape}input_fn={self.input_fn}, fast={self.fast}"


def read_deferred_state_checks(model: nn.Module) -> None:
    """Read every neuron layer's pending state check (GPU runs defer them, see
    :meth:`NeuronLayer.watch_state`), waiting for the device; warns as the check would have."""
    for module in model.modules():
        if isinstance(module, NeuronLayer):
            module._read_deferred(wait=True)


def label_neuron_layers(model: nn.Module) -> None:
    """Give every neuron layer in ``model`` its module name as ``label`` (named in warnings)."""
    for name, module in model.named_modules():
        if isinstance(module, NeuronLayer):
            module.label = name or type(module).__name__


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(dynamics, weights)``: the parameters of the model's neuron layers (PLIF's ``a``, MDN's
    theta, trained at their own rate) and all the others (synapses, batch norm)."""
    ids = {id(p) for m in model.modules() if isinstance(m, NeuronLayer) for p in m.parameters()}
    params = list(model.parameters())
    return [p for p in params if id(p) in ids], [p for p in params if id(p) not in ids]


def learned_dynamics(model: nn.Module) -> dict[str, Tensor]:
    """Every neuron layer's learnable dynamics in ``model``, keyed by the layer's module name
    (without a trailing ``.neuron``); layers with fixed dynamics are left out."""
    out: dict[str, Tensor] = {}
    for name, module in model.named_modules():
        if isinstance(module, NeuronLayer):
            value = module.learned_dynamics()
            if value is not None:
                out[name.removesuffix(".neuron") or name] = value
    return out


def named_learned_dynamics(model: nn.Module) -> dict[str, dict[str, Tensor]]:
    """Every neuron layer's learnable dynamics by parameter name (:meth:`NeuronLayer.named_dynamics`), keyed
    by layer name as in :func:`learned_dynamics`: ``{"neuron1": {"tau": ...}}``, ``{"hidden": {"theta_a": ...}}``."""
    out: dict[str, dict[str, Tensor]] = {}
    for name, module in model.named_modules():
        if isinstance(module, NeuronLayer):
            value = module.named_dynamics()
            if value:
                out[name.removesuffix(".neuron") or name] = value
    return out


class ParameterGroups:
    """Mixin for networks: the trainer's two Adam groups and the logged dynamics, from the neuron layers.

    ``dynamic_parameters`` (PLIF's ``a``, MDN's theta; trained at eta_D), ``weight_parameters``
    (everything else: synapses, batch norm), ``learned_dynamics`` (a detached copy per neuron
    layer) and ``named_learned_dynamics`` (the same by parameter name) by :func:`split_parameters`,
    :func:`learned_dynamics` and :func:`named_learned_dynamics`.
    """

    def dynamic_parameters(self) -> list[nn.Parameter]:
        """Learnable neuron dynamics (MDN's theta, PLIF's ``a``): trained at their own rate eta_D."""
        return split_parameters(self)[0]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Synaptic weights, biases and batch-norm affine parameters (everything but the neuron dynamics)."""
        return split_parameters(self)[1]

    def learned_dynamics(self) -> dict[str, Tensor]:
        """A detached copy of every neuron layer's learnable dynamics, keyed by layer name."""
        return learned_dynamics(self)

    def named_learned_dynamics(self) -> dict[str, dict[str, Tensor]]:
        """The same, split by parameter name per layer (``tau``; ``theta_a`` .. ``theta_d``)."""
        return named_learned_dynamics(self)
