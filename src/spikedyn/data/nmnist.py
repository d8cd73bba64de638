"""N-MNIST from the original ``.bin`` event files (``NMNIST/{Train,Test}/<digit>/<index>.bin``;
the folder may also be called ``N-MNIST`` or ``nmnist``, the splits ``train`` / ``test``).

File format: 5 bytes (40 bits) per event, big-endian fields: byte 0 = x (0-33), byte 1 = y
(0-33), bit 7 of byte 2 = polarity (1 = ON), the remaining 23 bits = timestamp in µs.

* ``nmnist`` (MDN variant, default): 20 bins of 15 ms (``t // 15000``), binary occupancy,
  coordinates shifted by +1 into a ``2 x 36 x 36`` grid, flattened per step:
  ``x [N, 20, 2592]`` (uint8; ``flatten=False`` keeps ``[N, 20, 2, 36, 36]``).
* ``nmnist-plif``: 10 frames "split by number", raw event counts on ``2 x 34 x 34``:
  ``x [N, 10, 2, 34, 34]`` (int16; int32 when a count exceeds 32,767).

Labels are the digit folder names; samples are in sorted (digit, file) order.  The full data
set has 60,000 / 10,000 files; any subset with the same layout loads the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset
from tqdm.auto import tqdm
from ..progress import bar_disabled

from .base import SpikeDataset, corrupt_file, find_first, missing_file, register_dataset
from .events import frames_by_count, frames_by_time, make_events, narrow_counts

SOURCE = "https://www.garrickorchard.com/datasets/n-mnist (Train.zip / Test.zip, unzipped)"


def read_nmnist_bin(path: Path) -> np.ndarray:
    """One N-MNIST ``.bin`` file -> event array (t, x, y, p)."""
    raw = Path(path).read_bytes()
    if len(raw) % 5:
        raise corrupt_file(Path(path), "nmnist", f"size {len(raw)} bytes is not a multiple of 5 (truncated?)", SOURCE)
    b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 5).astype(np.int64)
    x, y = b[:, 0], b[:, 1]
    p = b[:, 2] >> 7
    t = ((b[:, 2] & 0x7F) << 16) | (b[:, 3] << 8) | b[:, 4]
    if len(b) and (x.max() > 33 or y.max() > 33):
        raise corrupt_file(Path(path), "nmnist", "coordinates beyond the 34x34 sensor", SOURCE)
    return make_events(t, x, y, p)


def _files(root: Path, split: str) -> list[tuple[Path, int]]:
    folder = find_first([Path(root) / name for name in ("NMNIST", "N-MNIST", "nmnist")]) or Path(root) / "NMNIST"
    base = find_first([folder / split, folder / split.lower()]) or folder / split
    if not base.is_dir():
        raise missing_file(base, "nmnist", SOURCE, f"{Path(root) / 'NMNIST'}/{{Train,Test}}/<digit>/<index>.bin")
    files = [(p, int(d.name)) for d in sorted(base.iterdir()) if d.is_dir() and d.name.isdigit() for p in sorted(d.glob("*.bin"))]
    if not files:
        raise missing_file(base / "0" / "00001.bin", "nmnist", SOURCE, f"{base}/<digit>/<index>.bin")
    return files


def _load(root: Path, encode, dtype, name: str, progress: bool) -> SpikeDataset:
    splits = {}
    for split in ("Train", "Test"):
        files = _files(root, split)
        xs = [
            narrow_counts(encode(read_nmnist_bin(p)), dtype)
            for p, _ in tqdm(files, desc=f"{name} {split}", disable=bar_disabled(progress), leave=False)
        ]
        x = torch.from_numpy(np.stack(xs))
        y = torch.tensor([label for _, label in files], dtype=torch.int64)
        splits[split] = TensorDataset(x, y)
    return SpikeDataset(name, splits["Train"], splits["Test"], 10, kind="sequence", encoder="direct",
                        source=str(files[0][0].parents[2]))


@register_dataset("nmnist")
def load_nmnist(root: Path, steps: int = 20, bin_ms: float = 15.0, flatten: bool = True, progress: bool = True) -> SpikeDataset:
    """MDN variant: ``steps`` bins of ``bin_ms``, binary occupancy on 2x36x36 (coordinates + 1)."""

    def encode(ev: np.ndarray) -> np.ndarray:
        f = frames_by_time(ev, steps, int(bin_ms * 1000), (36, 36), t0=0, binary=True, offset=1)
        return f.reshape(steps, -1) if flatten else f

    return _load(root, encode, np.uint8, "nmnist", progress)


@register_dataset("nmnist-plif")
def load_nmnist_plif(root: Path, steps: int = 10, progress: bool = True) -> SpikeDataset:
    """PLIF variant: ``steps`` frames split by number, event counts on 2x34x34."""
    return _load(root, lambda ev: frames_by_count(ev, steps, (34, 34)), np.int16, "nmnist-plif", progress)
