"""The NRR-SNN network (model ``nrr``, spec nrr.md sections 2-5): shallow and deep nets, per-step
read-out training on class and frame-labelled data, padding masked, reward propagation and
BP-RSNN through the trainer, the masks kept exactly zero."""

import json

import pytest
import torch
from torch.utils.data import TensorDataset

from spikedyn.cli import main
from spikedyn.data import SpikeDataset
from spikedyn.learning import make_rule
from spikedyn.losses import step_mse
from spikedyn.models import NRR_SETTINGS, NRRNet, build_model, rebuild_model
from spikedyn.readout import PAD_LABEL, readout_of
from spikedyn.batching import Batcher, epoch_generator
from spikedyn.train import TrainConfig, Trainer, evaluate


# -- data --------------------------------------------------------------------------------------------
def frame_data(n=24, frames=12, features=6, classes=4, seed=0, garbage=False, extra=0):
    """Frame-labelled sequences: segments of a class pattern plus noise, ``lengths`` in [5, frames].

    Padding (frames >= length) is zeros with label 0, as ``timit-phones``; ``garbage=True`` fills
    it with noise and random labels instead, ``extra`` pads every sample with that many more frames.
    """
    g = torch.Generator().manual_seed(seed)
    patterns = torch.rand(classes, features, generator=g) * 2
    total = frames + extra
    lengths = torch.randint(5, frames + 1, (n,), generator=g)
    lengths[0] = frames  # one full-length sample per split
    lengths[n // 2] = frames
    y = torch.zeros(n, total, dtype=torch.long)
    x = torch.zeros(n, total, features)
    for i in range(n):
        cuts = sorted(torch.randint(1, frames, (2,), generator=g).tolist())
        labels = torch.randint(0, classes, (3,), generator=g)
        seg = torch.cat([labels[0].repeat(cuts[0]), labels[1].repeat(cuts[1] - cuts[0]),
                         labels[2].repeat(frames - cuts[1])])
        y[i, :frames] = seg
        x[i, :frames] = patterns[seg] + 0.2 * torch.rand(frames, features, generator=g)
    noise = torch.Generator().manual_seed(99)
    for i in range(n):
        pad = slice(int(lengths[i]), total)
        if garbage:
            x[i, pad] = torch.randn(total - int(lengths[i]), features, generator=noise) * 3
            y[i, pad] = torch.randint(0, classes, (total - int(lengths[i]),), generator=noise)
        else:
            x[i, pad] = 0.0
            y[i, pad] = 0
    half = n // 2
    split = lambda a, b: TensorDataset(x[a:b], y[a:b], lengths[a:b])  # noqa: E731
    return SpikeDataset("frames", split(0, half), split(half, n), classes, kind="sequence", encoder="direct",
                        target="frame_class")


def class_sequences(n=40, steps=8, features=6, classes=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    patterns = torch.rand(classes, features, generator=g) * 2
    x = patterns[labels].unsqueeze(1) + 0.3 * torch.rand(n, steps, features, generator=g)
    half = n // 2
    return SpikeDataset("seq", TensorDataset(x[:half], labels[:half]), TensorDataset(x[half:], labels[half:]),
                        classes, kind="sequence", encoder="direct")


def config(tmp_path, **kw) -> TrainConfig:
    values = dict(dataset="frames", model="nrr", model_options={"hidden": 16}, steps=12, epochs=1, batch_size=6,
                  lr=1e-2, out=str(tmp_path / "run"), progress=False, seed=3, eval_batch_size=5)
    values.update(kw)
    return TrainConfig(**values)


# -- the network -------------------------------------------------------------------------------------
def test_shallow_net_shapes_registry_and_rebuild():
    net = build_model("nrr", (39,), 10, hidden=20, mask_seed=1)
    assert isinstance(net, NRRNet) and net.topology == "RFC20-FC10"
    assert readout_of(net).kind == "step"
    out = net(torch.rand(7, 3, 39))
    assert out.spikes.shape == (7, 3, 10) and out.rate.shape == (3, 10)
    assert [t.shape for t in out.taps] == [(7, 3, 20)] and set(out.taps[0].unique().tolist()) <= {0.0, 1.0, 2.0}
    again = rebuild_model("nrr", net.config)
    again.load_state_dict(net.state_dict())
    torch.testing.assert_close(again(torch.ones(3, 2, 39)).spikes, net(torch.ones(3, 2, 39)).spikes)
    assert build_model("nrr", (5,), 3, hidden=8).rfc[0].hidden == 8
    assert build_model("nrr", (5,), 3).rfc[0].hidden == 500  # the paper's RFC500


def test_options_reach_the_cells_and_the_ablations():
    net = build_model("nrr", (6,), 3, hidden=8, layers=2, sparseness=0.0, gamma=0.5, adaptive=False)
    assert len(net.rfc) == 2 and len(net.taps) == 2
    assert net.rfc[1].inputs == 8 and torch.equal(net.rfc[0].mask, 1.0 - torch.eye(8))
    assert net.rfc[0].params.gamma == 0.0
    assert net.topology == "RFC8-RFC8-FC3 (sparseness 0, no adaptive threshold)"
    ff = build_model("nrr", (6,), 3, hidden=8, recurrent=False)
    assert ff.rfc[0].fc_r is None and ff.topology.startswith("FC8-FC3")
    assert len(ff(torch.rand(4, 2, 6)).taps) == 1


def test_deep_net_reads_the_spectrogram_as_a_static_image():
    net = build_model("nrr", (81,), 10, hidden=12, deep=True, conv_channels=4)
    assert net.input_shape == (1, 9, 9) and net.input_scale == 10.0 and net.topology == "CONV4-RFC12-FC10"
    x = torch.rand(1, 2, 81).expand(5, 2, 81)  # the direct encoder's repeated view
    out = net(x)
    assert out.spikes.shape == (5, 2, 10)
    assert [t.shape for t in out.taps] == [(5, 2, 4, 9, 9), (5, 2, 12)]
    assert net.rfc[0].inputs == 4 * 4 * 4  # AvgPool2: 9 -> 4
    rebuilt = rebuild_model("nrr", net.config)
    assert rebuilt.input_shape == (1, 9, 9) and rebuilt.deep


@pytest.mark.parametrize(
    "options, match",
    [
        ({"neuron": "lif"}, "neuron 'nrr'"),
        ({"layers": 0}, "layers must be a positive integer"),
        ({"hidden": 0}, "hidden must be a positive integer"),
        ({"sparseness": 1.5}, r"sparseness must lie in \[0, 1\]"),
        ({"input_shape": "1,3,3"}, "deep net"),
        ({"deep": True}, "--input-view static --encoder direct"),
        ({"deep": True, "input_shape": "1,2,2"}, "holds 4 values"),
        ({"input_scale": -1}, "input_scale must be a positive number"),
        ({"colour": "red"}, "has no option"),
    ],
)
def test_bad_options_are_clear_errors(options, match):
    with pytest.raises(ValueError, match=match):
        build_model("nrr", (39,), 10, **{"hidden": 4, **options})


# -- learning rules on the net -------------------------------------------------------------------------
def test_brp_sends_no_gradient_from_the_readout_into_the_hidden_layers():
    torch.manual_seed(0)
    net = build_model("nrr", (81,), 3, hidden=10, deep=True, conv_channels=2, layers=2)
    taps = make_rule("brp").attach(net)
    assert len(taps) == 3 and all(t.local for t in taps) and all(layer.detach_prev for layer in net.rfc)
    x = torch.rand(1, 4, 81).expand(6, 4, 81)
    y = torch.nn.functional.one_hot(torch.arange(4) % 3, 3).float().expand(6, 4, 3)
    step_mse(net(x).spikes, y).backward()
    assert net.out.bias.grad.abs().sum() > 0  # the read-out gets the exact loss gradient
    hidden = [p for name, p in net.named_parameters() if not name.startswith("out.")]
    assert hidden and all(p.grad is None for p in hidden)
    net.zero_grad()
    make_rule("bptt").attach(net)
    step_mse(net(x).spikes, y).backward()
    assert net.rfc[0].fc_f.weight.grad is not None and net.rfc[0].fc_f.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("rule", ["brp", "err", "sign"])
def test_per_step_teaching_signal_is_the_frame_target_through_one_b_and_zero_on_padding(rule):
    torch.manual_seed(0)
    net = build_model("nrr", (6,), 3, hidden=10).double()
    r = make_rule(rule)
    taps = r.attach(net)
    x = torch.rand(5, 2, 6, dtype=torch.float64) * 2
    labels = torch.tensor([[0, 1, 1, 2, PAD_LABEL], [2, 2, 0, PAD_LABEL, PAD_LABEL]])
    dataset = SpikeDataset("f", None, None, 3, kind="sequence", target="frame_class")
    target = readout_of(net).target(labels, dataset, torch.float64, 5)
    assert target.values.shape == (5, 2, 3) and target.mask.t().tolist() == (labels >= 0).tolist()
    assert target.values[4].abs().sum() == 0  # padded frames: all-zero targets
    out = net(x)
    result = r(out, target.values, readout_of(net).loss_fn("step-mse", target), taps, target.mask)
    o, y, m = out.spikes.detach(), target.values, target.mask.unsqueeze(2).double()
    e = {"brp": y, "err": o - y, "sign": torch.sign(o - y)}[rule] * m
    expected = (out.taps[0] * (e @ taps[0].projection)).sum()
    torch.testing.assert_close(result.parts["tap0"], expected.detach())
    torch.testing.assert_close(result.total, step_mse(out.spikes, y, target.mask) + expected)


# -- the trainer on frame-labelled and class data --------------------------------------------------------
@pytest.mark.parametrize("rule", ["bptt", "brp"])
def test_frame_labelled_data_trains_a_step_end_to_end(tmp_path, rule):
    data = frame_data()
    trainer = Trainer(config(tmp_path, rule=rule), dataset=data)
    assert trainer.config.loss == "step-mse"
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    record = trainer.fit()[-1]
    assert record["metric"] == "frame-accuracy"
    for key in ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "test_sample_accuracy",
                "train_sample_accuracy"):
        assert 0.0 <= record[key] < 10.0, key
    if rule == "brp":
        assert record["train_parts"]["tap0"] != 0.0
    changed = [n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])]
    assert "rfc.0.fc_f.weight" in changed and "rfc.0.fc_r.weight" in changed and "out.weight" in changed
    saved = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert saved["test_sample_accuracy"] == record["test_sample_accuracy"]


