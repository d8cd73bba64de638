"""Training devices: the ``--device`` names a run accepts, and whether the device is usable here.

:func:`parse_device` turns a name (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``) into a
:class:`torch.device` without touching the hardware, so settings can be checked before anything
loads; :func:`pick_device` resolves ``auto`` (CUDA when available, else the CPU) and refuses a
device this machine or this PyTorch build cannot use, saying why and what to pass instead.
"""

from __future__ import annotations

import torch

_DEVICE_HELP = "use cpu, cuda, cuda:N (GPU number N), mps, or auto (CUDA when available, else the CPU)"


def parse_device(name: str) -> torch.device | None:
    """The device a ``--device`` name asks for (None for ``auto``); ValueError for a name that is none.

    Does not check that the device is usable here; :func:`pick_device` does.
    """
    if name == "auto":
        return None
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown device {name!r}: {_DEVICE_HELP}.") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {name!r} is not supported for training here: {_DEVICE_HELP}.")
    return device


def pick_device(name: str) -> torch.device:
    """The device for ``name`` (``auto``: CUDA when available, else the CPU), checked to be usable.

    ``ValueError`` says why not: no CUDA support in this PyTorch build, no GPU visible, no GPU
    of that number, or no MPS, with the fix.
    """
    device = parse_device(name)
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        if not torch.backends.cuda.is_built():
            raise ValueError(
                f"--device {name}: CUDA is not available in this PyTorch build (torch {torch.__version__} "
                f"was built for the CPU only). Install a CUDA build of PyTorch (pick one with CUDA at "
                f"https://pytorch.org/get-started/locally/) or pass --device cpu."
            )
        count = torch.cuda.device_count()
        if count == 0:
            raise ValueError(
                f"--device {name}: this PyTorch build supports CUDA but no GPU is visible (check the NVIDIA "
                f"driver, e.g. with nvidia-smi, and CUDA_VISIBLE_DEVICES), or pass --device cpu."
            )
        if device.index is not None and device.index >= count:
            raise ValueError(
                f"--device {name}: only {count} CUDA GPU(s) are visible (cuda:0 to cuda:{count - 1}); "
                f"pass one of those, or --device cpu."
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS (Apple GPU) is not available on this machine; pass --device cpu.")
    return device
