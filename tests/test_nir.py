"""NIR export / import (spikedyn.nir): round trips through nir.write / nir.read with identical
spikes, the parameter mapping, the refusals, snnTorch's importer, and ``spikedyn export``."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys

import numpy as np
import pytest
import torch

from spikedyn.cli import main
from spikedyn.models import BRPNet, MDNNet, NRRNet, PLIFNet
from spikedyn.neurons import DecayLIF, ParametricLIF
from spikedyn.nir import NIRExportError, NIRImportError, NIRLIF, NIRUnavailableError, export, import_, require_nir

needs_nir = pytest.mark.skipif(
    importlib.util.find_spec("nir") is None, reason="the optional 'nir' package is not installed (pip install nir)"
)


def boost(model: torch.nn.Module, factor: float) -> torch.nn.Module:
    """Scale the synaptic weights of a freshly initialised net so that every layer spikes."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.dim() > 1:
                p.mul_(factor)
    return model.eval()


def round_trip(graph, tmp_path):
    import nir

    path = tmp_path / "model.nir"
    nir.write(path, graph)
    return nir.read(path)


def assert_same_run(model, net, x):
    with torch.no_grad():
        ref, got = model(x), net(x)
    assert torch.equal(ref.spikes, got.spikes)
    assert len(ref.taps) == len(got.taps)
    for a, b in zip(ref.taps, got.taps):
        assert torch.equal(a, b)
    assert torch.equal(ref.rate, got.rate)
    return ref


