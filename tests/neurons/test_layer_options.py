"""Every neuron layer honours its options and defaults (found by mutation testing, docs/DEVELOPING.md).

The fast-vs-reference tests compare the two paths a layer offers; they pass when ``fast`` is
ignored (both runs take the same path) or when an option never reaches the layer.  These tests
pin which autograd node runs, the spec's default constants, the validation messages, and that
options given to ``make_neuron`` and the step functions arrive.
"""

import pytest
import torch
from torch import nn

from spikedyn.neurons import (
    LIF,
    PLIF,
    DecayLIF,
    LIFState,
    NRRParams,
    NRRState,
    ParametricLIF,
    RecurrentNRR,
    SecondOrder,
    decay_lif_step,
    make_neuron,
    nrr_step,
    plif_step,
)
from spikedyn.surrogate import ATan, RectWindow

#: the fused autograd node of each family (the reference path ends in a stack of per-step spikes)
FUSED = {"lif": "_DecayLIFSequence", "lif-identity": "_DecayLIFSequence", "plif": "_PLIFSequence",
         "lif-tau": "_PLIFSequence", "mdn": "_SecondOrderSequence", "2nd-fs": "_SecondOrderSequence"}


def node(spikes: torch.Tensor) -> str:
    return type(spikes.grad_fn).__name__


@pytest.mark.parametrize("kind", sorted(FUSED))
def test_fast_selects_the_fused_node_and_is_the_default(kind):
    """Catches a layer (or make_neuron) that drops ``fast``: both 'paths' would then be the same."""
    x = torch.randn(3, 2, 4, requires_grad=True)
    assert node(make_neuron(kind, 4)(x)).startswith(FUSED[kind])
    assert node(make_neuron(kind, 4, fast=True)(x)).startswith(FUSED[kind])
    reference = make_neuron(kind, 4, fast=False)
    assert reference.fast is False and not node(reference(x)).startswith(FUSED[kind])


@pytest.mark.parametrize("fast", [False, True])
def test_nrr_fast_selects_the_fused_node(fast):
    layer = RecurrentNRR(3, 4, fast=fast, mask_seed=0)
    assert layer.fast is fast
    assert node(layer(torch.randn(3, 2, 3, requires_grad=True))).startswith("_NRRSequence") is fast
    assert RecurrentNRR(3, 4).fast is True


def test_direct_constructors_default_to_the_fused_path():
    for layer in (DecayLIF(), ParametricLIF(), PLIF(), LIF(), SecondOrder(4), SecondOrder.preset("2nd-fs", 4)):
        assert layer.fast is True, layer


@pytest.mark.parametrize("kind", sorted(FUSED))
def test_make_neuron_passes_the_shape_and_the_options(kind):
    """The neuron shape and keyword options reach the layer for every kind."""
    layer = make_neuron(kind, (2, 3), v_th=0.7)
    assert layer.shape == (2, 3) and layer.v_th == 0.7
    with pytest.raises(ValueError, match=r"neuron shape \(2, 3\)"):
        layer(torch.zeros(2, 1, 6))


def test_make_neuron_kinds_and_their_input_functions():
    assert make_neuron("lif", 3).input_fn == "sigmoid" and make_neuron("lif-identity", 3).input_fn == "identity"
    assert make_neuron("plif", 3).learnable is True and make_neuron("lif-tau", 3).learnable is False
    assert make_neuron("mdn", 3).learnable is True and make_neuron("2nd-rs", 3).learnable is False


def test_spec_default_constants():
    """Decay-LIF: decay 0.2, V_th 0.5, RectWindow(0.5, 1), reset flag differentiated (common.md section 3);
    PLIF: tau 2 (a = 0), learnable, V_th 1, V_reset 0, ATan(2), detach_reset (plif.md section 2);
    MDN 2nd-order: V_th 0.5, V_0 = 0, U_0 = 0.08, RectWindow(0.5, 1) (mdn.md section 2.1)."""
    lif = DecayLIF()
    assert (lif.decay, lif.v_th, lif.surrogate, lif.detach_reset, lif.input_fn) == (0.2, 0.5, RectWindow(0.5, 1.0), False, "identity")
    plif = ParametricLIF()
    assert isinstance(plif.a, nn.Parameter) and plif.learnable is True and plif.a.item() == 0.0
    assert (plif.tau, plif.v_th, plif.v_reset, plif.surrogate, plif.detach_reset) == (2.0, 1.0, 0.0, ATan(2.0), True)
    second = SecondOrder(3)
    assert (second.v_th, second.v0, second.u0, second.surrogate, second.learnable) == (0.5, 0.0, 0.08, RectWindow(0.5, 1.0), True)
    nrr = RecurrentNRR(3)
    assert nrr.hidden == 500 and nrr.params == NRRParams(0.2, 0.5, 0.9, 0.1, 1.0) and nrr.surrogate == RectWindow(0.5, 1.0)
    assert nrr.sparseness == 0.5 and nrr.recurrent is True and nrr.mask is not None


