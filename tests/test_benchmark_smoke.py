"""The speed benchmark script still runs (spikedyn fast path and floor only, tiny sizes, nothing written)."""

import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "speed_mlp.py"


def test_speed_benchmark_smoke(capsys, tmp_path):
    spec = importlib.util.spec_from_file_location("speed_mlp", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    try:
        report = module.main(
            ["--rounds", "1", "--warmup", "0", "--batch", "4", "--steps", "3", "--threads", "1",
             "--variants", "spikedyn,floor", "--out", str(tmp_path / "speed")]
        )
    finally:
        torch.set_num_threads(threads)  # the script sets it process-wide
    for mode in ("train", "inference"):
        assert set(report["results"][mode]) == {"spikedyn", "floor"}
        assert report["results"][mode]["floor"]["x_floor"] == 1.0
        assert report["results"][mode]["spikedyn"]["n"] == 1
    fid = report["fidelity"]["spikedyn"]
    assert fid["output_shape"] == [3, 4, 10]
    assert fid["output_spikes_equal_to_spikedyn"] == 1.0
    assert (tmp_path / "speed.json").exists() and "| spikedyn |" in (tmp_path / "speed.md").read_text()
    assert "| spikedyn |" in capsys.readouterr().out


BRP_COST = Path(__file__).resolve().parents[1] / "benchmarks" / "brp_cost.py"


def test_brp_cost_benchmark_smoke(capsys, tmp_path):
    spec = importlib.util.spec_from_file_location("brp_cost", BRP_COST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    try:
        report = module.main(
            ["--nets", "fsdd-1d", "--rounds", "1", "--warmup", "0", "--batch", "3", "--steps", "2", "--threads", "1",
             "--allocator", "default", "--no-memory", "--out", str(tmp_path / "cost")]
        )
    finally:
        torch.set_num_threads(threads)
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


SPEED_RECURRENT = Path(__file__).resolve().parents[1] / "benchmarks" / "speed_recurrent.py"


def test_speed_recurrent_benchmark_smoke(capsys, tmp_path):
    """The recurrent speed benchmark still runs (spikedyn's fused paths, floor; tiny sizes) and its fast
    paths agree with their reference paths on the benchmark's own input."""
    spec = importlib.util.spec_from_file_location("speed_recurrent", SPEED_RECURRENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    try:
        report = module.main(
            ["--rounds", "1", "--warmup", "0", "--batch", "3", "--steps", "5", "--threads", "1", "--allocator", "default",
             "--variants", "spikedyn-lif,spikedyn-nrr,spikedyn-nrr-brp,floor", "--out", str(tmp_path / "rec")]
        )
    finally:
        torch.set_num_threads(threads)
    assert set(report["results"]["train"]) == {"spikedyn-lif", "spikedyn-nrr", "spikedyn-nrr-brp", "floor"}
    assert report["results"]["train"]["floor"]["x_floor"] == 1.0
    for name in ("spikedyn-lif", "spikedyn-nrr", "spikedyn-nrr-brp"):
        sanity = report["sanity"][name]
        assert sanity["output_shape"] == [5, 3, 10]
        assert sanity["spikes_equal_to_reference"] == 1.0 and sanity["grad_max_rel_diff_vs_reference"] < 1e-5
        assert sanity["masked_weights_zero"]
    assert (tmp_path / "rec.json").exists() and "| spikedyn-nrr |" in (tmp_path / "rec.md").read_text()
    assert "| floor |" in capsys.readouterr().out


SPEED_CONV = Path(__file__).resolve().parents[1] / "benchmarks" / "speed_conv.py"


def test_speed_conv_benchmark_smoke(capsys, tmp_path):
    """The PLIF conv speed benchmark still runs (spikedyn's fused PLIF net and the floor, tiny sizes) and its
    fast path agrees with the reference path on the benchmark's own input."""
    spec = importlib.util.spec_from_file_location("speed_conv", SPEED_CONV)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    try:
        report = module.main(
            ["--rounds", "1", "--warmup", "0", "--batch", "2", "--steps", "2", "--threads", "1", "--allocator", "default",
             "--variants", "spikedyn-plif,floor", "--out", str(tmp_path / "conv")]
        )
    finally:
        torch.set_num_threads(threads)
    assert set(report["results"]["train"]) == {"spikedyn-plif", "floor"}
    sanity = report["sanity"]["spikedyn-plif"]
    assert sanity["output_shape"] == [2, 2, 10] and len(sanity["rates"]) == 4
    assert sanity["output_equal_to_reference"] == 1.0 and sanity["grad_max_rel_diff_vs_reference"] < 1e-4
    assert (tmp_path / "conv.json").exists() and "| spikedyn-plif |" in (tmp_path / "conv.md").read_text()
    assert "| floor |" in capsys.readouterr().out
