"""Mixed precision (--precision bf16): bfloat16 synaptic products, float32 neurons and parameters."""

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from spikedyn.data import SpikeDataset
from spikedyn.neurons import make_neuron
import spikedyn.precision as precision_module
from spikedyn.precision import autocast, check_precision, cpu_has_bf16_units, warn_if_emulated
from spikedyn.train import TrainConfig, Trainer

from test_train import config, small_digits


def test_neuron_lifts_a_bfloat16_current_to_float32_under_autocast():
    torch.manual_seed(0)
    current = (torch.rand(12, 4, 16) * 0.8).bfloat16()
    for kind in ("lif-identity", "lif", "plif", "2nd-fs"):
        layer = make_neuron(kind, (16,))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            spikes = layer(current)
        expected = layer(current.float())  # the same (already rounded) values, in float32 throughout
        assert spikes.dtype == torch.float32, kind
        assert torch.equal(spikes, expected), kind


def test_outside_autocast_a_bfloat16_layer_keeps_its_dtype():
    layer = make_neuron("lif-identity", (8,))
    spikes = layer(torch.rand(5, 2, 8).bfloat16())
    assert spikes.dtype == torch.bfloat16


def test_linear_then_neuron_under_autocast_uses_bfloat16_products():
    torch.manual_seed(1)
    fc = nn.Linear(30, 16)
    x = (torch.rand(10, 3, 30) < 0.3).float()
    layer = make_neuron("lif-identity", (16,))
    with autocast("bf16", "cpu"):
        z = fc(x)
        spikes = layer(z)
    # the product of bfloat16-rounded weights with exact 0/1 spikes, accumulated in float32, rounded to bfloat16
    by_hand = (x @ fc.weight.bfloat16().float().T + fc.bias.bfloat16().float()).bfloat16()
    assert z.dtype == torch.bfloat16
    assert torch.allclose(z.float(), by_hand.float(), rtol=1e-2, atol=1e-2)
    assert torch.equal(spikes, layer(z.float()))


def test_trainer_runs_the_forward_under_bf16_autocast_and_keeps_float32_parameters(tmp_path):
    trainer = Trainer(config(tmp_path, precision="bf16", epochs=2, lr=1e-2, steps=8), dataset=small_digits(200, 60))
    seen = []
    first = next(m for m in trainer.model.modules() if isinstance(m, nn.Linear))
    first.register_forward_hook(lambda mod, inp, out: seen.append((mod.training, out.dtype)))
    history = trainer.fit()
    assert {dtype for _, dtype in seen} == {torch.bfloat16}
    assert {training for training, _ in seen} == {True, False}, "training steps and evaluation both under autocast"
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_bf16_learns_as_well_as_fp32_on_digits(tmp_path):
    data = small_digits(300, 100)
    scores = {}
    for precision in ("fp32", "bf16"):
        run = Trainer(config(tmp_path / precision, precision=precision, epochs=5, lr=1e-2, steps=10), dataset=data)
        scores[precision] = run.fit()[-1]["test_accuracy"]
    assert scores["bf16"] > 0.5  # chance is 0.1
    assert abs(scores["bf16"] - scores["fp32"]) <= 0.1, scores


@pytest.mark.parametrize(
    "model, options, shape",
    [
        ("brp", {"topology": "CONV_4_5_1_2_FC_32_FC_10"}, (1, 12, 12)),
        ("plif", {"preset": "mnist"}, (1, 28, 28)),
        ("nrr", {}, (20,)),
    ],
)
def test_every_model_family_trains_a_step_in_bf16(tmp_path, model, options, shape):
    torch.manual_seed(0)
    n = 8
    x = torch.rand(n, *shape)
    y = torch.arange(n) % 10
    data = SpikeDataset("fixture", TensorDataset(x, y), TensorDataset(x, y), 10)
    cfg = TrainConfig(
        dataset="digits", model=model, model_options=options, steps=4, epochs=1, batch_size=n, lr=1e-3,
        out=str(tmp_path / "run"), progress=False, precision="bf16", encoder="direct" if model == "plif" else None,
    )
    trainer = Trainer(cfg, dataset=data)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    history = trainer.fit()
    assert torch.isfinite(torch.tensor(history[-1]["train_loss"]))
    changed = [k for k, v in trainer.model.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert changed, "the step updated the weights"


def test_unknown_precision_is_refused_with_the_choices(tmp_path):
    with pytest.raises(ValueError, match="fp32, bf16"):
        check_precision("fp16")
    with pytest.raises(ValueError, match="--precision"):
        Trainer(config(tmp_path, precision="half"), dataset=small_digits(50, 20))


def test_nrr_fused_and_reference_paths_agree_under_bf16_autocast():
    from spikedyn.neurons.adaptive import RecurrentNRR

    torch.manual_seed(3)
    fast = RecurrentNRR(20, 32)
    reference = RecurrentNRR(20, 32)
    reference.load_state_dict(fast.state_dict())
    reference.fast = False
    x = torch.rand(15, 4, 20) * 2
    with autocast("bf16", "cpu"):
        a, b = fast(x), reference(x)
    assert a.dtype == b.dtype == torch.float32
    assert torch.equal(a, b)
    assert a.sum() > 0, "the layer spikes"


def _cpuinfo_flags() -> set[str] | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


def test_bf16_hardware_probe_agrees_with_the_cpu_flags():
    """PyTorch's probe (what the warning uses) against the kernel's own list of the CPU's features."""
    flags = _cpuinfo_flags()
    if flags is None:
        pytest.skip("no /proc/cpuinfo flags on this system")
    assert cpu_has_bf16_units() == bool(flags & {"avx512_bf16", "amx_bf16", "amx_tile"})


def test_bf16_on_a_cpu_without_bfloat16_units_warns_and_fp32_does_not(tmp_path, monkeypatch):
    monkeypatch.setattr(precision_module, "cpu_has_bf16_units", lambda: False)
    with pytest.warns(UserWarning, match="without bfloat16 units.*--precision fp32"):
        Trainer(config(tmp_path / "bf16", precision="bf16", epochs=1, steps=2), dataset=small_digits(20, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_emulated("fp32", "cpu")
        monkeypatch.setattr(precision_module, "cpu_has_bf16_units", lambda: True)
        warn_if_emulated("bf16", "cpu")