def test_lif_and_plif_factories():
    """LIF: fixed tau (a buffer), PLIF: learnable tau; both keep tau and the other options."""
    lif = LIF(tau=16.0, v_th=0.7)
    assert lif.learnable is False and not isinstance(lif.a, nn.Parameter) and lif.tau == pytest.approx(16.0)
    assert lif.v_th == 0.7 and not list(lif.parameters())
    plif = PLIF(tau=16.0, v_reset=-0.1)
    assert plif.learnable is True and isinstance(plif.a, nn.Parameter) and plif.tau == pytest.approx(16.0)
    assert plif.v_reset == -0.1


def test_a_given_surrogate_is_used():
    given = [(DecayLIF, ATan(2.0)), (ParametricLIF, RectWindow()), (lambda surrogate: SecondOrder(3, surrogate=surrogate), ATan(3.0)),
             (lambda surrogate: RecurrentNRR(3, 4, surrogate=surrogate), ATan(4.0))]
    for build, surrogate in given:
        assert build(surrogate=surrogate).surrogate == surrogate


def test_validation_bounds_and_messages():
    """Decay in [0, 1] (both ends allowed), sparseness in [0, 1], positive sizes, four theta values,
    positive integer theta_slots: each refusal names the value."""
    for decay in (0.0, 1.0):
        assert DecayLIF(decay=decay).decay == decay and RecurrentNRR(2, 2, decay=decay).decay == decay
    for bad in (-0.01, 1.01):
        with pytest.raises(ValueError, match=rf"decay must lie in \[0, 1\], got {bad}"):
            DecayLIF(decay=bad)
        with pytest.raises(ValueError, match=rf"decay must lie in \[0, 1\], got {bad}"):
            RecurrentNRR(2, 2, decay=bad)
        with pytest.raises(ValueError, match=rf"sparseness must lie in \[0, 1\], got {bad}"):
            RecurrentNRR(2, 2, sparseness=bad)
    assert RecurrentNRR(2, 2, sparseness=1.0).sparseness == 1.0
    for inputs, hidden in ((0, 2), (2, 0)):
        with pytest.raises(ValueError, match="positive inputs and hidden sizes"):
            RecurrentNRR(inputs, hidden)
    with pytest.raises(ValueError, match="theta must have 4 values"):
        SecondOrder(3, theta=(0.1, 0.2, 0.3))
    for slots in (0, 1.5):
        with pytest.raises(ValueError, match="theta_slots must be a positive integer"):
            SecondOrder(3, theta_slots=slots)
    one = SecondOrder(3, theta_slots=1)
    assert one.theta_slots == 1 and one.theta.shape == (4, 1, 3)
    with pytest.raises(ValueError, match="at least one time step"):
        RecurrentNRR(2, 2)(torch.zeros(0, 1, 2))


def test_theta_slots_wrap_around_the_batch():
    """Sample i of a batch uses theta copy i mod S (mdn.md section 4.1), on both paths."""
    layer = SecondOrder(2, theta_slots=2, learnable=False)
    with torch.no_grad():
        layer.theta[2, 1] = 0.3  # copy 1 resets to V = 0.3 instead of 0 after a spike
    x = torch.full((6, 3, 2), 2.0)
    for fast in (False, True):
        layer.fast = fast
        run = layer.run(x, record=True) if not fast else None
        spikes = layer(x)
        assert torch.equal(spikes[:, 0], spikes[:, 2]) and not torch.equal(spikes[:, 0], spikes[:, 1])
        if run is not None:
            assert torch.equal(run.traces["v"][:, 0], run.traces["v"][:, 2])
    torch.testing.assert_close(layer.theta_for(3, torch.float64)[2], torch.tensor([[0.0, 0.0], [0.3, 0.3], [0.0, 0.0]], dtype=torch.float64))
    assert layer.theta_for(2, torch.float64).dtype == torch.float64


