"""CIFAR-10 from the python pickle batches (``cifar-10-batches-py/data_batch_{1..5}``, ``test_batch``).

Each batch is a pickled dict with ``b"data"`` (``uint8 [10000, 3072]``, channel-major RGB) and
``b"labels"``.  Returned: ``x [N, 3072]`` in [0, 1] (MDN, ``flatten=True``) or
``[N, 3, 32, 32]``; ``normalize=True`` applies BRP's per-channel mean/std
((125.3, 123.0, 113.9) / 255, (63.0, 62.1, 66.7) / 255).  Splits 50,000 / 10,000 in file order.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .base import SpikeDataset, check_labels, corrupt_file, find_first, missing_file, register_dataset

SOURCE = "https://www.cs.toronto.edu/~kriz/cifar.html (CIFAR-10 python version, cifar-10-python.tar.gz, extracted)"
BRP_MEAN = (125.3 / 255, 123.0 / 255, 113.9 / 255)
BRP_STD = (63.0 / 255, 62.1 / 255, 66.7 / 255)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickle batch -> (uint8 images [n, 3072], int64 labels [n])."""
    try:
        with open(path, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except FileNotFoundError:
        raise
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as exc:
        raise corrupt_file(Path(path), "cifar10", f"not a CIFAR-10 pickle batch ({type(exc).__name__}: {exc})", SOURCE) from exc
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise corrupt_file(Path(path), "cifar10", f"data {data.shape} / labels {labels.shape} are not [n, 3072] / [n]", SOURCE)
    check_labels(labels, 10, Path(path), "cifar10", SOURCE)
    return data, labels


@register_dataset("cifar10")
def load_cifar10(root: Path, flatten: bool = True, normalize: bool = False) -> SpikeDataset:
    folder = find_first([Path(root) / "cifar-10-batches-py", Path(root) / "CIFAR10" / "cifar-10-batches-py", Path(root) / "CIFAR10"])
    folder = folder or Path(root) / "cifar-10-batches-py"
    splits = {}
    for split, names in (("train", [f"data_batch_{i}" for i in range(1, 6)]), ("test", ["test_batch"])):
        parts = []
        for name in names:
            if not (folder / name).exists():
                raise missing_file(folder / name, "cifar10", SOURCE, f"{folder}/{name}")
            parts.append(read_batch(folder / name))
        data = np.concatenate([d for d, _ in parts])
        labels = np.concatenate([lab for _, lab in parts])
        x = torch.from_numpy(data.astype(np.float32) / 255.0).reshape(-1, 3, 32, 32)
        if normalize:
            x = (x - torch.tensor(BRP_MEAN).view(1, 3, 1, 1)) / torch.tensor(BRP_STD).view(1, 3, 1, 1)
        splits[split] = TensorDataset(x.reshape(len(x), -1) if flatten else x, torch.from_numpy(labels))
    return SpikeDataset("cifar10", splits["train"], splits["test"], 10, kind="static", encoder="rate", source=str(folder),
                        notes={"normalize": normalize})
