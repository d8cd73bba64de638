"""Streaming inference (spikedyn.streaming): one step at a time gives the whole-sequence forward's
outputs, for every neuron family and for the mdn, brp, plif and nrr networks."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from spikedyn.models import BRPNet, MDNNet, NRRNet, PLIFNet
from spikedyn.neurons import RecurrentNRR, make_neuron
from spikedyn.streaming import Streaming, StreamState

FAMILIES = ["lif", "lif-identity", "plif", "lif-tau", "mdn", "2nd-fs", "2nd-rs", "2nd-sds", "2nd-wds"]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def boost(model: nn.Module, factor: float) -> nn.Module:
    """Scale the synaptic weights of a freshly initialised net so that every layer spikes."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.dim() > 1:
                p.mul_(factor)
    return model


def assert_streams_like_forward(model: nn.Module, x: torch.Tensor, exact_rate: bool = True):
    with torch.no_grad():
        ref = model(x)
    stream = Streaming(model)
    outs = [stream.step(x_t) for x_t in x]
    got = torch.stack([o.spikes for o in outs])
    assert torch.equal(got, ref.spikes)
    assert len(outs[0].taps) == len(ref.taps)
    for i, tap in enumerate(ref.taps):
        assert torch.equal(torch.stack([o.taps[i] for o in outs]), tap)
    if exact_rate:
        assert torch.equal(outs[-1].rate, ref.rate)
    else:  # voted / analog outputs: the running sum and mean(0) may round differently
        torch.testing.assert_close(outs[-1].rate, ref.rate)
    for t in (0, len(x) // 2):  # the rate so far is the mean of the outputs so far
        torch.testing.assert_close(outs[t].rate, ref.spikes[: t + 1].mean(0))
    return ref


@pytest.mark.parametrize("kind", FAMILIES)
@pytest.mark.parametrize("fast", [True, False])
def test_every_neuron_family_streams_like_the_whole_sequence(kind, fast):
    """A bare neuron layer (fused or reference whole-window path) against one step at a time."""
    torch.manual_seed(0)
    layer = make_neuron(kind, (3, 5), fast=fast).double()
    if kind == "mdn":
        with torch.no_grad():  # heterogeneous learnable theta
            layer.theta.add_(0.01 * torch.randn_like(layer.theta))
    scale = 2.0 if kind in ("plif", "lif-tau") else 1.0
    x = scale * torch.randn(30, 4, 3, 5, dtype=torch.float64, generator=gen(1))
    with torch.no_grad():
        ref = layer(x)
    got = Streaming(layer).run(x)
    assert torch.equal(got.spikes, ref)
    assert 0 < float(ref.mean()) < 1, "the drive must make the neurons fire"


def test_float32_layers_stream_exactly_too():
    for kind in FAMILIES:
        layer = make_neuron(kind, 40)
        x = torch.randn(25, 6, 40, generator=gen(2)) * (2.0 if kind in ("plif", "lif-tau") else 1.0)
        with torch.no_grad():
            assert torch.equal(Streaming(layer).run(x).spikes, layer(x)), kind


@pytest.mark.parametrize(
    "options",
    [{}, {"detach_prev": True}, {"recurrent": False}, {"adaptive": False}, {"gamma": 0.5, "sparseness": 0.0}],
)
def test_nrr_recurrent_cell_streams_like_the_whole_sequence(options):
    torch.manual_seed(3)
    cell = boost(RecurrentNRR(12, 20, mask_seed=4, **options).double(), 3.0)
    x = 2 * torch.rand(25, 3, 12, dtype=torch.float64, generator=gen(5))
    with torch.no_grad():
        ref = cell(x)
    assert torch.equal(Streaming(cell).run(x).spikes, ref)
    assert ref.sum() > 0
    if options.get("recurrent", True):
        assert (ref == 2).any(), "both channels must fire somewhere"


@pytest.mark.parametrize("kind", FAMILIES)
def test_mdn_net_streams_like_the_whole_sequence(kind):
    torch.manual_seed(6)
    model = MDNNet(20, 16, 4, neuron=kind).double().eval()
    if kind in ("plif", "lif-tau", "lif-identity"):
        boost(model, 3.0)
    x = torch.rand(15, 5, 20, dtype=torch.float64, generator=gen(7))
    ref = assert_streams_like_forward(model, x)
    assert ref.taps[0].sum() > 0


def test_mdn_net_with_theta_per_batch_slot():
    model = MDNNet(10, 8, 3, neuron="mdn", neuron_options={"theta_slots": 3}).double().eval()
    with torch.no_grad():
        model.neuron1.theta.add_(0.01 * torch.randn(model.neuron1.theta.shape, generator=gen(8), dtype=torch.float64))
    assert_streams_like_forward(model, torch.rand(12, 5, 10, dtype=torch.float64, generator=gen(9)))


@pytest.mark.parametrize(
    "topology, shape, neuron",
    [
        ("CONV_4_3_1_1_FC_16_FC_3", (1, 8, 8), "lif-identity"),
        ("C_4_3_1_1_FC_16_FC_3", (1, 12), "lif-identity"),
        ("CONV_4_3_1_1_FC_16_FC_3", (1, 8, 8), "2nd-rs"),
        ("CONV_4_3_1_1_FC_16_FC_3", (1, 8, 8), "plif"),
    ],
)
def test_brp_net_streams_like_the_whole_sequence(topology, shape, neuron):
    torch.manual_seed(10)
    model = boost(BRPNet(topology, input_shape=shape, neuron=neuron), 3.0).eval()  # float32, as trained
    x = torch.rand(12, 4, *shape, generator=gen(11))
    ref = assert_streams_like_forward(model, x)
    assert ref.taps[0].sum() > 0


@pytest.mark.parametrize("neuron, static", [("plif", False), ("lif-tau", True), ("2nd-fs", False)])
def test_plif_net_streams_like_the_whole_sequence(neuron, static):
    """Batch norm (running statistics), max pooling, voting; the static first conv runs on every step's
    copy of the repeated image and gives what it gives once."""
    torch.manual_seed(12)
    model = PLIFNet((1, 8, 8), classes=3, channels=4, n_conv=2, n_down=2, fc=[16], voting=4, neuron=neuron,
                    static=static).double()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    boost(model, 3.0).eval()
    x = 3 * torch.rand(1 if static else 10, 4, 1, 8, 8, dtype=torch.float64, generator=gen(13))
    x = x.expand(10, *x.shape[1:]) if static else x
    ref = assert_streams_like_forward(model, x, exact_rate=False)
    assert ref.taps[0].sum() > 0


@pytest.mark.parametrize(
    "options",
    [{}, {"layers": 2}, {"deep": True, "conv_channels": 3, "conv_kernel": 3}, {"recurrent": False, "adaptive": False}],
)
def test_nrr_net_streams_like_the_whole_sequence(options):
    """NRR-SNN: the RFC layers' state (V, S, a) carried over steps; the linear read-out o_t at every step."""
    torch.manual_seed(14)
    deep = options.get("deep", False)
    model = NRRNet((1, 6, 6) if deep else 20, 16, 3, mask_seed=15, **options).double().eval()
    if deep:
        x = torch.rand(1, 4, 36, dtype=torch.float64, generator=gen(16)).expand(12, 4, 36)
    else:
        x = 2 * torch.rand(12, 4, 20, dtype=torch.float64, generator=gen(16))
    ref = assert_streams_like_forward(model, x, exact_rate=False)
    assert all(t.sum() > 0 for t in ref.taps)


def test_explicit_state_in_and_out():
    """transition() is pure; a stream saved halfway and resumed (or run by run()) continues exactly;
    reset() starts a new sequence."""
    torch.manual_seed(17)
    model = boost(BRPNet("CONV_4_3_1_1_FC_16_FC_3", input_shape=(1, 8, 8)), 3.0).eval()
    x = torch.rand(10, 3, 1, 8, 8, generator=gen(18))
    with torch.no_grad():
        ref = model(x)
    stream = Streaming(model)
    state = Streaming.initial_state()
    for x_t in x[:4]:
        _, state = stream.transition(x_t, state)
    saved = state
    before = {name: [t.clone() for t in s] for name, s in saved.neurons.items()}
    assert saved.steps == 4 and set(saved.neurons) == {"blocks.0.neuron", "blocks.1.neuron", "blocks.2.neuron"}
    out, after = stream.transition(x[4], saved)
    assert torch.equal(out.spikes, ref.spikes[4]) and after.steps == 5
    for name, s in saved.neurons.items():  # the state passed in is unchanged
        assert all(torch.equal(a, b) for a, b in zip(s, before[name]))
        assert not any(t.requires_grad for t in s)
    resumed = Streaming(model)
    resumed.state = saved
    rest = resumed.run(x[4:])
    assert torch.equal(rest.spikes, ref.spikes[4:]) and torch.equal(rest.rate, ref.rate)
    resumed.reset()
    assert resumed.state.steps == 0
    again = resumed.run(x)
    assert torch.equal(again.spikes, ref.spikes) and torch.equal(again.rate, ref.rate)
    assert isinstance(resumed.state, StreamState) and resumed.state.steps == 10


def test_model_forward_is_unchanged_after_streaming():
    model = MDNNet(10, 8, 3, neuron="2nd-fs").eval()
    x = torch.rand(6, 2, 10, generator=gen(19))
    with torch.no_grad():
        before = model(x).spikes
        Streaming(model).run(x)
        assert torch.equal(model(x).spikes, before)
    assert "forward" not in vars(model.neuron1)


def test_streaming_refuses_active_dropout_and_other_misuse():
    model = PLIFNet((1, 8, 8), classes=2, channels=2, n_conv=1, n_down=1, fc=[8], voting=2, dropout=0.5)
    stream = Streaming(model.train())
    with pytest.raises(ValueError, match=r"model\.eval\(\)"):
        stream.step(torch.rand(2, 1, 8, 8))
    model.eval()
    with pytest.raises(ValueError, match="one time step"):
        stream.step(torch.tensor(1.0))
    with pytest.raises(ValueError, match="no neuron layer"):
        Streaming(nn.Linear(3, 2))

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.neuron = make_neuron("lif-identity", 4)

        def forward(self, x):
            return self.neuron(self.neuron(x))

    with pytest.raises(ValueError, match="more than once per forward pass"):
        Streaming(Twice()).step(torch.rand(2, 4))


@pytest.mark.skipif(importlib.util.find_spec("nir") is None, reason="the optional 'nir' package is not installed")
def test_an_imported_nir_graph_streams_too():
    from spikedyn.nir import export, import_

    torch.manual_seed(20)
    model = boost(BRPNet("CONV_4_3_1_1_FC_16_FC_3", input_shape=(1, 8, 8)), 3.0).eval()
    x = torch.rand(10, 3, 1, 8, 8, generator=gen(21))
    for native in (True, False):
        net = import_(export(model), native=native)
        ref = assert_streams_like_forward(net, x)
        assert torch.equal(ref.spikes, model(x).spikes)
