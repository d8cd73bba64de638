"""Shared machinery of all neuron families.

A neuron family is

* a typed state (a ``NamedTuple`` of tensors, e.g. ``(v, s)``),
* one pure step function ``step(i_t, state) -> (s_t, new_state)`` over that state, which serves
  the reference path, analysis and plots, and
* a *fast path*: the whole time loop as one autograd node (forward over T saving only what
  backward needs, hand-written backward through time).

:class:`NeuronLayer` is the thin ``nn.Module`` around them.  It takes a time-major sequence
``[T, B, ...]`` of synaptic input, applies the family's input function (identity or sigmoid)
once over the folded sequence, and runs the whole window from the initial state: there is no
``reset`` to forget between batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import torch
from torch import Tensor, nn

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


class NeuronLayer(nn.Module):
    """Base class: a layer of spiking neurons run over a whole ``[T, B, ...]`` sequence.

    Subclasses implement :meth:`initial_state`, :meth:`step` (pure, autograd-differentiable
    reference) and :meth:`fast_sequence` (one autograd node over the whole window).
    ``fast=False`` selects the per-step autograd reference path everywhere.
    """

    def __init__(self, input_fn: str = "identity", fast: bool = True) -> None:
        super().__init__()
        if input_fn not in INPUT_FUNCTIONS:
            raise ValueError(f"unknown input_fn {input_fn!r}; choose one of {sorted(INPUT_FUNCTIONS)}")
        self.input_fn = input_fn
        self.fast = fast

    # -- to be provided by each family -------------------------------------------------
    def initial_state(self, like: Tensor) -> NamedTuple:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self, i_t: Tensor, state: NamedTuple) -> tuple[Tensor, NamedTuple]:  # pragma: no cover
        raise NotImplementedError

    def fast_sequence(self, current: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------
    def current(self, x: Tensor) -> Tensor:
        """Input current ``I = f(z)`` of the whole sequence (f applied once, folded over time)."""
        return INPUT_FUNCTIONS[self.input_fn](x)

    def forward(self, x: Tensor) -> Tensor:
        """Spikes ``[T, B, ...]`` for synaptic input ``x`` of the same shape."""
        if x.dim() < 2:
            raise ValueError(
                f"{type(self).__name__} expects a time-major sequence [T, B, ...], got shape {tuple(x.shape)}"
            )
        current = self.current(x)
        if self.fast:
            return self.fast_sequence(current)
        return self.run_current(current).spikes

    def run(self, x: Tensor, record: bool = False) -> NeuronRun:
        """Reference (per-step autograd) run; ``record=True`` keeps every state field's trace."""
        return self.run_current(self.current(x), record=record)

    def run_current(self, current: Tensor, record: bool = False) -> NeuronRun:
        state = self.initial_state(current[0])
        spikes = []
        traces: dict[str, list[Tensor]] = {name: [] for name in state._fields} if record else {}
        for i_t in current:
            s_t, state = self.step(i_t, state)
            spikes.append(s_t)
            for name in traces:
                traces[name].append(getattr(state, name))
        return NeuronRun(
            spikes=torch.stack(spikes),
            state=state,
            traces={name: torch.stack(values) for name, values in traces.items()},
        )

    def learned_dynamics(self) -> Tensor | None:
        """A detached CPU copy of the layer's learnable dynamics (MDN's theta, PLIF's tau), else None."""
        return None

    def extra_repr(self) -> str:
        return f"input_fn={self.input_fn}, fast={self.fast}"


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

