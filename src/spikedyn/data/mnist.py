"""MNIST and Fashion-MNIST from their IDX files (gzip-compressed or not).

IDX format: big-endian header ``0x00 0x00 <dtype code> <ndim>``, then ``ndim`` uint32 sizes,
then the data; images have magic 2051 (``N x 28 x 28`` uint8), labels 2049 (``N`` uint8, each
0-9: a label out of range is an error naming the file).
Returned images are ``float32`` in [0, 1] of shape ``[N, 784]`` (``flatten=True``, MDN) or
``[N, 1, 28, 28]``; labels ``int64 [N]``.  Splits: the official 60,000 / 10,000.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .base import SpikeDataset, check_labels, corrupt_file, find_first, missing_file, register_dataset

IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_SOURCES = {
    "MNIST": "http://yann.lecun.com/exdb/mnist/ (or any mirror of the four IDX files)",
    "FashionMNIST": "https://github.com/zalandoresearch/fashion-mnist (data/fashion/*.gz)",
}


def read_idx(path: Path, dataset: str = "IDX", obtain: str = "the data set's distribution") -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) into a numpy array, validating header and size."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise corrupt_file(path, dataset, f"cannot decompress/read ({exc})", obtain) from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise corrupt_file(path, dataset, "not an IDX file (bad magic number)", obtain)
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise corrupt_file(path, dataset, "header is cut short", obtain)
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise corrupt_file(
            path, dataset, f"header promises {dims} ({expected} bytes of data) but the file holds {len(raw) - header}", obtain
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def _locate(root: Path, folder: str, stem: str, dataset: str) -> Path:
    dirs = [root / folder / "raw", root / folder, root]
    candidates = [d / (stem + ext) for d in dirs for ext in (".gz", "")]
    found = find_first(candidates)
    if found is None:
        raise missing_file(
            candidates[0], dataset, _SOURCES[folder], f"{root / folder / 'raw'}/{stem}.gz (gzip or uncompressed)"
        )
    return found


def load_idx_pair(root: Path, folder: str, split: str, dataset: str) -> tuple[np.ndarray, np.ndarray, Path]:
    image_stem, label_stem = _FILES[split]
    image_path = _locate(root, folder, image_stem, dataset)
    label_path = _locate(root, folder, label_stem, dataset)
    images = read_idx(image_path, dataset, _SOURCES[folder])
    labels = read_idx(label_path, dataset, _SOURCES[folder])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise corrupt_file(
            image_path, dataset, f"images {images.shape} and labels {labels.shape} do not pair up", _SOURCES[folder]
        )
    check_labels(labels, 10, label_path, dataset, _SOURCES[folder])
    return images, labels, image_path.parent


def _load(root: Path, folder: str, name: str, flatten: bool) -> SpikeDataset:
    splits = {}
    where = None
    for split in ("train", "test"):
        images, labels, where = load_idx_pair(root, folder, split, name)
        x = torch.from_numpy(images.astype(np.float32) / 255.0)
        x = x.reshape(len(x), -1) if flatten else x.unsqueeze(1)
        splits[split] = TensorDataset(x, torch.from_numpy(labels.astype(np.int64)))
    return SpikeDataset(
        name=name, train=splits["train"], test=splits["test"], num_classes=10, kind="static",
        encoder="rate", source=str(where),
    )


@register_dataset("mnist")
def load_mnist(root: Path, flatten: bool = True) -> SpikeDataset:
    """MNIST from ``root/MNIST/raw/*-ubyte[.gz]`` (also ``root/MNIST/`` or ``root/``)."""
    return _load(Path(root), "MNIST", "mnist", flatten)


@register_dataset("fmnist")
def load_fashion_mnist(root: Path, flatten: bool = True) -> SpikeDataset:
    """Fashion-MNIST from ``root/FashionMNIST/raw/*-ubyte[.gz]`` (same file names as MNIST)."""
    return _load(Path(root), "FashionMNIST", "fmnist", flatten)
