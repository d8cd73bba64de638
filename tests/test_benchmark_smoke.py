"""The speed benchmark script still runs (tiny sizes, nothing written)."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "speed_mlp.py"


def test_speed_benchmark_smoke(capsys):
    spec = importlib.util.spec_from_file_location("speed_mlp", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = module.main(["--quick", "--batch", "4", "--steps", "3", "--no-reference"])
    for mode in ("train", "inference"):
        assert {"spikedyn", "floor"} <= set(report["results"][mode])
        assert report["results"][mode]["floor"]["x_floor"] == 1.0
    assert "| spikedyn |" in capsys.readouterr().out
