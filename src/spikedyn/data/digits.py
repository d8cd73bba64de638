"""scikit-learn's bundled 8x8 handwritten digits: the embedded default that needs no files.

1,797 images, 64 features scaled from 0..16 to [0, 1]; a fixed stratified split
(``train_test_split(test_size=0.2, random_state=0, stratify=y)``): 1,437 train / 360 test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .base import SpikeDataset, register_dataset


@register_dataset("digits")
def load_digits(root: Path | None = None, flatten: bool = True) -> SpikeDataset:
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)

    def as_tensor(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(a)
        return t if flatten else t.reshape(len(t), 1, 8, 8)

    return SpikeDataset(
        name="digits",
        train=TensorDataset(as_tensor(x_tr), torch.from_numpy(y_tr)),
        test=TensorDataset(as_tensor(x_te), torch.from_numpy(y_te)),
        num_classes=10,
        kind="static",
        encoder="rate",
        source="scikit-learn (bundled with the package)",
    )
