"""Step-by-step traces of every neuron against the reference traces in the spec files."""

import pytest
import torch

from spikedyn.neurons import DecayLIF, ParametricLIF, SecondOrder, make_neuron


def constant_input(value: float, T: int = 5, n: int = 1) -> torch.Tensor:
    return torch.full((T, 1, n), value, dtype=torch.float64)


MDN_TRACES = {  # (V_t, U_t, S_t), t = 1..5, constant z = 0 (I = 0.5); spec mdn.md 2.4
    "2nd-fs": [(0.42, 0.0752, 0), (0.6012, 0.0762, 1), (0.4250, 0.0736, 0), (0.6070, 0.0748, 1), (0.4265, 0.0722, 0)],
    "2nd-rs": [(0.42, 0.0752, 0), (0.6012, 0.0762, 1), (0.3739, 0.1185, 0), (0.5213, 0.1163, 1), (0.3338, 0.1562, 0)],
    "2nd-sds": [(0.42, 0.0807, 0), (0.5957, 0.0805, 1), (0.3578, 0.1470, 0), (0.4811, 0.1475, 0), (0.5840, 0.1477, 1)],
}


@pytest.mark.parametrize("preset", sorted(MDN_TRACES))
def test_second_order_reference_trace(preset):
    layer = make_neuron(preset, 1)
    run = layer.run(constant_input(0.0).to(torch.float32).double(), record=True)
    for t, (v, u, s) in enumerate(MDN_TRACES[preset]):
        assert run.traces["v"][t, 0, 0].item() == pytest.approx(v, abs=6e-5)
        assert run.traces["u"][t, 0, 0].item() == pytest.approx(u, abs=6e-5)
        assert run.spikes[t, 0, 0].item() == s


SPIKE_COUNTS = {  # spike counts over T = 20 for constant z; spec mdn.md 2.4
    "2nd-fs": [0, 0, 0, 10, 20, 20],
    "2nd-rs": [0, 0, 0, 6, 12, 14],
    "2nd-sds": [0, 0, 0, 3, 6, 8],
    "2nd-wds": [0, 0, 0, 3, 7, 9],
    "lif": [0, 0, 0, 10, 20, 20],
}
Z_VALUES = [-4.0, -2.0, -1.0, 0.0, 1.0, 2.0]


@pytest.mark.parametrize("kind", sorted(SPIKE_COUNTS))
@pytest.mark.parametrize("fast", [False, True])
def test_spike_counts_over_20_steps(kind, fast):
    z = torch.tensor(Z_VALUES, dtype=torch.float64).expand(20, 1, 6).contiguous()
    layer = make_neuron(kind, 6, fast=fast).double()
    counts = layer(z).sum(0)[0].tolist()
    assert counts == SPIKE_COUNTS[kind]


def test_lif_meta_neuron_below_threshold_trace():
    run = make_neuron("lif", 1).run(constant_input(-1.0, T=4), record=True)
    assert run.traces["v"][:, 0, 0].tolist() == pytest.approx([0.2689, 0.3227, 0.3335, 0.3356], abs=1e-4)
    assert run.spikes.sum() == 0


def test_decay_lif_reset_flag_keeps_current_input():
    # after a spike the carried potential is zeroed but I_t is still added: I = 0.6 fires every step
    run = DecayLIF().run(constant_input(0.6, T=4), record=True)
    assert run.traces["v"][:, 0, 0].tolist() == pytest.approx([0.6, 0.6, 0.6, 0.6])
    assert run.spikes[:, 0, 0].tolist() == [1, 1, 1, 1]
    run = DecayLIF().run(constant_input(0.45, T=3), record=True)
    assert run.traces["v"][:, 0, 0].tolist() == pytest.approx([0.45, 0.54, 0.45])


@pytest.mark.parametrize(
    "tau, expected",
    [
        (2.0, [(0.75, 0), (1.125, 1), (0.75, 0), (1.125, 1), (0.75, 0)]),
        (16.0, [(0.0938, 0), (0.1816, 0), (0.2640, 0), (0.3413, 0), (0.4137, 0)]),
    ],
)
@pytest.mark.parametrize("learnable", [True, False])
def test_plif_reference_trace(tau, expected, learnable):
    """(H_t, S_t) with V_th 1, V_reset 0, constant X = 1.5 (spec plif.md section 2)."""
    layer = ParametricLIF(tau=tau, learnable=learnable).double()
    x = constant_input(1.5)
    state = layer.initial_state(x[0])
    k = torch.sigmoid(layer.a)
    for t, (h_ref, s_ref) in enumerate(expected):
        h = state.v + k * (x[t] - state.v)  # the charge the step computes
        s, state = layer.step(x[t], state)
        assert h.item() == pytest.approx(h_ref, abs=6e-5)
        assert s.item() == s_ref
    assert layer(x)[:, 0, 0].tolist() == [s for _, s in expected]


def test_plif_fires_at_equality_and_casia_cells_do_not():
    assert ParametricLIF(tau=2.0)(torch.full((1, 1, 1), 2.0)).item() == 1.0  # H = 1.0 >= 1
    assert DecayLIF()(torch.full((1, 1, 1), 0.5)).item() == 0.0  # V = 0.5, not > 0.5


def test_plif_tau_initialisation():
    assert ParametricLIF(tau=2.0).a.item() == pytest.approx(0.0)
    assert ParametricLIF(tau=16.0).a.item() == pytest.approx(-2.70805, abs=1e-5)
    assert ParametricLIF(tau=16.0).tau == pytest.approx(16.0)
    with pytest.raises(ValueError, match="tau must be > 1"):
        ParametricLIF(tau=1.0)


def test_second_order_theta_is_per_neuron_and_presets_are_frozen():
    layer = SecondOrder(7)
    assert isinstance(layer.theta, torch.nn.Parameter) and layer.theta.shape == (4, 7)
    assert layer.theta[:, 3].tolist() == pytest.approx([0.02, 0.2, 0.0, 0.08])
    fs = make_neuron("2nd-FS", 7)
    assert not any(p.requires_grad for p in fs.parameters())
    assert "theta" in dict(fs.named_buffers())
    with pytest.raises(ValueError, match="unknown meta-neuron preset"):
        make_neuron("2nd-XX", 3)


def test_sequence_input_shape_errors_are_clear():
    with pytest.raises(ValueError, match=r"time-major sequence \[T, B, ...\]"):
        DecayLIF()(torch.zeros(5))
    with pytest.raises(ValueError, match="neuron shape"):
        SecondOrder(4)(torch.zeros(3, 2, 5))
