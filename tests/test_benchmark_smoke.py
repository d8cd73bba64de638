"""The benchmark scripts still run (spikedyn's fast paths and the floor, tiny sizes, one round) and write
their results pair; the speed benchmarks' fast paths agree with their reference paths on their own input."""

import importlib.util
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
TINY = ["--rounds", "1", "--warmup", "0", "--threads", "1"]


def load(script: str):
    """The benchmark script ``benchmarks/<script>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(script, BENCHMARKS / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_main(module, argv: list[str]) -> dict:
    """``module.main(argv)``, then torch's thread count as before (the scripts set it process-wide)."""
    threads = torch.get_num_threads()
    try:
        return module.main(argv)
    finally:
        torch.set_num_threads(threads)


def check_mlp(report):
    fid = report["fidelity"]["spikedyn"]
    assert fid["output_shape"] == [3, 4, 10]
    assert fid["output_spikes_equal_to_spikedyn"] == 1.0


def check_recurrent(report):
    for name in ("spikedyn-lif", "spikedyn-nrr", "spikedyn-nrr-brp"):
        sanity = report["sanity"][name]
        assert sanity["output_shape"] == [5, 3, 10]
        assert sanity["spikes_equal_to_reference"] == 1.0 and sanity["grad_max_rel_diff_vs_reference"] < 1e-5
        assert sanity["masked_weights_zero"]


def check_conv(report):
    sanity = report["sanity"]["spikedyn-plif"]
    assert sanity["output_shape"] == [2, 2, 10] and len(sanity["rates"]) == 4
    assert sanity["output_equal_to_reference"] == 1.0 and sanity["grad_max_rel_diff_vs_reference"] < 1e-4


SPEED_CASES = [
    pytest.param("speed_mlp", ["--batch", "4", "--steps", "3"], "spikedyn,floor", "| spikedyn |", "| spikedyn |",
                 check_mlp, id="mlp"),
    pytest.param("speed_recurrent", ["--batch", "3", "--steps", "5", "--allocator", "default"],
                 "spikedyn-lif,spikedyn-nrr,spikedyn-nrr-brp,floor", "| spikedyn-nrr |", "| floor |",
                 check_recurrent, id="recurrent"),
    pytest.param("speed_conv", ["--batch", "2", "--steps", "2", "--allocator", "default"], "spikedyn-plif,floor",
                 "| spikedyn-plif |", "| floor |", check_conv, id="conv"),
]


@pytest.mark.parametrize("script, options, variants, md_row, printed_row, check", SPEED_CASES)
def test_speed_benchmark_smoke(script, options, variants, md_row, printed_row, check, capsys, tmp_path):
    report = run_main(load(script), [*TINY, *options, "--variants", variants, "--out", str(tmp_path / "speed")])
    for mode, results in report["results"].items():  # speed_mlp: train and inference; the others: train
        assert set(results) == set(variants.split(",")), mode
        assert results["floor"]["x_floor"] == 1.0
        assert all(s["n"] == 1 for s in results.values())
    check(report)
    assert (tmp_path / "speed.json").exists() and md_row in (tmp_path / "speed.md").read_text()
    assert printed_row in capsys.readouterr().out


def test_brp_cost_benchmark_smoke(capsys, tmp_path):
    module = load("brp_cost")
    report = run_main(module, [*TINY, "--nets", "fsdd-1d", "--batch", "3", "--steps", "2", "--allocator", "default",
                               "--no-memory", "--out", str(tmp_path / "cost")])
    net = report["nets"]["fsdd-1d"]
    assert set(net["time"]) == {"bptt", "brp", "inference"} and net["time"]["bptt"]["x_bptt"] == 1.0
    flops = net["flops"]
    # same forward; brp adds only the small teaching-signal products y* B_l
    assert flops["brp"]["forward_gflop"] == pytest.approx(flops["bptt"]["forward_gflop"], rel=0.05)
    # detached layer inputs: no input-gradient product, so brp's backward has about half the matmul FLOPs
    assert flops["brp"]["backward_gflop"] < 0.6 * flops["bptt"]["backward_gflop"]
    assert flops["inference"]["backward_gflop"] == 0.0
    assert all(v > 0 for v in net["grad_norms"]["brp"].values())
    assert (tmp_path / "cost.json").exists() and "| brp |" in (tmp_path / "cost.md").read_text()
    assert "Is BRP cheaper here?" in capsys.readouterr().out
    # the CPU peak-memory probe runs in a fresh process and reports a number
    args = module.parse_args(["--batch", "3", "--steps", "2", "--threads", "1"])
    probe = module.cpu_memory("fsdd-1d", "brp", args)
    assert probe["peak_step_mib"] is None or probe["peak_step_mib"] >= 0


