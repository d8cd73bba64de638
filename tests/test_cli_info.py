"""``spikedyn info``: the environment report (versions, devices, neuron kernels, optional packages)."""

from __future__ import annotations

import torch

from spikedyn import __version__, kernels
from spikedyn.cli import main
from spikedyn.cli import info


def test_info_names_versions_kernels_and_optional_packages(capsys, monkeypatch):
    monkeypatch.delenv("SPIKEDYN_KERNELS", raising=False)
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"spikedyn {__version__}\ntorch {torch.__version__}")
    assert "neuron layers on the CPU: compiled CPU loops (built" in out or "compiled CPU loops unavailable" in out
    for name in info.OPTIONAL:
        line = next(l for l in out.splitlines() if l.strip().startswith(name + " "))
        assert (info.installed(name) or "not installed") in line
    if not torch.cuda.is_available():
        assert "GPU: none visible to PyTorch" in out


def test_kernel_line_follows_the_override_and_triton(monkeypatch):
    monkeypatch.setenv("SPIKEDYN_KERNELS", "torch")
    assert info.kernel_line("cuda") == "torch loops (SPIKEDYN_KERNELS=torch)"
    monkeypatch.delenv("SPIKEDYN_KERNELS")
    monkeypatch.setattr(kernels, "triton_importable", lambda: False)
    assert info.kernel_line("cuda") == "torch loops (Triton not installed)"
    monkeypatch.setattr(kernels, "triton_importable", lambda: True)
    assert info.kernel_line("cuda") == "Triton kernels"
    monkeypatch.setenv("SPIKEDYN_KERNELS", "torch")
    assert info.kernel_line("cpu") == "torch loops (SPIKEDYN_KERNELS=torch)"
    monkeypatch.delenv("SPIKEDYN_KERNELS")
    from spikedyn.kernels import cpu

    monkeypatch.setattr(cpu, "_state", {})
    monkeypatch.setattr(cpu, "compiler_missing", lambda: "no C++ compiler")
    assert info.kernel_line("cpu") == "torch loops (compiled CPU loops unavailable: no C++ compiler)"
    monkeypatch.setenv("SPIKEDYN_KERNELS", "triton")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert info.kernel_line("cpu").startswith("error: Triton needs TRITON_INTERPRET=1")
