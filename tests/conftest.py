"""Shared fixtures: where the real data sets live.

Without a GPU, ``TRITON_INTERPRET=1`` is set for the whole run (the kernel tests of ``tests/kernels``).

Tests that read real files use ``data_root``: ``$SPIKEDYN_DATA`` if set, else the folder
``shared/data`` beside the repository (where CI keeps it); they skip with the reason when
neither exists.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Without a GPU the Triton kernels (spikedyn.kernels) run in Triton's interpreter; it is chosen when
# Triton is first imported, so it is set here, before any test imports it.  On a GPU they run on the device.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

REPO = Path(__file__).resolve().parents[1]


def find_data_root() -> Path | None:
    env = os.environ.get("SPIKEDYN_DATA")
    if env:
        return Path(env)
    candidate = REPO.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = find_data_root()
    if root is None or not root.is_dir():
        pytest.skip(
            "real data sets not found: set SPIKEDYN_DATA to the folder holding MNIST/, fsdd/, NMNIST/ ... "
            "or place it at ../shared/data beside the repository"
        )
    return root