def test_step_functions_default_to_the_papers_gradients():
    """decay_lif_step differentiates the reset flag by default, plif_step detaches it (plif.md section 2)."""
    v1 = torch.tensor([0.8], dtype=torch.float64, requires_grad=True)  # fired at step 1
    s1 = RectWindow().spike(v1 - 0.5)
    _, state = decay_lif_step(torch.tensor([0.3], dtype=torch.float64), LIFState(v1, s1), 0.2, 0.5, RectWindow())
    state.v.sum().backward()
    assert v1.grad.item() == pytest.approx(-0.2 * 0.8)  # d(0.2 V (1 - S))/dV at S = 1: 0 - 0.2 V * 1
    x = torch.tensor([2.4], dtype=torch.float64, requires_grad=True)  # H = k X = 1.2 >= V_th: fires
    _, state = plif_step(x, LIFState(torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)),
                         torch.tensor(0.5, dtype=torch.float64), 1.0, 0.0, ATan(2.0))
    assert state.s.item() == 1.0 and state.v.item() == 0.0
    state.v.sum().backward()
    assert x.grad.item() == 0.0  # detached reset: dV/dH = 1 - S = 0 (attached: (V_reset - H) dS/dH != 0)


def test_plif_reference_run_records_the_spikes():
    layer = make_neuron("plif", 2, fast=False)
    run = layer.run(torch.full((4, 1, 2), 1.5), record=True)
    assert sorted(run.traces) == ["s", "v"] and torch.equal(run.traces["s"], run.spikes)
    assert torch.equal(run.state.s, run.spikes[-1])
    assert not layer.run(torch.full((4, 1, 2), 1.5)).traces  # no traces unless asked


@pytest.mark.parametrize("detach_prev", [False, True])
def test_nrr_step_without_recurrent_weights(detach_prev):
    """nrr_step with a recurrent bias only (no W_r): V^r = b_r; with neither, no recurrent channel."""
    params = NRRParams()
    state = NRRState(*(torch.zeros(1, 2) for _ in range(3)))
    zf = torch.tensor([[0.7, 0.2]])
    s, new = nrr_step(zf, state, None, torch.tensor([0.9, 0.1]), params, RectWindow(), detach_prev)
    assert s.tolist() == [[2.0, 0.0]] and torch.allclose(new.v, torch.tensor([[1.6, 0.3]]))
    s, new = nrr_step(zf, state, None, None, params, RectWindow(), detach_prev)
    assert s.tolist() == [[1.0, 0.0]] and torch.allclose(new.v, zf)


def test_presets_file_kind_gets_fast_and_options(tmp_path):
    """``make_neuron("PATH:NAME", ...)`` passes ``fast`` and the options to the preset layer."""
    from spikedyn.meta import save_presets

    path = save_presets(tmp_path / "p.json", {"fast": (0.060, 0.219, -0.065, 0.003)})
    x = torch.randn(3, 2, 4, requires_grad=True)
    assert node(make_neuron(f"{path}:fast", 4)(x)).startswith("_SecondOrderSequence")
    reference = make_neuron(f"{path}:fast", 4, fast=False, v_th=0.6)
    assert reference.fast is False and reference.v_th == 0.6 and not node(reference(x)).startswith("_SecondOrderSequence")


@pytest.mark.parametrize("name", ["2nd-FS", "2nd-fs", "fs", "FS", "2nd_fs", "2ND_FS"])
def test_preset_names_are_forgiving(name):
    """Case, a missing "2nd-" prefix and "_" for "-" all name the same meta neuron (mdn.md section 2.3)."""
    layer = SecondOrder.preset(name, 2)
    torch.testing.assert_close(layer.theta[:, 0], torch.tensor([0.060, 0.219, -0.065, 0.003]))
    assert layer.learnable is False and not list(layer.parameters())


@pytest.mark.parametrize("fast", [False, True])
def test_second_order_fires_strictly_above_threshold(fast):
    """V = 0.5 exactly (U_0 = 0, z = 0: I = sigmoid(0) = 0.5) does not fire (strict V > V_th, common.md section 1)."""
    layer = SecondOrder(1, u0=0.0, fast=fast)
    assert layer(torch.zeros(1, 1, 1)).item() == 0.0
    assert layer(torch.full((1, 1, 1), 0.01)).item() == 1.0


