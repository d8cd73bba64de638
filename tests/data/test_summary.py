"""format_summary: the text behind `spikedyn data info NAME`."""

import torch
from torch.utils.data import TensorDataset

from spikedyn.data import SpikeDataset, format_summary


def test_class_and_sequence_summary():
    ds = SpikeDataset("toy", TensorDataset(torch.zeros(5, 3, 4), torch.tensor([0, 1, 1, 2, 2])),
                      TensorDataset(torch.zeros(2, 3, 4), torch.tensor([2, 2])), 3, kind="sequence",
                      source="/data/toy", notes={"split": "official"})
    text = format_summary(ds)
    assert "toy  (sequence data, 3 classes, target: class)" in text and "files: /data/toy" in text
    assert "per sample: 3 steps x [4]" in text and "train:      5 samples, x [5, 3, 4] float32" in text
    assert "per class: [1, 2, 2]" in text and "per class: [0, 0, 2]" in text and "split: official" in text


def test_multi_hot_and_frame_class_balance():
    y = torch.tensor([[1.0, 0, 1], [1, 1, 0]])
    multi = SpikeDataset("m", TensorDataset(torch.zeros(2, 4), y), TensorDataset(torch.zeros(1, 4), y[:1]), 3,
                         encoder="direct", target="multi_hot")
    assert multi.summary()["train"]["per_unit"] == [2, 1, 1]
    assert "samples per unit: [2, 1, 1]" in format_summary(multi) and "encoded into T steps by 'direct'" in format_summary(multi)
    frames = SpikeDataset("f", TensorDataset(torch.zeros(1, 4, 2), torch.tensor([[0, 1, 1, 0]])),
                          TensorDataset(torch.zeros(1, 4, 2), torch.tensor([[2, 2, 2, 0]])), 3, kind="sequence",
                          target="frame_class")
    assert "frames per class: [2, 2, 0]" in format_summary(frames) and frames.summary()["test"]["per_class_frames"] == [1, 0, 3]


def test_every_reader_is_registered():
    from spikedyn.data import dataset_names

    assert set(dataset_names()) >= {
        "mnist", "fmnist", "cifar10", "nmnist", "nmnist-plif", "dvsgesture", "dvsgesture-plif", "cifar10dvs",
        "tidigits", "fsdd", "timit-gender", "timit-phones", "nettalk", "digits",
    }
