"""``spikedyn info``: the environment a run would use (versions, devices, neuron kernels, optional packages)."""

from __future__ import annotations

import argparse
import os
import platform
from importlib.metadata import PackageNotFoundError, version

DESCRIPTION = """\
Print what this installation would run on: spikedyn's, PyTorch's and Python's versions, the CPU
and its torch threads, the GPUs PyTorch sees, which implementation the neuron layers use on each
device (the fused Triton kernels on a CUDA GPU when Triton is installed, the hand-written torch
loops otherwise, compiled for the CPU when a C++ compiler is found; SPIKEDYN_KERNELS overrides it), and which optional packages are installed and
what each enables.  Paste its output into a bug report.
"""

#: optional package -> what it enables (the pyproject extra in brackets)
OPTIONAL = {
    "triton": "fused GPU kernels for the neuron layers (ships with CUDA builds of torch; [gpu])",
    "matplotlib": "spikedyn plot ... ([plots])",
    "tensorboard": "spikedyn train --log tensorboard ([tensorboard])",
    "kornia": "spikedyn train --augment ... ([augment])",
    "nir": "spikedyn export --format nir, spikedyn.nir ([nir])",
    "snntorch": "speed benchmarks against snnTorch ([bench])",
    "spikingjelly": "speed benchmarks against SpikingJelly ([bench-libs])",
    "norse": "speed benchmarks against Norse ([bench-libs])",
}


def installed(name: str) -> str | None:
    """The installed version of distribution ``name``, or None."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def kernel_line(device: str) -> str:
    """Which fast path the neuron layers take for float32 tensors on ``device`` (``cpu`` or ``cuda``)."""
    from .. import kernels

    choice = os.environ.get("SPIKEDYN_KERNELS", "auto").lower()
    if choice == "torch":
        return "torch loops (SPIKEDYN_KERNELS=torch)"
    if device == "cuda":
        return "Triton kernels" if kernels.triton_importable() else "torch loops (Triton not installed)"
    if choice == "triton":
        return "Triton kernels in the interpreter" if kernels.interpreter_mode() else "error: Triton needs TRITON_INTERPRET=1 on a CPU"
    if choice in ("auto", "cpp"):
        from ..kernels import cpu

        return cpu.status()
    return "torch loops (hand-written BPTT)"


def report() -> list[str]:
    """The lines :func:`_info` prints."""
    import torch

    from .. import __version__

    lines = [
        f"spikedyn {__version__}",
        f"torch {torch.__version__}" + (f" (CUDA {torch.version.cuda})" if torch.version.cuda else " (CPU build)"),
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}",
        f"CPU: {cpu_model()}; {os.cpu_count()} logical CPUs; torch threads {torch.get_num_threads()}",
        f"neuron layers on the CPU: {kernel_line('cpu')}",
    ]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            lines.append(f"GPU cuda:{i}: {torch.cuda.get_device_name(i)}")
        lines.append(f"neuron layers on CUDA GPUs: {kernel_line('cuda')}")
    else:
        lines.append("GPU: none visible to PyTorch" + ("" if torch.version.cuda else " (a CPU build of torch)"))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        lines.append("Apple GPU (mps): available; neuron layers run the torch loops there")
    lines.append("optional packages:")
    width = max(map(len, OPTIONAL))
    for name, use in OPTIONAL.items():
        found = installed(name)
        lines.append(f"  {name:<{width}}  {found or 'not installed':<14} {use}")
    return lines


def _info(args: argparse.Namespace) -> int:
    print("\n".join(report()))
    return 0


def register(sub) -> None:
    p = sub.add_parser("info", help="versions, devices, neuron kernels and optional packages of this installation",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=_info)
