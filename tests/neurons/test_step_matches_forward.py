"""``step(x_t, state)`` is one step of ``forward``: it takes the synaptic input and applies the layer's
input function itself, so stepping through a sequence gives the spikes and membrane of the whole-sequence
forward.

The bug these tests catch: a ``step`` that expects the post-input-function current (the old contract), so
that a caller feeding the synaptic input step by step gets other spikes than ``forward`` (for the sigmoid
layers ``lif`` and the 2nd-order neurons the difference is large: ``sigmoid(z)`` vs ``z``), or an NRR cell
stepped without its feed-forward weights ``W_f``.
"""

from __future__ import annotations

import pytest
import torch

from spikedyn.neurons import RecurrentNRR, make_neuron
from spikedyn.nir import NIRLIF

T, B, N = 12, 3, 7

#: every make_neuron family: decay-LIF with sigmoid and identity input, PLIF, fixed-tau LIF, learnable
#: 2nd-order (MDN) and a frozen meta neuron
KINDS = ["lif", "lif-identity", "plif", "lif-tau", "mdn", "2nd-fs", "2nd-rs"]


def random_input(scale: float = 2.0, seed: int = 0) -> torch.Tensor:
    return scale * torch.randn(T, B, N, generator=torch.Generator().manual_seed(seed))


def step_through(layer, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes and membrane V ``[T, B, ...]`` from ``layer.step`` fed ``x`` one step at a time."""
    state = layer.initial_state(x[0] if not isinstance(layer, RecurrentNRR) else torch.zeros(x.shape[1], layer.hidden))
    spikes, v = [], []
    for x_t in x:
        s_t, state = layer.step(x_t, state)
        spikes.append(s_t)
        v.append(state.v)
    return torch.stack(spikes), torch.stack(v)


def assert_steps_like_forward(layer, x) -> None:
    """Stepping ``layer`` through ``x`` gives exactly the forward's spikes (some but not all neurons fire)
    and the reference run's V to 1e-6."""
    with torch.no_grad():
        spikes, v = step_through(layer, x)
        forward = layer(x)
        reference = layer.run(x, record=True)
    assert 0 < forward.sum() < forward.numel()
    assert torch.equal(spikes, forward)
    torch.testing.assert_close(v, reference.traces["v"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_stepping_equals_forward(kind):
    """Spikes equal the fused forward's exactly, V the reference run's (input function applied once
    over the sequence) to 1e-6; the input makes some but not all neurons fire, so a step that skips
    or doubles the input function gives other spikes."""
    assert_steps_like_forward(make_neuron(kind, N), random_input())


@pytest.mark.parametrize("kind", ["lif", "mdn"])
def test_step_is_not_fed_the_current(kind):
    """For a sigmoid-input layer, stepping the synaptic input differs from stepping its current
    ``sigmoid(z)`` through ``step_current`` from the same state: ``step`` applies the input function."""
    layer = make_neuron(kind, N)
    x = random_input()
    with torch.no_grad():
        state = layer.initial_state(x[0])
        via_step = layer.step(x[0], state)[1].v
        via_current = layer.step_current(torch.sigmoid(x[0]), state)[1].v
        raw = layer.step_current(x[0], state)[1].v
    torch.testing.assert_close(via_step, via_current, atol=0, rtol=0)
    assert not torch.allclose(via_step, raw)


def test_stepping_a_float64_layer_promotes_like_forward():
    """A float64 PLIF layer fed float32 input computes in float64 on both paths (same spikes, float64)."""
    layer = make_neuron("plif", N).double()
    x = random_input()
    with torch.no_grad():
        spikes, _ = step_through(layer, x)
    assert spikes.dtype == torch.float64
    assert torch.equal(spikes, layer(x))


def test_stepping_the_nir_lif_equals_forward():
    """The NIR-imported LIF (Euler steps with per-neuron buffers) steps as its forward."""
    gen = torch.Generator().manual_seed(3)
    layer = NIRLIF(
        decay=0.5 + 0.4 * torch.rand(N, generator=gen), gain=torch.ones(N), offset=torch.zeros(N),
        v_th=torch.full((N,), 1.0), v_reset=torch.zeros(N),
    )
    assert_steps_like_forward(layer, random_input())


@pytest.mark.parametrize("recurrent", [True, False])
def test_stepping_the_nrr_cell_equals_forward(recurrent):
    """NRR's cell: ``step`` applies ``W_f x_t + b_f``; spikes (0, 1, 2) equal the fused forward's, V the
    reference run's."""
    torch.manual_seed(0)
    layer = RecurrentNRR(N, 5, recurrent=recurrent, mask_seed=1)
    x = random_input(scale=1.5)
    assert_steps_like_forward(layer, x)
    with pytest.raises(ValueError, match=r"one step's input \[B, 7\]"):
        layer.step(x, layer.initial_state(torch.zeros(B, 5)))


def test_step_input_checks_name_the_problem():
    """A step fed a whole sequence, integer input or no batch axis is refused with the expected shape."""
    layer = make_neuron("lif", N)
    state = layer.initial_state(torch.zeros(B, N))
    with pytest.raises(ValueError, match=r"expected one step \[B, 7\]"):
        layer.step(random_input(), state)
    with pytest.raises(ValueError, match="floating-point"):
        layer.step(torch.ones(B, N, dtype=torch.long), state)
    with pytest.raises(ValueError, match="0-d"):
        layer.step(torch.tensor(1.0), state)
