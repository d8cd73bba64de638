"""Trainer options added for MDN's pipeline: theta history (phase 1), per-batch-slot theta,
metrics owned by the data set, encoders for sequence data, the static view, eval = trainer."""

import json

import pytest
import torch
from torch.utils.data import TensorDataset

from spikedyn.cli import main
from spikedyn.data import SpikeDataset, static_view
from spikedyn.data.nettalk import nettalk_accuracy
from spikedyn.metrics import make_metric
from spikedyn.neurons import SecondOrder
from spikedyn.batching import Batcher, epoch_generator
from spikedyn.train import TrainConfig, Trainer
from test_train import small_digits as first_digits


def small_digits(n_train=120, n_test=40) -> SpikeDataset:
    return first_digits(n_train, n_test)


def config(tmp_path, **kw) -> TrainConfig:
    values = dict(dataset="digits", neuron="mdn", hidden=16, steps=5, epochs=2, batch_size=20, out=str(tmp_path / "run"),
                  progress=False, seed=5)
    values.update(kw)
    return TrainConfig(**values)


def test_theta_history_holds_every_epoch_and_survives_resume(tmp_path):
    data = small_digits()
    trainer = Trainer(config(tmp_path, epochs=3), dataset=data)
    trainer.fit(stop_after=1)
    resumed = Trainer(config(tmp_path, epochs=3), dataset=data)
    resumed.fit(resume=True)
    history = torch.load(tmp_path / "run" / "theta_history.pt", weights_only=False)
    assert history["epochs"] == [0, 1, 2, 3]
    assert history["neuron"] == "mdn" and history["dataset"] == "digits"
    assert history["theta"]["neuron1"].shape == (4, 4, 16)
    assert history["theta"]["neuron2"].shape == (4, 4, 10)
    # epoch 0 is the initial theta (0.02, 0.2, 0.0, 0.08); the last entry is the trained model's theta
    init = torch.tensor([0.02, 0.2, 0.0, 0.08])
    assert torch.allclose(history["theta"]["neuron1"][0], init[:, None].expand(4, 16))
    assert torch.equal(history["theta"]["neuron1"][-1], resumed.model.neuron1.theta.detach())
    assert not torch.equal(history["theta"]["neuron1"][1], history["theta"]["neuron1"][0])


def test_no_theta_history_for_frozen_neurons(tmp_path):
    Trainer(config(tmp_path, neuron="2nd-fs", epochs=1), dataset=small_digits(40, 20)).fit()
    assert not (tmp_path / "run" / "theta_history.pt").exists()


def test_theta_per_batch_slot_has_the_authors_shape_and_wraps_slots():
    layer = SecondOrder(3, theta_slots=4)
    assert layer.theta.shape == (4, 4, 3)
    with torch.no_grad():
        layer.theta[2, 1] = -0.5  # slot 1 gets another reset value theta_c
    z = torch.full((6, 6, 3), 2.0)  # strong drive: every neuron fires at step 1, resets at step 2
    run = layer.run(z, record=True)
    v2 = run.traces["v"][1]  # V_2 = c^2 - U' + I: differs only for samples in slot 1 (batch index 1 and 5)
    differs = ~torch.isclose(v2, v2[0].expand_as(v2)).all(1)
    assert differs.tolist() == [False, True, False, False, False, True]
    # the fast path agrees with the reference path, gradients included
    fast = SecondOrder(3, theta_slots=4)
    fast.load_state_dict(layer.state_dict())
    theta0 = layer.theta.detach().clone()
    theta0[0] += torch.linspace(0, 0.05, 12).reshape(4, 3)  # slots differ in every parameter
    for lay in (layer, fast):
        with torch.no_grad():
            lay.theta.copy_(theta0)
    x = torch.randn(5, 6, 3)
    s_ref, s_fast = layer.run(x).spikes, fast(x)
    assert torch.equal(s_ref, s_fast)
    (s_ref * torch.arange(1.0, 4.0)).sum().backward()
    (s_fast * torch.arange(1.0, 4.0)).sum().backward()
    assert torch.allclose(layer.theta.grad, fast.theta.grad, rtol=1e-5, atol=1e-7)
    assert layer.theta.grad[:, 0].abs().sum() > 0
    with pytest.raises(ValueError, match="theta_slots"):
        SecondOrder(3, theta_slots=0)


def test_trainer_theta_per_batch_slot(tmp_path):
    trainer = Trainer(config(tmp_path, epochs=1, theta_per_batch_slot=True), dataset=small_digits(50, 30))
    assert trainer.model.neuron1.theta.shape == (4, 20, 16)
    trainer.fit()  # 50 samples in batches of 20: the last batch of 10 uses slots 0..9
    history = torch.load(tmp_path / "run" / "theta_history.pt", weights_only=False)
    assert history["theta"]["neuron1"].shape == (2, 4, 20, 16)
    with pytest.raises(ValueError, match="--neuron mdn"):
        Trainer(config(tmp_path / "x", neuron="lif", theta_per_batch_slot=True), dataset=small_digits(50, 30))