def test_gpu_benchmark_smoke_on_cpu(capsys):
    """The GPU benchmark's code path (workload nets, shared weights, interleaved steps) runs on the CPU;
    every spikedyn variant computes the same spikes as decay-LIF where it is the same neuron."""
    module = load("speed_gpu")
    report = module.main(["--device", "cpu", "--quick", "--workloads", "mlp-small",
                          "--variants", "floor,spikedyn-lif,spikedyn-lif-torch,spikedyn-mdn"])
    results = report["workloads"]["mlp-small"]["results"]
    assert set(results) == {"floor", "spikedyn-lif", "spikedyn-lif-torch", "spikedyn-mdn"}
    assert results["floor"]["x_floor"] == 1.0 and all(s["n"] == 3 for s in results.values())
    # the same weights and input: both back ends of decay-LIF fire alike, and the neurons fire at all
    assert results["spikedyn-lif"]["output_rate"] == results["spikedyn-lif-torch"]["output_rate"] > 0
    out = capsys.readouterr().out
    assert "wall-clock timing (not a GPU: a smoke run)" in out and "| spikedyn-mdn |" in out
    with pytest.raises(SystemExit, match="unknown workload"):
        module.main(["--device", "cpu", "--quick", "--workloads", "mlp-huge"])
    # the recurrent workload: NRR on both back ends (the same network and weights), variants of other workloads skipped
    report = module.main(["--device", "cpu", "--quick", "--rounds", "1", "--workloads", "recurrent",
                          "--variants", "spikedyn-nrr,spikedyn-nrr-torch,spikedyn-plif"])
    results = report["workloads"]["recurrent"]["results"]
    assert set(results) == {"spikedyn-nrr", "spikedyn-nrr-torch"}
    assert results["spikedyn-nrr"]["output_rate"] == results["spikedyn-nrr-torch"]["output_rate"]
    assert "recurrent/spikedyn-plif skipped" in capsys.readouterr().out


def test_cell_timing_and_graph_probe_run_a_reproduce_cell(data_root, monkeypatch, capsys):
    """cell_epoch_time.py times a cell built as `spikedyn reproduce` builds it and prints the epochs that fit a
    budget; gpu_graph_probe.py runs the same cell's step (eager only without CUDA) and reports that."""
    if not (data_root / "fsdd").is_dir():
        pytest.skip(f"no fsdd/ under {data_root}")
    cell = ["brp-table3", "--task", "fsdd-1d-brp", "--neuron", "lif-identity", "--data-root", str(data_root),
            "--device", "cpu"]
    monkeypatch.setattr("sys.argv", ["cell_epoch_time.py", *cell, "--warmup", "1", "--batches", "2", "--budget", "1e9"])
    assert load("cell_epoch_time").main() == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "ms a batch (batch 50" in lines[-2] and int(lines[-1]) > 1000
    monkeypatch.setattr("sys.argv", ["gpu_graph_probe.py", *cell, "--batches", "1"])
    assert load("gpu_graph_probe").main() == 0
    out = capsys.readouterr().out
    assert "eager" in out and ("graphed" in out or "eager only" in out)


def test_brp_subspace_helpers(tmp_path):
    """brp_subspace.py rebuilds the trainer's initial hidden weights from the run's seed, and its per-class
    code measure gives the closed-form values: eta^2 = 1 for counts fixed by the class, 0 for counts that are
    the same in every class; silent and at-maximum shares as counted by hand."""
    from tiny_runs import tiny_config, tiny_dataset

    from spikedyn.train import Trainer

    module = load("brp_subspace")
    dataset = tiny_dataset()
    trainer = Trainer(tiny_config(tmp_path / "run", rule="brp"), dataset)
    rebuilt = module.initial_hidden_weights(trainer.config, dataset)
    assert torch.equal(rebuilt, trainer.model.fc1.weight.detach())

    labels = torch.tensor([0, 0, 1, 1])
    by_class = torch.tensor([[0.0, 5.0], [0.0, 5.0], [3.0, 5.0], [3.0, 5.0]])  # neuron 0: class code; 1: constant
    code = module.class_code_share(by_class, labels, 2)
    assert code["active_neurons"] == 1 and code["eta2_median"] == pytest.approx(1.0)
    mixed = torch.tensor([[0.0], [2.0], [0.0], [2.0]])  # the same two counts in each class
    assert module.class_code_share(mixed, labels, 2)["eta2_median"] == pytest.approx(0.0)
    # neuron 0 in by_class: two silent samples of four; at its maximum (3) in two of four
    assert code["silent_share"] == pytest.approx(2 / 8) and code["at_max_share"] == pytest.approx(0.5)
    counts = module.hidden_counts(trainer.model, trainer.config, "rate", dataset.test.tensors[0][:6], seed=0, batch=4)
    assert counts.shape == (6, trainer.model.fc1.out_features)
    assert bool((counts >= 0).all()) and bool((counts <= trainer.config.steps).all())
    # membrane statistics at T = 1 under the direct code: V_1 = sigmoid(z) - U_0 with U_0 = 0.08 (mdn.md)
    from dataclasses import replace

    x = dataset.test.tensors[0][:6].flatten(1)
    stats = module.membrane_stats(trainer.model, replace(trainer.config, steps=1), "direct", x, seed=0, batch=4)
    z = trainer.model.fc1(x.float()).detach()
    v = torch.sigmoid(z) - 0.08
    for w in module.WINDOWS:
        assert stats["window_open"][str(w)] == pytest.approx(float(((v - 0.5).abs() < w).float().mean()))
    assert stats["input_saturated"] == pytest.approx(float((z.abs() > 4).float().mean()))
    slope = torch.sigmoid(z) * (1 - torch.sigmoid(z))
    assert stats["mean_sigmoid_slope"] == pytest.approx(float(slope.mean()), rel=1e-5)