@needs_nir
@pytest.mark.parametrize("native", [True, False])
def test_brp_conv_net_round_trip_gives_identical_spikes(tmp_path, native):
    """A decay-LIF conv net (brp topology on an 8x8 input): export -> write -> read -> import gives the
    same hidden and output spikes on a fixed input, with the library's own layers rebuilt from the
    metadata (native) or every neuron run as NIR's Euler LIF (native=False)."""
    torch.manual_seed(0)
    model = boost(BRPNet("CONV_4_3_1_1_FC_16_FC_3", input_shape=(1, 8, 8)), 3.0)
    exported = export(model)
    assert [type(n).__name__ for n in exported.nodes.values()] == [
        "Input", "Conv2d", "LIF", "AvgPool2d", "Flatten", "Affine", "LIF", "Affine", "LIF", "Output",
    ]
    graph = round_trip(exported, tmp_path)
    assert {k: type(n).__name__ for k, n in graph.nodes.items()} == {k: type(n).__name__ for k, n in exported.nodes.items()}
    net = import_(graph, native=native)
    neuron_type = DecayLIF if native else NIRLIF
    assert sum(isinstance(m, neuron_type) for m in net.modules()) == 3
    x = torch.rand(12, 5, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    ref = assert_same_run(model, net, x)
    assert all(0 < float(t.mean()) < 1 for t in ref.taps) and ref.spikes.sum() > 0


@needs_nir
def test_brp_conv1d_net_round_trip(tmp_path):
    """BRP's spoken-digit shape (Conv1d, AvgPool1d(k) as a per-channel Conv1d of weight 1/k)."""
    torch.manual_seed(2)
    model = boost(BRPNet("C_4_3_1_1_FC_16_FC_3", input_shape=(1, 12)).double(), 3.0)
    graph = round_trip(export(model), tmp_path)
    pool = graph.nodes["block0_pool"]
    assert type(pool).__name__ == "Conv1d" and int(np.asarray(pool.stride)) == 3
    x = torch.rand(10, 4, 1, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for native in (True, False):  # AvgPool1d rebuilt from the metadata, or the Conv1d stand-in run as it is
        ref = assert_same_run(model, import_(graph, native=native), x)
    assert ref.taps[0].sum() > 0 and ref.taps[1].sum() > 0


@needs_nir
@pytest.mark.parametrize("neuron, pool", [("plif", "max"), ("lif-tau", "avg")])
def test_plif_net_round_trip(tmp_path, neuron, pool):
    """PLIF nets: batch norm folded into the conv, spike max-pool as SumPool2d + Threshold(0), voting as a
    Linear node; float64 so that the folded batch norm's rounding cannot move a spike."""
    torch.manual_seed(4)
    model = PLIFNet((1, 8, 8), classes=3, channels=4, n_conv=1, n_down=2, fc=[16], voting=4, pool=pool,
                    neuron=neuron, neuron_options={"tau": 3.0} if neuron == "lif-tau" else {}).double()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(0.0, 0.5)
    boost(model, 3.0)
    exported = export(model)
    kinds = [type(n).__name__ for n in exported.nodes.values()]
    assert kinds.count("LIF") == 4 and kinds[-2] == "Linear"
    graph = round_trip(exported, tmp_path)
    if pool == "max":
        assert "SumPool2d" in kinds and "Threshold" in kinds
    x = 3 * torch.rand(10, 4, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    for native in (True, False):
        net = import_(graph, native=native)
        ref = assert_same_run(model, net, x)
        if native:
            layer_cls = ParametricLIF
            assert sum(isinstance(m, layer_cls) for m in net.modules()) == 4
    assert ref.taps[0].sum() > 0 and ref.taps[1].sum() > 0


@needs_nir
def test_mdn_net_of_decay_lif_round_trip(tmp_path):
    torch.manual_seed(6)
    model = boost(MDNNet(20, 16, 3, neuron="lif-identity"), 2.0)
    exported = export(model)
    assert list(exported.nodes) == ["input", "fc1", "neuron1", "fc2", "neuron2", "output"]
    graph = round_trip(exported, tmp_path)
    x = torch.rand(10, 6, 20, generator=torch.Generator().manual_seed(7))
    for native in (True, False):
        assert_same_run(model, import_(graph, native=native), x)


@needs_nir
def test_mapping_of_the_decay_to_continuous_parameters():
    """Decay-LIF: tau = dt/(1 - lambda), R = 1/(1 - lambda), v_leak = v_reset = 0, v_threshold = V_th;
    lambda = 1 is an IF node with R = 1/dt.  PLIF / LIF: tau = tau_p dt, R = 1, v_leak = v_reset = V_reset,
    threshold one float32 step below V_th.  Every parameter has the neuron shape."""
    import nir

    dt = 1e-3
    model = MDNNet(5, 4, 2, neuron="lif-identity")
    graph = export(model, dt=dt)
    assert float(graph.metadata["dt"]) == dt
    lif = graph.nodes["neuron1"]
    assert isinstance(lif, nir.LIF) and lif.tau.shape == (4,)
    np.testing.assert_allclose(lif.tau, dt / 0.8)
    np.testing.assert_allclose(lif.r, 1.25)
    np.testing.assert_array_equal(lif.v_leak, 0.0)
    np.testing.assert_array_equal(lif.v_reset, 0.0)
    np.testing.assert_array_equal(lif.v_threshold, 0.5)
    # Euler: 1 - dt/tau is the decay, (dt/tau) R the input gain
    np.testing.assert_allclose(1 - dt / lif.tau, 0.2)
    np.testing.assert_allclose(dt / lif.tau * lif.r, 1.0)

    no_leak = MDNNet(5, 4, 2, neuron="lif-identity", neuron_options={"decay": 1.0})
    node = export(no_leak, dt=dt).nodes["neuron1"]
    assert isinstance(node, nir.IF)
    np.testing.assert_allclose(node.r, 1 / dt)

    plif = MDNNet(5, 4, 2, neuron="plif", neuron_options={"tau": 4.0, "v_reset": -0.5})
    node = export(plif, dt=dt).nodes["neuron2"]
    k = float(torch.sigmoid(plif.neuron2.a.detach()))
    np.testing.assert_allclose(node.tau, dt / k)
    np.testing.assert_allclose(node.tau, 4.0 * dt, rtol=1e-6)
    np.testing.assert_array_equal(node.r, 1.0)
    np.testing.assert_array_equal(node.v_leak, -0.5)
    np.testing.assert_array_equal(node.v_reset, -0.5)
    assert np.all(node.v_threshold == np.nextafter(np.float32(1.0), np.float32(0.0)))


@needs_nir
@pytest.mark.parametrize("neuron", ["lif-tau", "lif-identity"])
def test_threshold_and_reset_semantics_on_exact_values(neuron):
    """Inputs that put the membrane exactly on the threshold: PLIF/LIF fire (H >= V_th) and NIR's strict
    v > v_threshold with the threshold one float step below agrees; decay-LIF does not fire at V = V_th.
    The reset flag (the library's V_t stays above threshold, NIR resets at once) gives the same spikes."""
    model = MDNNet(1, 1, 1, neuron=neuron).eval()
    with torch.no_grad():
        model.fc1.weight.fill_(1.0)
        model.fc1.bias.zero_()
        model.fc2.weight.fill_(1.0)
        model.fc2.bias.zero_()
    # lif-tau (k = 1/2): X = 2 gives H = 1 = V_th; decay-LIF (lambda = 0.2): I = 0.5 gives V = 0.5 = V_th
    hit = 2.0 if neuron == "lif-tau" else 0.5
    x = torch.tensor([hit, hit, 0.0, hit, 1.0, 1.0, 1.0, hit]).reshape(8, 1, 1)
    net = import_(export(model), native=False)
    with torch.no_grad():
        ref, got = model(x), net(x)
    assert torch.equal(ref.taps[0], got.taps[0]) and torch.equal(ref.spikes, got.spikes)
    assert ref.taps[0][0].item() == (1.0 if neuron == "lif-tau" else 0.0)


@needs_nir
def test_nirlif_follows_the_euler_equations():
    """A foreign LIF node (v_leak != 0, R != 1) runs as v_t = (1 - dt/tau) v + (dt/tau)(v_leak + R I),
    fire on v > v_threshold, reset to v_reset."""
    import nir

    tau, r, v_leak, v_th, v_reset, dt = 4.0, 2.0, 0.1, 1.0, -0.2, 1.0
    n = 3
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([n])}),
            "lif": nir.LIF(tau=np.full(n, tau), r=np.full(n, r), v_leak=np.full(n, v_leak),
                           v_threshold=np.full(n, v_th), v_reset=np.full(n, v_reset)),
            "output": nir.Output(output_type={"output": np.array([n])}),
        },
        edges=[("input", "lif"), ("lif", "output")],
    )
    net = import_(graph, dt=dt, dtype=torch.float64)
    x = torch.rand(20, 2, n, dtype=torch.float64, generator=torch.Generator().manual_seed(8)) * 3
    expected, v = [], torch.full((2, n), v_reset, dtype=torch.float64)
    for x_t in x:
        v = (1 - dt / tau) * v + dt / tau * (v_leak + r * x_t)
        s = (v > v_th).double()
        v = torch.where(s.bool(), torch.full_like(v, v_reset), v)
        expected.append(s)
    with torch.no_grad():
        got = net(x).spikes
    assert torch.equal(got, torch.stack(expected)) and got.sum() > 0