def test_eval_reproduces_the_accuracy_the_trainer_printed(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "2", "--hidden", "24", "--steps", "6", "--out", str(out), "--quiet"]) == 0
    printed = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["test_accuracy"]
    capsys.readouterr()
    assert main(["eval", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == printed


def test_sequence_data_with_the_bernoulli_encoder():
    x = torch.rand(8, 5, 3) * 0.5  # [B, T, F] band energies
    ds = SpikeDataset("seq", TensorDataset(x, torch.zeros(8, dtype=torch.long)), TensorDataset(x, torch.zeros(8, dtype=torch.long)),
                      2, kind="sequence", encoder="direct")
    direct = Batcher(ds, TrainConfig(dataset="seq", steps=5).resolved(), torch.device("cpu"))
    assert torch.equal(direct.encode(x, torch.Generator().manual_seed(0)), x.transpose(0, 1))
    rate = Batcher(ds, TrainConfig(dataset="seq", steps=5, encoder="rate").resolved(), torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    spikes = rate.encode(x, g)
    u = torch.rand((1, 5, 8, 3), generator=torch.Generator().manual_seed(0))[0]
    assert torch.equal(spikes, (x.transpose(0, 1) > u).float())  # x_t = 1[p_t > u_t], a fresh draw per step
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}


def test_static_view_flattens_sequences():
    x = torch.rand(4, 3, 2)
    y = torch.arange(4) % 2
    ds = SpikeDataset("seq", TensorDataset(x, y), TensorDataset(x, y), 2, kind="sequence", encoder="direct")
    view = static_view(ds)
    assert view.kind == "static" and view.encoder == "rate" and view.feature_shape == (6,)
    assert torch.equal(view.train.tensors[0][1], x[1].flatten())
    frames = SpikeDataset("f", TensorDataset(x, torch.zeros(4, 3, dtype=torch.long)), TensorDataset(x, torch.zeros(4, 3, dtype=torch.long)),
                          2, kind="sequence", target="frame_class")
    with pytest.raises(ValueError, match="per-frame"):
        static_view(frames)


def test_nettalk_runs_are_scored_with_the_cosine_metric(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(60, 189, generator=g) > 0.9).float()
    y = (torch.rand(60, 26, generator=g) > 0.8).float()
    ds = SpikeDataset("nettalk", TensorDataset(x[:40], y[:40]), TensorDataset(x[40:], y[40:]), 26, encoder="direct",
                      target="multi_hot", metric="nettalk-cosine")
    trainer = Trainer(config(tmp_path, dataset="nettalk", neuron="lif", batch_size=5, epochs=1), dataset=ds)
    record = trainer.fit()[-1]
    assert record["metric"] == "nettalk-cosine"
    rates = trainer.model(Batcher(ds, trainer.config, torch.device("cpu")).encode(x[40:], g)).rate
    assert record["test_accuracy"] == pytest.approx(nettalk_accuracy(rates, y[40:], batch_size=5))


def test_cosine_metric_scores_the_first_sample_of_each_batch_of_five():
    rates = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.01, 0.02], [0.03, 0.04],
                          [0.0, 0.01], [0.0, 0.02], [0.0, 0.03], [0.0, 0.04], [0.0, 0.9]])
    target = torch.tensor([[1.0, 0.0]] * 12)
    metric = make_metric("nettalk-cosine", batch_size=5)
    metric.update(rates[:3], target[:3])  # update order, not update sizes, defines the groups
    metric.update(rates[3:], target[3:])
    # batch 0: cos 1; batch 1 (samples 5-9): largest rate of the batch 0.04 < 0.05 -> 0;
    # batch 2 (sample 10, 11): batch max 0.9, first sample (0, 0.04) scores cos 0
    assert metric.value() == pytest.approx(1.0 / 3)
    rates[6] = torch.tensor([0.03, 0.06])  # now batch 1 reaches 0.05: its first sample scores cos(0.01, 0.02 ; 1, 0)
    metric = make_metric("nettalk-cosine", batch_size=5)
    metric.update(rates, target)
    assert metric.value() == pytest.approx((1.0 + 0.01 / (0.0005 ** 0.5) + 0.0) / 3)
    with pytest.raises(ValueError, match="unknown metric"):
        make_metric("f1")


def test_epoch_generators_differ_by_purpose():
    a = torch.rand(3, generator=epoch_generator(1, 2, 0))
    b = torch.rand(3, generator=epoch_generator(1, 2, 1))
    assert not torch.equal(a, b)


def test_trainer_builds_any_registered_model_and_eval_restores_it(tmp_path, capsys):
    out = tmp_path / "brp"
    args = ["train", "--model", "brp", "--model-option", "topology=CONV_4_3_1_1_FC_16_FC_10", "--data-option",
            "flatten=false", "--rule", "brp", "--epochs", "2", "--steps", "4", "--lr", "0.01", "--out", str(out), "--quiet"]
    assert main(args) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"] == "brp" and saved["neuron"] == "lif-identity" and saved["rule"] == "brp"
    printed = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["test_accuracy"]
    capsys.readouterr()
    assert main(["eval", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == printed
    assert main(args + ["--resume", "--model-option", "topology=CONV_8_3_1_1_FC_16_FC_10"]) == 2
    assert "model_options" in capsys.readouterr().err


def test_model_default_neuron_and_run_directory():
    assert TrainConfig(dataset="digits").resolved().neuron == "2nd-fs"
    cfg = TrainConfig(dataset="digits", model="brp", model_options={"topology": "mnist"}, rule="err").resolved()
    assert cfg.neuron == "lif-identity" and cfg.out.endswith("digits-brp-lif-identity-err-seed3154")
    with pytest.raises(ValueError, match="unknown model"):
        TrainConfig(dataset="digits", model="resnet").resolved()


@pytest.mark.parametrize("dataset, stored", [("nmnist-plif", 10), ("cifar10dvs", 20), ("dvsgesture-plif", 20), ("dvsgesture", 100)])
def test_default_steps_never_exceed_the_frames_an_event_set_stores(dataset, stored):
    """`--dataset nmnist-plif` without --steps must not ask for more steps than the 10 stored frames."""
    from spikedyn.train import TrainConfig

    assert TrainConfig(dataset=dataset).resolved().steps <= stored
