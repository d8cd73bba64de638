"""Streaming inference: run a trained network one time step at a time.

The library's networks read a whole window ``x [T, B, ...]`` and every neuron layer starts
from its initial state on each call.  :class:`Streaming` runs the same network on one step
``x_t [B, ...]`` at a time, carrying the neuron states from step to step, for input that arrives
as it happens (a microphone, an event camera) or windows longer than memory allows::

    stream = Streaming(model.eval())
    for x_t in source:               # x_t: [B, ...], one step
        out = stream.step(x_t)       # out.spikes: [B, C], what model(x).spikes[t] holds
    stream.reset()                   # a new sequence

**How.**  Synapses, batch norm (evaluation mode), pooling, voting and read-outs are stateless
per step, so a model's own ``forward`` already computes step ``t`` from a one-step sequence
``[1, B, ...]``; only its neuron layers carry state over time.  During :meth:`Streaming.step`
every neuron layer of the model (:class:`~spikedyn.neurons.NeuronLayer`: decay-LIF with
sigmoid or identity input, PLIF, fixed-tau LIF, MDN's 2nd-order neurons, NIR-imported LIF;
and NRR's :class:`~spikedyn.neurons.RecurrentNRR`) runs its family's per-step reference
function once, from the state the stream holds::

    I_t = f(z_t)                                    (the layer's input function; NRR: z^f_t = W_f x_t + b_f)
    S_t, state_t = step_current(I_t, state_{t-1})   (NRR: step_drive; state_0 = the layer's initial state)

which is the function every fused whole-window path is tested against (same spikes), so
``out.spikes`` at step ``t`` equals ``model(x).spikes[t]`` and ``out.taps`` equal
``model(x).taps[i][t]``.  ``out.rate`` is the mean of the outputs of the steps seen since the last
reset: after ``T`` steps, ``model(x).rate`` (exactly for spike outputs; to float rounding of
the summation order for voted or analog read-outs).

**State.**  :class:`StreamState` holds each neuron layer's state (a dict keyed by module name,
each the family's ``NamedTuple``, e.g. ``LIFState(v, s)``, ``SecondOrderState(v, u, s)``,
``NRRState(v, s, a)``), the step count and the running output sum.  :meth:`Streaming.step` uses
and updates the wrapper's own state; :meth:`Streaming.transition` is the pure form, state in and
state out, for callers that keep states themselves (several streams through one model, or
saving a stream to resume it later).

**Limits.**  Stochastic training-mode layers (time-shared dropout with ``p > 0``, NRR's input
noise) draw their masks per call, so a model with one active must be put in ``eval()`` first
(a ``ValueError`` says so).  A neuron layer that runs twice in one forward pass cannot be
streamed (its two states would collide) and raises.  Steps run under ``torch.no_grad()``
unless ``grad=True``.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple

import torch
from torch import Tensor, nn

from .layers.dropout import TimeSharedDropout
from .layers.noise import InputNoise
from .models.mdn import NetOutput
from .neurons.adaptive import RecurrentNRR
from .neurons.base import NeuronLayer

__all__ = ["Streaming", "StreamState", "StepOutput"]


@dataclass
class StepOutput:
    """One step's output: ``spikes`` ``[B, ...]`` (what ``NetOutput.spikes[t]`` holds: spikes, voted
    scores or NRR's read-out), ``rate`` the mean of ``spikes`` over the steps since the last reset,
    ``taps`` the hidden layers' spikes at this step (``NetOutput.taps[i][t]``)."""

    spikes: Tensor
    rate: Tensor
    taps: list[Tensor] = field(default_factory=list)


@dataclass
class StreamState:
    """A stream's state: each neuron layer's state by module name (empty: every layer at its
    initial state), the number of steps run, and the sum of the outputs so far (for ``rate``)."""

    neurons: dict[str, NamedTuple] = field(default_factory=dict)
    steps: int = 0
    total: Tensor | None = None

    def detach(self) -> "StreamState":
        """A copy whose tensors are detached from any autograd graph."""
        neurons = {name: type(s)(*(t.detach() for t in s)) for name, s in self.neurons.items()}
        return StreamState(neurons, self.steps, None if self.total is None else self.total.detach())


def _stateful_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (NeuronLayer, RecurrentNRR))]


