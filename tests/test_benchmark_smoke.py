"""The speed benchmark script still runs (spikedyn fast path and floor only, tiny sizes, nothing written)."""

import importlib.util
from pathlib import Path

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