@pytest.mark.parametrize("kind", ["lif-identity", "plif", "2nd-fs"])
@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])  # float32: the compiled loops (PLIF keeps only D)
def test_nan_warning_names_the_field_and_the_first_step(kind, fast, dtype):
    """A NaN fed at step 4 (1-based) of 12 is reported as "V from step 4 of 12" on both paths."""
    from spikedyn.neurons.base import NeuronStateWarning

    layer = make_neuron(kind, 2, fast=fast).to(dtype)
    layer.label = "hidden"
    x = torch.full((12, 1, 2), 0.3, dtype=dtype)
    x[3, 0, 1] = float("nan")
    with pytest.warns(NeuronStateWarning) as record:
        layer(x) if fast else layer.run(x, record=True)
    message = str(record[0].message)
    assert message.startswith("layer 'hidden' (") and "of neuron shape (2,)" in message
    assert "membrane state V from step 4 of 12 (1-based)" in message


def test_layer_descriptions():
    """Errors and warnings name a layer by its label and class, and its neuron shape when it has one."""
    assert DecayLIF().describe() == "DecayLIF layer"
    layer = ParametricLIF(shape=3)
    assert layer.describe() == "ParametricLIF layer of neuron shape (3,)"
    layer.label = "fc1"
    assert layer.describe() == "layer 'fc1' (ParametricLIF) of neuron shape (3,)"


def test_labels_and_learned_dynamics_are_keyed_by_module_name():
    """label_neuron_layers: the module name (the class name for a bare layer); learned_dynamics: the
    name without a trailing ".neuron", learnable layers only."""
    from spikedyn.neurons.base import label_neuron_layers, learned_dynamics

    block = nn.Module()
    block.neuron = PLIF(tau=4.0)
    model = nn.ModuleDict({"fc1": block, "plain": PLIF(tau=3.0), "fixed": LIF()})
    label_neuron_layers(model)
    assert (block.neuron.label, model["plain"].label, model["fixed"].label) == ("fc1.neuron", "plain", "fixed")
    dynamics = learned_dynamics(model)
    assert sorted(dynamics) == ["fc1", "plain"]
    assert float(dynamics["fc1"]) == pytest.approx(4.0) and float(dynamics["plain"]) == pytest.approx(3.0)
    bare = DecayLIF()
    label_neuron_layers(bare)
    assert bare.label == "DecayLIF"
    neuron = PLIF()
    assert learned_dynamics(neuron).keys() == {""}
    tau = PLIF(tau=4.0).learned_dynamics()
    assert tau.shape == () and tau.device.type == "cpu" and float(tau) == pytest.approx(4.0) and not tau.requires_grad
    assert LIF(tau=4.0).learned_dynamics() is None


def test_nrr_options_reach_the_layer():
    """Without recurrence there is no mask (and no W_r); the reference run keeps traces only when asked
    and returns the final state; W_r learns with a frozen recurrent bias."""
    plain = RecurrentNRR(3, 4, recurrent=False)
    assert plain.mask is None and plain.fc_r is None and plain.recurrent_weight() is None
    layer = RecurrentNRR(3, 4, mask_seed=0)
    with torch.no_grad():  # every neuron fires (z^f = 1.5) and V^r = 0.2 + 0.3 * (spiking inputs) lies in the window
        layer.fc_f.weight.fill_(0.5)
        layer.fc_f.bias.zero_()
        layer.fc_r.weight.fill_(0.3)
        layer.fc_r.bias.fill_(0.2)
        layer.apply_mask_()
    assert layer.mask.sum() > 0
    x = torch.ones(5, 2, 3)
    run = layer.run(x)
    assert run.traces == {} and isinstance(run.state, NRRState) and run.state.v.shape == (2, 4)
    assert sorted(layer.run(x, record=True).traces) == ["a", "s", "v"]
    with pytest.raises(ValueError, match="^RecurrentNRR needs at least one time step, got an empty sequence$"):
        layer(torch.zeros(0, 1, 3))
    layer.fc_r.bias.requires_grad_(False)
    layer(x.requires_grad_()).sum().backward()
    assert layer.fc_r.weight.grad is not None and layer.fc_r.weight.grad.abs().sum() > 0


