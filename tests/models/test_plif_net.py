"""PLIF networks: the spec's per-data-set nets, the static encoder, voting, dropout, pooling, neurons,
registry round trip, taps, gradients and a little training (tiny nets, CPU)."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from spikedyn.encoding import Direct
from spikedyn.layers import FCLIF, Conv2dLIF, TimeSharedDropout, spike_taps
from spikedyn.learning import make_rule
from spikedyn.losses import rate_mse, step_mse
from spikedyn.models import PLIF_PRESETS, PLIFNet, build_model, plif_preset, rebuild_model
from spikedyn.neurons import ParametricLIF, SecondOrder

# spec plif.md section 3: per conv layer (in, out, H of its neurons, pools?), FC input, FC widths, dropout p's, T
SPEC_TABLE = {
    "mnist": ([(1, 128, 28, True), (128, 128, 14, True)], 6272, (2048, 100), (0.5, 0.5), 8),
    "fmnist": ([(1, 128, 28, True), (128, 128, 14, True)], 6272, (2048, 100), (0.5, 0.5), 8),
    "cifar10": (
        [(3, 256, 32, False), (256, 256, 32, False), (256, 256, 32, True)]
        + [(256, 256, 16, False), (256, 256, 16, False), (256, 256, 16, True)],
        16384, (2048, 100), (0.5, 0.0), 8,
    ),
    "nmnist": ([(2, 128, 34, True), (128, 128, 17, True)], 8192, (2048, 100), (0.5, 0.5), 10),
    "cifar10dvs": (
        [(2, 128, 128, True)] + [(128, 128, s, True) for s in (64, 32, 16)], 8192, (2048, 100), (0.5, 0.5), 20,
    ),
    "dvsgesture": (
        [(2, 128, 128, True)] + [(128, 128, s, True) for s in (64, 32, 16, 8)], 2048, (512, 110), (0.5, 0.5), 20,
    ),
}
STATIC = {"mnist", "fmnist", "cifar10"}


def tiny(**options) -> PLIFNet:
    """A small PLIF net on 1x8x8 images with 3 classes."""
    args = dict(channels=4, n_conv=1, n_down=2, fc=8, dropout=0.0)
    args.update(options)
    return build_model("plif", (1, 8, 8), 3, **args)


def repeat(x: torch.Tensor, steps: int) -> torch.Tensor:
    return Direct()(x, steps)


def lively(net: PLIFNet, scale: float = 8.0) -> PLIFNet:
    """Scale the FC weights up: tiny nets start with silent FC layers (too few spiking inputs)."""
    with torch.no_grad():
        for layer in net.blocks():
            if isinstance(layer, FCLIF):
                layer.fc.weight.mul_(scale)
    return net


@pytest.mark.parametrize("name", sorted(SPEC_TABLE))
def test_presets_build_the_spec_networks(name):
    convs, fc_in, widths, ps, steps = SPEC_TABLE[name]
    preset = PLIF_PRESETS[name]
    torch.manual_seed(0)
    net = build_model("plif", preset.input_shape, preset.classes, preset=name)
    blocks = net.blocks()
    conv_blocks = [b for b in blocks if isinstance(b, Conv2dLIF)]
    layout = [(b.conv.in_channels, b.conv.out_channels, b.neuron_shape[1], b.pool is not None) for b in conv_blocks]
    assert layout == convs
    for b in conv_blocks:
        assert b.conv.kernel_size == (3, 3) and b.conv.padding == (1, 1) and b.conv.bias is None and b.norm is not None
        assert b.pool is None or isinstance(b.pool, nn.MaxPool2d)
        assert isinstance(b.neuron, ParametricLIF) and b.neuron.learnable and b.neuron.tau == pytest.approx(2.0)
    assert [b.static for b in conv_blocks] == [name in STATIC] + [False] * (len(conv_blocks) - 1)
    fcs = [b for b in blocks if isinstance(b, FCLIF)]
    assert fcs[0].fc.in_features == fc_in and math.prod(conv_blocks[-1].out_shape) == fc_in
    assert tuple(b.fc.out_features for b in fcs) == widths and all(b.fc.bias is None for b in fcs)
    assert widths[-1] == 10 * preset.classes and net.vote.group == 10
    drops = {k: m.p for k, m in net.layers.items() if isinstance(m, TimeSharedDropout)}
    assert drops == {f"drop{i + 1}": p for i, p in enumerate(ps) if p > 0}
    assert preset.steps == steps and preset.batch_size == 16 and preset.lr == 1e-3 and preset.cosine_period == 64
    assert net.config["static"] == (name in STATIC)
    # one tap per hidden spiking layer: every conv layer and the hidden FC
    assert [t.shape for t in spike_taps(net)] == [b.neuron_shape for b in conv_blocks] + [(widths[0],)]
    assert len(net.dynamic_parameters()) == len(conv_blocks) + 2


@pytest.mark.parametrize("name", sorted(PLIF_PRESETS))
def test_every_preset_runs_forward_at_full_size(name):
    preset = PLIF_PRESETS[name]
    shape = preset.input_shape
    torch.manual_seed(0)
    net = build_model("plif", shape, preset.classes, preset=name)
    T, B = 2, 2
    x = torch.rand(B, *shape)
    x = repeat(x, T) if preset.static else torch.randint(0, 3, (T, B, *shape)).float()
    with torch.no_grad():
        out = net(x)
    assert out.rate.shape == (B, preset.classes) and out.spikes.shape == (T, B, preset.classes)
    assert [tuple(t.shape) for t in out.taps] == [(T, B, *tap.shape) for tap in spike_taps(net)]
    assert len(out.taps) == preset.n_conv * preset.n_down + 1
    assert ((out.spikes >= 0) & (out.spikes <= 1)).all()


def test_flat_images_and_preset_aliases():
    net = build_model("plif", (784,), 10, preset="MNIST", channels=2, fc=8)
    assert net.input_shape == (1, 28, 28)
    assert net(repeat(torch.rand(2, 784), 2)).rate.shape == (2, 10)
    assert plif_preset("nmnist-plif") is PLIF_PRESETS["nmnist"]
    assert plif_preset("dvsgesture-plif").train_options()["dataset"] == "dvsgesture-plif"
    options = PLIF_PRESETS["mnist"].train_options(pool="avg")
    assert options["encoder"] == "direct" and options["data_options"] == {"flatten": False}
    assert options["model_options"] == {"preset": "mnist", "pool": "avg"} and options["schedule"] == "cosine"
    assert PLIF_PRESETS["cifar10dvs"].train_options()["encoder"] is None
    from spikedyn.train import TrainConfig

    config = TrainConfig(**options).resolved()  # the preset's run settings are trainer fields
    assert (config.steps, config.batch_size, config.seed, config.eval_batch_size) == (8, 16, 2020, 128)
    # without a preset: 128 channels, 1 conv per stage, 2 stages, one hidden FC of a quarter of its input
    plain = build_model("plif", (2, 8, 8), 3)
    assert plain.topology == "2x8x8-128c3-mp-128c3-mp-do-fc128-do-fc30-vote10" and not plain.static
    # pooled CIFAR10-DVS frames (2x32x32) keep the preset's structure; the FC input follows the data
    pooled = build_model("plif", (2, 32, 32), 10, preset="cifar10dvs", channels=2)
    assert pooled.layers["fc1"].fc.in_features == 2 * 2 * 2


def test_build_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown PLIF preset 'imagenet'; choose one of mnist"):
        build_model("plif", (1, 8, 8), 3, preset="imagenet")
    with pytest.raises(ValueError, match=r"reads 64 values per step"):
        build_model("plif", (3, 8, 8), 3, input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="pass input_shape"):
        build_model("plif", (3072,), 10, channels=2)
    with pytest.raises(ValueError, match="pooling with kernel 2 does not fit"):
        tiny(n_down=4)
    with pytest.raises(ValueError, match="one p per FC layer"):
        tiny(dropout=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="pool must be one of"):
        tiny(pool="sum")
    with pytest.raises(ValueError, match="tau applies to the plif and lif-tau"):
        tiny(neuron="2nd-fs", tau=4)


# -- the static encoder --------------------------------------------------------------------------------
def test_static_first_conv_and_bn_run_once():
    torch.manual_seed(0)
    net = tiny(static=True)
    calls = []
    net.layers["conv1"].conv.register_forward_hook(lambda m, i, o: calls.append(("conv1", i[0].shape[0])))
    net.layers["conv2"].conv.register_forward_hook(lambda m, i, o: calls.append(("conv2", i[0].shape[0])))
    T, B = 4, 3
    out = net(repeat(torch.rand(B, 1, 8, 8), T))
    assert calls == [("conv1", B), ("conv2", T * B)]  # the encoder once, the next conv at every step
    assert int(net.layers["conv1"].norm.bn.num_batches_tracked) == 1
    assert int(net.layers["conv2"].norm.bn.num_batches_tracked) == T
    assert out.spikes.shape == (T, B, 3)


def test_static_encoder_equals_convolving_every_step():
    torch.manual_seed(0)
    static = tiny(static=True)
    every = tiny(static=False)
    every.load_state_dict(static.state_dict())
    x = repeat(torch.rand(3, 1, 8, 8), 3)
    for mode in (True, False):  # train mode: per-step batch statistics of identical steps; eval: running stats
        static.train(mode)
        every.train(mode)
        a, b = static(x), every(x)
        torch.testing.assert_close(a.spikes, b.spikes)
        for ta, tb in zip(a.taps, b.taps):
            torch.testing.assert_close(ta, tb)
    # a contiguous copy of the repeated image is accepted too
    torch.testing.assert_close(static(x.contiguous()).spikes, static(x).spikes)


def test_static_encoder_rejects_steps_that_differ():
    net = tiny(static=True)
    with pytest.raises(ValueError, match="steps of its input differ.*direct encoder.*static=False"):
        net(torch.rand(3, 2, 1, 8, 8))
    tiny(static=False)(torch.rand(3, 2, 1, 8, 8))  # neuromorphic frames: every step its own input


def test_neuromorphic_nets_convolve_every_step():
    net = build_model("plif", (2, 8, 8), 3, preset="nmnist", channels=2, fc=8)
    assert not net.layers["conv1"].static
    sizes = []
    net.layers["conv1"].conv.register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[0]))
    net(torch.rand(5, 2, 2, 8, 8))
    assert sizes == [10]


# -- read-out, dropout, pooling ---------------------------------------------------------------------------
def test_voting_averages_groups_of_ten_and_rate_is_the_time_mean():
    torch.manual_seed(0)
    net = tiny()
    seen = {}
    net.layers["fc2"].register_forward_hook(lambda m, i, o: seen.update(spikes=o.spikes))
    with torch.no_grad():
        out = lively(net)(repeat(torch.rand(4, 1, 8, 8), 5))
    raw = seen["spikes"]
    assert raw.shape == (5, 4, 30) and raw.sum() > 0
    torch.testing.assert_close(out.spikes, raw.reshape(5, 4, 3, 10).mean(-1))
    torch.testing.assert_close(out.rate, out.spikes.mean(0))
    assert tiny(voting=1).layers["fc2"].fc.out_features == 3
    assert tiny(voting=5).layers["fc2"].fc.out_features == 15


def test_dropout_mask_is_shared_by_all_steps():
    torch.manual_seed(0)
    net = tiny(dropout=0.5)
    seen = {}
    net.layers["drop1"].register_forward_hook(lambda m, i, o: seen.update(x=i[0], y=o))
    net.layers["conv2"].neuron.a.data.fill_(5.0)  # k close to 1: many spikes reach the dropout
    T = 6
    net(repeat(torch.rand(4, 1, 8, 8), T))
    x, y = seen["x"].flatten(2), seen["y"].flatten(2)
    on = x > 0
    assert on.sum() > 50
    ratio = torch.where(on, y / x.clamp_min(1e-12), torch.full_like(y, -1.0))
    for b in range(x.shape[1]):
        for j in range(x.shape[2]):
            values = ratio[:, b, j][on[:, b, j]]
            assert values.numel() == 0 or torch.all(values == values[0])
    assert set(ratio[on].unique().tolist()) == {0.0, 2.0}  # dropped, or kept and scaled by 1/(1-p)
    net.eval()
    net(repeat(torch.rand(4, 1, 8, 8), T))
    torch.testing.assert_close(seen["y"], seen["x"])  # identity in eval mode


@pytest.mark.parametrize("pool, fn", [("max", F.max_pool2d), ("avg", F.avg_pool2d)])
def test_pooling_option(pool, fn):
    torch.manual_seed(0)
    net = tiny(pool=pool)
    kind = nn.MaxPool2d if pool == "max" else nn.AvgPool2d
    pools = [b.pool for b in net.blocks() if isinstance(b, Conv2dLIF)]
    assert len(pools) == 2 and all(isinstance(p, kind) for p in pools)
    assert ("-mp-" if pool == "max" else "-ap-") in net.topology and net.config["pool"] == pool
    seen = {}
    net.layers["conv1"].register_forward_hook(lambda m, i, o: seen.update(out=o.out, spikes=o.spikes))
    net.layers["conv1"].neuron.a.data.fill_(5.0)
    net(repeat(torch.rand(2, 1, 8, 8), 3))
    assert seen["spikes"].sum() > 0
    torch.testing.assert_close(seen["out"], fn(seen["spikes"].flatten(0, 1), 2, 2).unflatten(0, (3, 2)))


# -- neurons ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("neuron, options", [
    ("plif", {}), ("plif", {"tau": 16.0}), ("lif-tau", {}), ("lif-tau", {"tau": 16.0}),
    ("2nd-fs", {}), ("mdn", {}), ("lif-identity", {}),
])
def test_any_neuron_kind_builds_and_runs(neuron, options):
    torch.manual_seed(0)
    net = tiny(neuron=neuron, neuron_options=options, static=True)
    out = net(repeat(torch.rand(2, 1, 8, 8), 3))
    assert out.spikes.shape == (3, 2, 3) and len(out.taps) == 3
    neurons = [b.neuron for b in net.blocks()]
    if neuron in ("plif", "lif-tau"):
        tau = options.get("tau", 2.0)
        assert net.taus() == pytest.approx({"conv1": tau, "conv2": tau, "fc1": tau, "fc2": tau})
        learnable = neuron == "plif"
        assert len(net.dynamic_parameters()) == (4 if learnable else 0)
        assert set(net.learned_dynamics()) == ({"conv1", "conv2", "fc1", "fc2"} if learnable else set())
    elif neuron == "mdn":
        assert all(isinstance(n, SecondOrder) for n in neurons)
        assert set(net.learned_dynamics()) == {"conv1", "conv2", "fc1", "fc2"}
    else:
        assert net.dynamic_parameters() == [] and net.learned_dynamics() == {}


def test_tau_option_and_learned_tau():
    net = tiny(tau=16)
    assert net.config["neuron_options"] == {"tau": 16.0}
    assert all(v == pytest.approx(16.0) for v in net.taus().values())
    a = net.layers["fc1"].neuron.a
    with torch.no_grad():
        a.fill_(0.5)
    assert float(net.learned_dynamics()["fc1"]) == pytest.approx(1 / torch.sigmoid(torch.tensor(0.5)).item())
    assert tiny(neuron="lif-tau", tau=4).taus()["conv1"] == pytest.approx(4.0)


# -- registry, parameters, gradients ----------------------------------------------------------------------
def test_registry_rebuild_round_trips_the_state_dict():
    torch.manual_seed(0)
    # command-line strings for the list options
    net = build_model(
        "plif", (1, 8, 8), 3, channels=3, n_conv=2, fc="8,6", dropout="0.5,0,0.2", input_shape="1,8,8",
        neuron_options='{"tau": 4}', pool="avg", static=True,
    )
    assert net.config["fc"] == [8, 6] and net.config["dropout"] == [0.5, 0.0, 0.2] and net.config["n_conv"] == 2
    json.dumps(net.config)  # plain data, fit for a checkpoint or a config file
    again = rebuild_model("plif", net.config, fast=False)
    again.load_state_dict(net.state_dict())
    assert again.topology == net.topology
    net.eval()
    again.eval()
    x = repeat(torch.rand(2, 1, 8, 8), 3)
    torch.testing.assert_close(again(x).spikes, net(x).spikes)
    assert PLIFNet(**net.config).config == net.config


def test_parameter_groups_split_dynamics_from_weights():
    net = tiny()
    a = [b.neuron.a for b in net.blocks()]
    assert [id(p) for p in net.dynamic_parameters()] == [id(p) for p in a]
    weights = {id(p) for p in net.weight_parameters()}
    assert weights.isdisjoint(id(p) for p in a)
    assert len(weights) + len(a) == len(list(net.parameters()))
    assert id(net.layers["conv1"].norm.bn.weight) in weights


@pytest.mark.parametrize("fast", [True, False])
def test_gradients_reach_every_plif_a_and_the_encoder(fast):
    torch.manual_seed(0)
    net = lively(tiny(fast=fast, static=True, dropout=0.5))
    out = net(repeat(torch.rand(8, 1, 8, 8), 4))
    rate_mse(out.spikes, F.one_hot(torch.arange(8) % 3, 3).float()).backward()
    for p in net.dynamic_parameters():
        assert p.grad is not None and p.grad.abs() > 0
    assert net.layers["conv1"].conv.weight.grad.abs().sum() > 0


def test_reward_propagation_rule_drives_the_net():
    torch.manual_seed(0)
    net = tiny()
    rule = make_rule("brp")
    taps = rule.attach(net)
    assert len(taps) == 3
    out = net(repeat(torch.rand(6, 1, 8, 8), 3))
    result = rule(out, F.one_hot(torch.arange(6) % 3, 3).float(), rate_mse, taps)
    result.total.backward()
    assert net.layers["conv1"].conv.weight.grad is not None
    assert set(result.parts) >= {"readout"} and len(result.parts) == 4


@pytest.mark.parametrize("loss", [rate_mse, step_mse])
def test_a_few_training_steps_reduce_the_loss(loss):
    torch.manual_seed(0)
    net = tiny(static=True, fc=16)  # starts silent: the surrogate gradient has to wake the FC layers up
    x = torch.rand(12, 1, 8, 8)
    y = F.one_hot(torch.arange(12) % 3, 3).float()
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    losses = []
    for _ in range(20):
        value = loss(net(repeat(x, 4)).spikes, y)
        opt.zero_grad()
        value.backward()
        opt.step()
        losses.append(value.item())
    assert sum(losses[-3:]) / 3 < losses[0] - 0.03


def test_trainer_runs_a_plif_net_and_records_tau(tmp_path):
    from spikedyn.data import SpikeDataset
    from spikedyn.train import TrainConfig, Trainer, load_checkpoint

    g = torch.Generator().manual_seed(0)
    x = torch.rand(48, 1, 8, 8, generator=g)
    y = torch.arange(48) % 3
    data = SpikeDataset("tiny", TensorDataset(x[:36], y[:36]), TensorDataset(x[36:], y[36:]), 3, encoder="rate")
    config = TrainConfig(
        dataset="tiny", model="plif", model_options={"channels": 2, "fc": 8, "static": True}, steps=2, epochs=1,
        batch_size=12, encoder="direct", schedule="cosine", out=str(tmp_path / "run"), progress=False,
    )
    trainer = Trainer(config, dataset=data)
    assert trainer.config.neuron == "plif" and isinstance(trainer.model, PLIFNet)
    history = trainer.fit()
    assert len(history) == 1
    tau = torch.load(trainer.theta_history_path, weights_only=False)["theta"]
    assert set(tau) == {"conv1", "conv2", "fc1", "fc2"} and tau["conv1"].shape == (2,)
    model, _, _ = load_checkpoint(trainer.checkpoint_path)
    assert isinstance(model, PLIFNet) and model.config == trainer.model.config