def test_batches_are_cut_to_the_longest_sequence_and_padding_is_marked(tmp_path):
    data = frame_data()
    cfg = config(tmp_path).resolved()
    batcher = Batcher(data, cfg, torch.device("cpu"))
    lengths = data.test.tensors[2]
    x, y = next(batcher.batches("test", 4, epoch_generator(0, 0), shuffle=False))
    assert x.shape[0] == int(lengths[:4].max()) == y.shape[1]
    assert ((y == PAD_LABEL).sum(1) == x.shape[0] - lengths[:4]).all()


@pytest.mark.parametrize("rule", ["bptt", "brp", "err"])
def test_padded_frames_change_neither_loss_nor_accuracy_nor_gradients(tmp_path, rule):
    clean, padded = frame_data(), frame_data(garbage=True, extra=7)
    assert not torch.equal(clean.train.tensors[0][1], padded.train.tensors[0][1, :12])  # garbage after the length
    torch.manual_seed(0)
    net = build_model("nrr", (6,), 4, hidden=16, mask_seed=0)
    r = make_rule(rule)
    taps = r.attach(net)
    readout = readout_of(net)
    scores, grads = [], []
    for data in (clean, padded):
        cfg = config(tmp_path, rule=rule, steps=data.steps).resolved()  # 12 and 19 stored frames
        batcher = Batcher(data, cfg, torch.device("cpu"))
        scores.append(evaluate(net, batcher, cfg, "train"))
        x, y = next(batcher.batches("train", 12, epoch_generator(0, 0), shuffle=False))
        net.zero_grad()
        out = net(x)
        target = readout.target(y, data, out.rate.dtype, out.spikes.shape[0])
        r(out, target.values, readout.loss_fn("step-mse", target), taps, target.mask).total.backward()
        grads.append({n: p.grad.clone() for n, p in net.named_parameters()})
    assert scores[0].pop("metric") == scores[1].pop("metric") == "frame-accuracy"
    assert scores[0].pop("hidden_active") == scores[1].pop("hidden_active")  # counted on the valid frames only
    assert scores[0] == pytest.approx(scores[1], rel=1e-6, abs=1e-7)
    assert 0 < scores[0]["accuracy"] < 1 and scores[0]["accuracy"] != scores[0]["sample_accuracy"]
    for name in grads[0]:
        assert grads[0][name].abs().sum() > 0, name
        torch.testing.assert_close(grads[1][name], grads[0][name], msg=name)