def test_nrr_step_differentiates_the_previous_spikes_by_default():
    """nrr_step's default is BP-RSNN (detach_prev=False): S_{t-1} carries gradient (reset flag, trace)."""
    s_prev = torch.ones(1, 2, requires_grad=True)
    state = NRRState(torch.full((1, 2), 0.4), s_prev, torch.zeros(1, 2))
    _, new = nrr_step(torch.full((1, 2), 0.3), state, None, None, NRRParams(), RectWindow())
    new.v.sum().backward()
    assert s_prev.grad is not None and s_prev.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", ["lif-identity", "plif", "2nd-fs"])
@pytest.mark.parametrize("fast", [False, True])
def test_nan_in_the_last_step_is_reported(kind, fast):
    """The state watch looks at the state after the last step (not the one before it); for the
    2nd-order neuron U is still finite there, which the search for the first bad step must allow."""
    from spikedyn.neurons.base import NeuronStateWarning

    layer = make_neuron(kind, 2, fast=fast).double()
    x = torch.full((6, 1, 2), 0.3, dtype=torch.float64)
    x[5, 0, 0] = float("nan")
    with pytest.warns(NeuronStateWarning, match="V from step 6 of 6"):
        layer(x) if fast else layer.run(x, record=True)


def test_neuron_shape_and_input_checks_name_the_problem():
    """Neuron shapes are positive ints (not bools); input is a float [T, B, ...] sequence ([T, B] too)."""
    from spikedyn.neurons import NeuronKindError, NeuronLayer
    from spikedyn.neurons.base import neuron_shape

    assert neuron_shape(5) == (5,) and neuron_shape((2, 3)) == (2, 3)
    for bad in (0, (3, 0), (), True, "a", 2.5):
        with pytest.raises(ValueError, match="a neuron shape is a positive int or a tuple of them"):
            neuron_shape(bad)
    base = NeuronLayer()
    assert (base.input_fn, base.fast, base.shape, base.label) == ("identity", True, None, None)
    with pytest.raises(ValueError, match=r"unknown input_fn 'tanh'; choose one of \['identity', 'sigmoid'\]"):
        NeuronLayer(input_fn="tanh")
    with pytest.raises(NeuronKindError, match="unknown neuron kind 'tanh'"):
        make_neuron("tanh", 3)
    assert DecayLIF()(torch.zeros(3, 2)).shape == (3, 2)  # [T, B]: one neuron per sample
    with pytest.raises(ValueError, match=r"^DecayLIF expects a time-major sequence \[T, B, \.\.\.\], got shape \(3,\)$"):
        DecayLIF()(torch.zeros(3))
    with pytest.raises(ValueError, match=r"expected \[T, B, 2, 3\] \(one value per neuron and step\)"):
        DecayLIF(shape=(2, 3))(torch.zeros(1, 1, 6))
    assert "shape=(2, 3), input_fn=identity, fast=True" in repr(DecayLIF(shape=(2, 3)))
    assert repr(ParametricLIF(shape=2)) == ("ParametricLIF(shape=(2,), tau=2.000, learnable=True, v_th=1.0, v_reset=0.0, "
                                            "surrogate=ATan(alpha=2.0), detach_reset=True, fast=True)")
    assert repr(ParametricLIF()).startswith("ParametricLIF(tau=2.000,")
    assert repr(DecayLIF()) == ("DecayLIF(decay=0.2, v_th=0.5, surrogate=RectWindow(half_width=0.5, height=1.0), "
                                "detach_reset=False, input_fn=identity, fast=True)")


@pytest.mark.parametrize("kind", ["lif-identity", "plif"])
def test_nan_warning_text(kind):
    """Without recorded traces the warning names the state after the last step, and says what NaN means."""
    from spikedyn.neurons.base import NeuronStateWarning

    layer = make_neuron(kind, 2, fast=False)
    x = torch.full((4, 1, 2), 0.3)
    x[1, 0, 0] = float("nan")
    with pytest.warns(NeuronStateWarning) as record:
        layer(x)
    assert str(record[0].message) == (
        f"{type(layer).__name__} layer of neuron shape (2,): membrane state V by the last step: it is NaN or infinite: "
        "non-finite input (check the data and the layer before) or an overflow; the spikes after that step are 0."
    )


def test_nan_warning_of_a_second_order_layer_names_both_fields():
    from spikedyn.neurons.base import NeuronStateWarning

    x = torch.full((4, 1, 2), 0.3)
    x[1, 0, 0] = float("nan")
    with pytest.warns(NeuronStateWarning, match="membrane state V, U by the last step"):
        make_neuron("2nd-fs", 2, fast=False)(x)