def test_bf16_cpu_benchmark_smoke(tmp_path, capsys):
    """bf16_cpu.py times both products in both precisions and records what the trainer's warning checks."""
    from spikedyn.precision import cpu_has_bf16_units

    report = run_main(load("bf16_cpu"), ["--rounds", "1", "--warmup", "0", "--threads", "1", "--out", str(tmp_path / "b")])
    assert set(report["results"]) == {"conv-fp32", "conv-bf16", "fc-fp32", "fc-bf16"}
    assert all(v > 0 for v in report["bf16_over_fp32"].values())
    assert report["bf16_units"] == cpu_has_bf16_units()
    assert (tmp_path / "b.md").read_text().count("| Conv2d") == 1


def test_plif_cpu_step_benchmark_smoke(data_root, tmp_path, capsys):
    """plif_cpu_step.py times the PLIF MNIST cell under the three allocator settings (one process each) and with
    both max pools, and writes its results pair; the `keep` process takes far fewer page faults than the default."""
    if not (data_root / "MNIST").is_dir():
        pytest.skip(f"no MNIST/ under {data_root}")
    out = tmp_path / "plif_cpu_step"
    report = run_main(load("plif_cpu_step"), ["--data-root", str(data_root), "--threads", "1", "--warmup", "2",
                                              "--batches", "1", "--rounds", "1", "--out", str(out)])
    runs = report["allocator"]
    assert set(runs) == {"default", "threshold", "keep"}
    assert runs["keep"]["faults_per_batch"] < runs["default"]["faults_per_batch"]
    assert set(runs["keep"]["pool_ab"]) == {"compiled", "torch"}
    assert out.with_suffix(".md").read_text().count("| compiled-") == 3


def test_readout_saturation_reads_a_silent_read_out(tmp_path):
    """readout_saturation.py on an MDN net whose read-out weights are 0 and biases c: the current is c at every
    neuron-step, so its mean and maximum are c and the slope is sigmoid(c) (1 - sigmoid(c)); at c = -8 no output
    spike and a read-out gradient over 100 times below the one at c = 0 (sigmoid'(-8) / sigmoid'(0) = 1.3e-3)."""
    from tiny_runs import tiny_config, tiny_dataset

    from spikedyn.train import Trainer

    module = load("readout_saturation")
    dataset = tiny_dataset()
    trainer = Trainer(tiny_config(tmp_path / "run", neuron="lif"), dataset)
    model, config = trainer.model, trainer.config
    x, y = next(iter(trainer.batcher.batches("test", 20, torch.Generator().manual_seed(0), shuffle=False)))
    grads = {}
    for c in (-8.0, 0.0):
        with torch.no_grad():
            model.fc2.weight.zero_()
            model.fc2.bias.fill_(c)
        stats = module.readout_stats(model, x)
        assert stats["current_mean"] == pytest.approx(c) and stats["current_max"] == pytest.approx(c)
        s = torch.sigmoid(torch.tensor(c))
        assert stats["sigmoid_slope_at_max"] == pytest.approx(float(s * (1 - s)), rel=1e-5)
        assert stats["weight_mean"] == 0.0 and stats["bias_mean"] == pytest.approx(c)
        assert 0.0 <= stats["hidden_rate"] <= 1.0
        grads[c] = module.largest_gradients(model, x, y, trainer.dataset, config.loss)["readout_grad_max"]
        if c == -8.0:
            assert stats["output_spikes"] == 0.0 and stats["output_rate"] == 0.0
    assert 0.0 <= grads[-8.0] < grads[0.0] / 100


def test_chance_seeds_reads_written_reports():
    """chance_seeds.py flags a seed of a 10-class row with 360 test samples at 13.10 % (band 13.16 %) but not
    one at 14 %, and skips a row scored by another metric and a row without data."""
    module = load("chance_seeds")
    seeds = {"3154": {"best": 13.1, "final": 12.0}, "3155": {"best": 14.0, "final": 14.0}}
    report = {"rows": [
        {"label": "Digits", "metric": "accuracy", "data": {"classes": 10, "test": 360}, "ours": {"lif": {"per_seed": seeds}}},
        {"label": "NETtalk", "metric": "cosine", "data": {"classes": 10, "test": 360}, "ours": {"lif": {"per_seed": seeds}}},
        {"label": "F-MNIST", "metric": None, "data": None, "ours": {"lif": {}}},
    ]}
    found = module.seeds_at_chance(report)
    assert [(s["task"], s["neuron"], s["seed"]) for s in found] == [("Digits", "lif", 3154)]
    assert found[0]["bound"] == pytest.approx(13.1623, abs=1e-4)