@pytest.mark.parametrize("rule", ["bptt", "brp"])
def test_masked_recurrent_weights_stay_exactly_zero_through_model_and_optimizer(tmp_path, rule):
    trainer = Trainer(config(tmp_path, rule=rule, epochs=2, model_options={"hidden": 24, "layers": 2}),
                      dataset=frame_data())
    with torch.no_grad():
        for layer in trainer.model.rfc:
            layer.fc_r.weight.mul_(3.0)  # active recurrent channels: large gradients on the kept entries
    before = [layer.fc_r.weight.detach().clone() for layer in trainer.model.rfc]
    trainer.fit()
    for layer, old in zip(trainer.model.rfc, before):
        w, mask = layer.fc_r.weight.detach(), layer.mask
        assert (mask == 0).sum() > 0 and torch.all(w[mask == 0] == 0)
        assert not torch.equal(w[mask == 1], old[mask == 1])


def test_class_data_trains_per_step_and_learns(tmp_path):
    """Class labels become per-step targets (the class at every step); brp learns a separable toy task."""
    data = class_sequences()
    cfg = config(tmp_path, dataset="seq", rule="brp", steps=8, epochs=15, batch_size=10, lr=2e-2,
                 model_options={"hidden": 32, "mask_seed": 0})
    record = Trainer(cfg, dataset=data).fit()[-1]
    assert record["test_accuracy"] > 0.6 and record["test_sample_accuracy"] > 0.6  # chance 1/3