class Streaming:
    """Run ``model`` (any network of the library, an imported NIR graph, or a single neuron
    layer) one time step at a time with outputs identical to the whole-sequence forward.

    ``model`` returns a :class:`~spikedyn.models.NetOutput` or a ``[T, B, ...]`` tensor for a
    ``[T, B, ...]`` input.  ``grad=True`` keeps autograd on during the steps (the states then
    hold the graph of every step since the last reset).  See the module docstring.
    """

    def __init__(self, model: nn.Module, *, grad: bool = False) -> None:
        layers = _stateful_layers(model)
        if not layers:
            raise ValueError(
                f"{type(model).__name__} has no neuron layer (NeuronLayer or RecurrentNRR): there is no state to stream"
            )
        self.model = model
        self.grad = bool(grad)
        self._layers = layers
        self.state = StreamState()

    # -- state ---------------------------------------------------------------------------
    def reset(self) -> None:
        """Start a new sequence: every neuron layer back to its initial state, the rate to zero steps."""
        self.state = StreamState()

    @staticmethod
    def initial_state() -> StreamState:
        """The state of a stream that has not run yet (each layer's initial state is made on the first step)."""
        return StreamState()

    # -- stepping ------------------------------------------------------------------------
    def step(self, x_t: Tensor) -> StepOutput:
        """Run one step ``x_t`` ``[B, ...]`` (one step of the model's input, without the time axis)
        from the wrapper's state, and keep the new state."""
        out, self.state = self.transition(x_t, self.state)
        return out

    def transition(self, x_t: Tensor, state: StreamState) -> tuple[StepOutput, StreamState]:
        """Pure step: the output for ``x_t`` ``[B, ...]`` from ``state``, and the state after it
        (``state`` itself is not changed)."""
        self._check_mode()
        if not isinstance(x_t, Tensor) or x_t.dim() < 1:
            raise ValueError(
                f"Streaming.step takes one time step [B, ...] (the whole-sequence input [T, B, ...] without T), "
                f"got {type(x_t).__name__} of shape {tuple(getattr(x_t, 'shape', ()))}"
            )
        new_neurons: dict[str, NamedTuple] = {}
        with torch.set_grad_enabled(self.grad and torch.is_grad_enabled()), self._one_step(state.neurons, new_neurons):
            result = self.model(x_t.unsqueeze(0))
        if isinstance(result, NetOutput):
            spikes, taps = result.spikes[0], [tap[0] for tap in result.taps]
        elif isinstance(result, Tensor):
            spikes, taps = result[0], []
        else:
            raise TypeError(
                f"Streaming needs a model returning a NetOutput or a [T, B, ...] tensor, got {type(result).__name__}"
            )
        missing = [name for name, _ in self._layers if name not in new_neurons and name in state.neurons]
        for name in missing:  # a layer skipped this step keeps its state
            new_neurons[name] = state.neurons[name]
        total = spikes if state.total is None else state.total + spikes
        steps = state.steps + 1
        return StepOutput(spikes, total / steps, taps), StreamState(new_neurons, steps, total)

    def run(self, x: Tensor) -> NetOutput:
        """Step through a whole sequence ``x`` ``[T, B, ...]`` from the current state (continuing it);
        the outputs stacked as a :class:`~spikedyn.models.NetOutput` (``rate``: the running mean at the end)."""
        if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] < 1:
            raise ValueError(f"Streaming.run takes a sequence [T, B, ...] with T >= 1, got shape {tuple(x.shape)}")
        outs = [self.step(x_t) for x_t in x]
        taps = [torch.stack([o.taps[i] for o in outs]) for i in range(len(outs[0].taps))]
        return NetOutput(rate=outs[-1].rate, spikes=torch.stack([o.spikes for o in outs]), taps=taps)

    # -- internals -----------------------------------------------------------------------
    def _check_mode(self) -> None:
        if not self.model.training:
            return
        for name, module in self.model.named_modules():
            if isinstance(module, (TimeSharedDropout, InputNoise, nn.Dropout)) and module.p > 0:
                raise ValueError(
                    f"{name or type(module).__name__} ({type(module).__name__}, p = {module.p:g}) draws its random "
                    f"mask per call in training mode, so stepping cannot reproduce the whole-sequence forward; "
                    f"call model.eval() before streaming"
                )

    @contextmanager
    def _one_step(self, states_in: dict[str, NamedTuple], states_out: dict[str, NamedTuple]) -> Iterator[None]:
        """Switch every neuron layer of the model to one reference step from ``states_in`` (writing ``states_out``)."""
        patched = []
        try:
            for name, layer in self._layers:
                layer.forward = _one_step_forward(name, layer, states_in, states_out)  # type: ignore[method-assign]
                patched.append(layer)
            yield
        finally:
            for layer in patched:
                del layer.forward


def _one_step_forward(name: str, layer: nn.Module, states_in: dict, states_out: dict):
    """A replacement ``forward`` running ``layer`` for one step ``[1, B, ...]`` from ``states_in[name]``."""

    def forward(x: Tensor) -> Tensor:
        if x.shape[0] != 1:
            raise RuntimeError(f"streaming: layer {name!r} got {x.shape[0]} steps at once, expected 1")
        if name in states_out:
            raise ValueError(
                f"layer {name!r} ({type(layer).__name__}) runs more than once per forward pass; streaming keeps one "
                f"state per layer and cannot tell its runs apart"
            )
        if isinstance(layer, RecurrentNRR):
            drive = layer.drive(x)[0]
        else:
            drive = layer.current(layer.check_input(x))[0]
        state = states_in.get(name)
        if state is None:
            state = layer.initial_state(drive)
        if isinstance(layer, RecurrentNRR):
            spikes, new_state = layer.step_drive(drive, state)
        else:
            spikes, new_state = layer.step_current(drive, state)
        states_out[name] = new_state
        return spikes.unsqueeze(0)

    return forward
