"""MNIST / Fashion-MNIST (IDX) and CIFAR-10 (pickle) readers on fixtures in the real formats."""

import numpy as np
import pytest
import torch
from writers import write_cifar_batch, write_idx

from spikedyn.data import DataFileError, load_dataset
from spikedyn.data.mnist import read_idx


def make_idx_set(root, folder="MNIST", n_train=6, n_test=4, compress=True):
    rng = np.random.RandomState(0)
    raw = root / folder / "raw"
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.randint(0, 256, size=(n, 28, 28)).astype(np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        suffix = ".gz" if compress else ""
        write_idx(raw / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
        arrays[prefix] = (images, labels)
    return arrays


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fmnist", "FashionMNIST")])
def test_idx_sets(tmp_path, compress, name, folder):
    arrays = make_idx_set(tmp_path, folder, compress=compress)
    ds = load_dataset(name, tmp_path)
    x, y = ds.train.tensors
    assert x.shape == (6, 784) and x.dtype == torch.float32 and y.tolist() == [0, 1, 2, 3, 4, 5]
    assert x[2, 100].item() == pytest.approx(arrays["train"][0][2].reshape(-1)[100] / 255.0)
    assert ds.test.tensors[0].shape == (4, 784)
    assert load_dataset(name, tmp_path, flatten=False).train.tensors[0].shape == (6, 1, 28, 28)


def test_idx_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(DataFileError, match="train-images-idx3-ubyte.*\n.*Obtain it from.*\n.*Put it here"):
        load_dataset("mnist", tmp_path)
    make_idx_set(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    import gzip

    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-10]))  # truncated data
    with pytest.raises(DataFileError, match=r"truncated or corrupt: .*train-images.*\n.*header promises"):
        load_dataset("mnist", tmp_path)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataFileError, match="cannot decompress"):
        read_idx(path)
    path.write_bytes(gzip.compress(b"\x01\x02\x08\x03"))
    with pytest.raises(DataFileError, match="bad magic"):
        read_idx(path)


def test_cifar10_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    rng = np.random.RandomState(1)
    data = {i: rng.randint(0, 256, size=(3, 3072)).astype(np.uint8) for i in range(1, 7)}
    for i in range(1, 6):
        write_cifar_batch(folder / f"data_batch_{i}", data[i], [i, i + 1, 0])
    write_cifar_batch(folder / "test_batch", data[6], [9, 8, 7])
    ds = load_dataset("cifar10", tmp_path)
    x, y = ds.train.tensors
    assert x.shape == (15, 3072) and y[:3].tolist() == [1, 2, 0] and ds.test.tensors[1].tolist() == [9, 8, 7]
    assert x[4, 1025].item() == pytest.approx(data[2][1, 1025] / 255.0)
    img = load_dataset("cifar10", tmp_path, flatten=False).train.tensors[0]
    assert img.shape == (15, 3, 32, 32) and img[0, 1, 0, 0].item() == pytest.approx(data[1][0, 1024] / 255.0)
    norm = load_dataset("cifar10", tmp_path, flatten=False, normalize=True).train.tensors[0]
    assert norm[0, 0, 0, 0].item() == pytest.approx((data[1][0, 0] / 255.0 - 125.3 / 255) / (63.0 / 255), rel=1e-5)
    (folder / "data_batch_3").write_bytes(b"garbage")
    with pytest.raises(DataFileError, match="data_batch_3.*\n.*not a CIFAR-10 pickle batch"):
        load_dataset("cifar10", tmp_path)
    write_cifar_batch(folder / "data_batch_3", data[3], [0, 0, 0])
    (folder / "test_batch").unlink()
    with pytest.raises(DataFileError, match="test_batch"):
        load_dataset("cifar10", tmp_path)