@needs_nir
@pytest.mark.parametrize(
    "build, words",
    [
        (lambda: MDNNet(6, 5, 2, neuron="2nd-fs"), ["2nd-order", "no NIR primitive"]),
        (lambda: MDNNet(6, 5, 2, neuron="mdn"), ["2nd-order", "no NIR primitive"]),
        (lambda: NRRNet(6, 5, 2), ["NRR", "no NIR primitive", "adaptive threshold"]),
        (lambda: MDNNet(6, 5, 2, neuron="lif"), ["sigmoid", "lif-identity"]),
    ],
)
def test_export_refuses_what_nir_cannot_express(build, words):
    with pytest.raises(NIRExportError) as info:
        export(build())
    for word in words:
        assert word in str(info.value)


@needs_nir
def test_import_needs_a_time_step_and_a_feed_forward_graph():
    import nir

    n = 2
    lif = nir.LIF(tau=np.full(n, 2.0), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n))
    nodes = {"input": nir.Input(input_type={"input": np.array([n])}), "lif": lif,
             "output": nir.Output(output_type={"output": np.array([n])})}
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "lif"), ("lif", "output")])
    with pytest.raises(NIRImportError, match="dt="):
        import_(graph)
    with pytest.raises(NIRImportError, match="below the time step"):
        import_(graph, dt=3.0)
    rec = nir.Linear(weight=np.eye(n))
    cyclic = nir.NIRGraph(nodes={**nodes, "rec": rec},
                          edges=[("input", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")], type_check=False)
    with pytest.raises(NIRImportError, match="cycle"):
        import_(cyclic, dt=1.0)
    with pytest.raises(ValueError, match="dt"):
        export(MDNNet(3, 2, 2, neuron="lif-identity"), dt=0.0)


def test_missing_nir_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "nir", None)  # import nir now raises ImportError
    with pytest.raises(NIRUnavailableError, match=r"pip install 'spikedyn\[nir\]'"):
        require_nir()
    with pytest.raises(ValueError, match="nir"):  # also a ValueError, which the command line reports
        export(MDNNet(3, 2, 2, neuron="lif-identity"))


@needs_nir
def test_snntorch_nir_importer_gives_the_same_spike_counts():
    """Cross-check with an independent reader: snnTorch's NIR importer (it assumes dt = 1e-4, so the graph
    is exported for that step) runs the brp conv net one step and one sample at a time (NIR's Flatten
    counts dimensions without the batch axis, which snnTorch maps onto torch's Flatten as they are)."""
    pytest.importorskip("snntorch", reason="snnTorch is an optional test dependency (pip install snntorch)")
    pytest.importorskip("nirtorch", reason="snnTorch's NIR importer needs nirtorch (pip install nirtorch)")
    import snntorch.utils
    from snntorch.import_nir import import_from_nir

    torch.manual_seed(0)
    model = boost(BRPNet("CONV_4_3_1_1_FC_16_FC_3", input_shape=(1, 8, 8)), 3.0)
    x = torch.rand(12, 5, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with contextlib.redirect_stdout(io.StringIO()):  # the importer prints progress
        net = import_from_nir(export(model, dt=1e-4))
    counts = torch.zeros(5, 3)
    with torch.no_grad():
        for b in range(x.shape[1]):
            snntorch.utils.reset(net)
            state = None
            for x_t in x[:, b]:
                out, state = net(x_t) if state is None else net(x_t, state)
                counts[b] += out.reshape(3)
        ref = model(x).spikes.sum(0)
    assert ref.sum() > 0
    # the same dynamics up to float rounding (snnTorch's beta = 1 - dt/tau in float64): allow 1 % of the spikes
    assert (counts - ref).abs().sum() <= max(1.0, 0.01 * float(ref.sum()))


@needs_nir
def test_cli_export_writes_a_readable_graph(tmp_path, capsys):
    import nir

    run = tmp_path / "run"
    assert main(["train", "--model", "brp", "--model-option", "topology=CONV_4_3_1_1_FC_10", "--steps", "4",
                 "--epochs", "1", "--out", str(run), "--quiet"]) == 0
    out = tmp_path / "exported" / "net.nir"
    capsys.readouterr()
    assert main(["export", str(run), "--format", "nir", "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    from spikedyn.train import load_checkpoint

    model, _, _ = load_checkpoint(run)
    model.eval()
    net = import_(nir.read(out))
    x = torch.rand(4, 3, 64, generator=torch.Generator().manual_seed(9))
    assert_same_run(model, net, x)
    # the default output file, and a clear error for a network NIR cannot express
    assert main(["export", str(run)]) == 0 and (run / "model.nir").exists()
    mdn = tmp_path / "mdn"
    assert main(["train", "--epochs", "1", "--hidden", "8", "--steps", "2", "--out", str(mdn), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["export", str(mdn), "--format", "nir"]) == 2
    err = capsys.readouterr().err
    assert "2nd-order" in err and "no NIR primitive" in err