def test_readout_decides_loss_and_refuses_what_does_not_fit(tmp_path):
    assert TrainConfig(model="nrr").resolved().loss == "step-mse"
    assert TrainConfig().resolved().loss == "rate-mse"
    with pytest.raises(ValueError, match="step-mse"):
        Trainer(config(tmp_path, loss="rate-mse"), dataset=frame_data())
    with pytest.raises(ValueError, match="per-step read-out"):
        Trainer(config(tmp_path, model="mdn", model_options={}, neuron="lif", hidden=8), dataset=frame_data())


def test_settings_follow_the_spec():
    fsdd = NRR_SETTINGS["fsdd"].train_options()
    assert fsdd["data_options"] == {"frames": 39} and fsdd["steps"] == 39 and fsdd["lr"] == 1e-4
    assert (fsdd["lr_step"], fsdd["lr_gamma"], fsdd["batch_size"]) == (20, 0.8, 50)
    assert NRR_SETTINGS["timit-phones"].lr == 1e-3
    deep = NRR_SETTINGS["fsdd-deep"].train_options()
    assert deep["input_view"] == "static" and deep["encoder"] == "direct"


# -- the command line on the real TIMIT sample ----------------------------------------------------------
def test_cli_trains_nrr_on_timit_phones(data_root, tmp_path, capsys):
    if not ((data_root / "timit_sample").is_dir() or (data_root / "TIMIT").is_dir()):
        pytest.skip(f"no TIMIT (or its NLTK sample) under {data_root}")
    out = tmp_path / "run"
    rc = main(["train", "--dataset", "timit-phones", "--data-root", str(data_root), "--model", "nrr",
               "--model-option", "hidden=32", "--rule", "brp", "--epochs", "1", "--batch-size", "40",
               "--out", str(out), "--quiet"])
    assert rc == 0
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["metric"] == "frame-accuracy" and 0 <= record["test_accuracy"] <= 1
    assert 0 <= record["test_sample_accuracy"] <= 1
    assert "nrr network RFC32-FC39" in capsys.readouterr().out
    assert main(["eval", str(out), "--data-root", str(data_root)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == record["test_accuracy"] and result["metric"] == "frame-accuracy"
