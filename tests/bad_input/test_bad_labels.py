"""An IDX label outside 0-9 is an error naming the labels file and the label (not a silent 201-class set)."""

import numpy as np
import pytest
import torch
from bad_input_helpers import assert_user_error, run_cli, write_idx
from torch.utils.data import TensorDataset

from spikedyn.data import DataFileError, SpikeDataset, load_dataset
from spikedyn.train import TrainConfig, Trainer


def write_mnist(root, bad_label=None):
    raw = root / "MNIST" / "raw"
    for prefix, n in (("train", 6), ("t10k", 4)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        if prefix == "train" and bad_label is not None:
            labels[3] = bad_label
        write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", np.zeros((n, 28, 28), np.uint8))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return raw / "train-labels-idx1-ubyte.gz"


def test_mnist_label_200_names_the_file_and_the_label(tmp_path):
    labels_file = write_mnist(tmp_path, bad_label=200)
    with pytest.raises(DataFileError, match="label 200 at position 3") as info:
        load_dataset("mnist", tmp_path)
    assert str(labels_file) in str(info.value) and "0..9" in str(info.value)


def test_cli_reports_the_bad_label_without_traceback(tmp_path, capsys):
    write_mnist(tmp_path, bad_label=200)
    rc, _, err = run_cli(capsys, "train", "--dataset", "mnist", "--data-root", str(tmp_path), "--out", str(tmp_path / "r"))
    assert_user_error(rc, err, "train-labels-idx1-ubyte.gz", "label 200")


def test_a_data_set_built_in_python_is_checked_too():
    x, y = torch.rand(4, 3), torch.tensor([0, 1, 2, 5])
    ds = SpikeDataset("toy", TensorDataset(x, y), TensorDataset(x, y), num_classes=3)
    with pytest.raises(DataFileError, match="label 5, outside the 3 classes"):
        Trainer(TrainConfig(dataset="toy", hidden=4, steps=2, progress=False), dataset=ds)
