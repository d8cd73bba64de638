"""NETtalk: the UCI text format, the authors' .mat file, and the cosine-similarity score."""

import numpy as np
import pytest
import torch

from spikedyn.data import DataFileError, load_dataset
from spikedyn.data.nettalk import FEATURES, STRESS, encode_windows, nettalk_accuracy

DATA = """# NETtalk corpus sample (comment lines are allowed)
aback\txb@k-\t0>1<<\t0
abbe\t@b-i\t1<>0\t2

the\tD-x\t>>0\t0
cab\tk@b\t>1<\t0
"""


def write_data(root, text=DATA):
    folder = root / "NETtalk"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nettalk.data").write_text(text)
    return folder / "nettalk.data"


def test_windows_are_seven_letters_of_27_way_one_hot():
    x = encode_windows("cab")
    assert x.shape == (3, 189) and (x.reshape(3, 7, 27).sum(-1) == 1).all()
    first = x[0].reshape(7, 27).argmax(-1).tolist()
    assert first == [26, 26, 26, 2, 0, 1, 26]  # blank, blank, blank, c, a, b, blank


def test_uci_text_windows_targets_and_split(tmp_path):
    write_data(tmp_path)
    ds = load_dataset("nettalk", tmp_path, n_train=10, n_test=5, split_seed="none")
    x, y = ds.train.tensors
    assert x.shape == (10, 189) and y.shape == (10, 26) and ds.test.tensors[0].shape == (5, 26 + 163)
    assert ds.target == "multi_hot" and ds.num_classes == 26 and ds.encoder == "direct"
    # first window: centre letter 'a' of "aback", phoneme 'x' (about), stress '0'
    assert x[0].reshape(7, 27).argmax(-1).tolist() == [26, 26, 26, 0, 1, 0, 2]
    on = {FEATURES[i] for i in torch.nonzero(y[0, :21]).flatten().tolist()}
    assert on == {"palatal", "medium", "voiced"} and y[0, 21 + STRESS.index("0")] == 1 and y[0].sum() == 4
    # 'k' of "aback" (index 3): velar stop, unvoiced, stress '<'
    assert {FEATURES[i] for i in torch.nonzero(y[3, :21]).flatten().tolist()} == {"velar", "stop"}
    assert y[4, FEATURES.index("silent")] == 1  # the silent 'k' -> '-'
    ones = torch.cat([y, ds.test.tensors[1]]).sum(1)
    assert ones.min() >= 2 and ones.max() <= 6
    # file order: "aback" (5) + "abbe" (4) + the 't' of "the" train; the test split starts at its 'h'
    assert ds.test.tensors[0][0].reshape(7, 27).argmax(-1).tolist()[3] == ord("h") - ord("a")
    shuffled = load_dataset("nettalk", tmp_path, n_train=10, n_test=5)  # words permuted with seed 0
    both = lambda d: sorted(map(tuple, torch.cat([d.train.tensors[0], d.test.tensors[0]]).tolist()))  # noqa: E731
    assert both(shuffled) == both(ds) and not torch.equal(shuffled.train.tensors[0], x)
    with pytest.raises(DataFileError, match="yields 15 windows"):
        load_dataset("nettalk", tmp_path)  # default 5033 + 500


def test_uci_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(DataFileError, match="nettalk.data.*\n.*Obtain it from.*UCI"):
        load_dataset("nettalk", tmp_path)
    write_data(tmp_path, DATA + "abbot\t@b\t1<\t0\n")
    with pytest.raises(DataFileError, match=r"nettalk.data\n.*line 7 is not"):
        load_dataset("nettalk", tmp_path, n_train=1, n_test=1)
    write_data(tmp_path, "cab\tk%b\t>1<\t0\n")
    with pytest.raises(DataFileError, match="unknown phoneme symbol '%'"):
        load_dataset("nettalk", tmp_path, n_train=1, n_test=1)


def test_authors_mat_file_is_used_when_present(tmp_path):
    from scipy.io import savemat

    rng = np.random.RandomState(0)
    arrays = {"train_x": (rng.rand(6, 189) > 0.9).astype(np.uint8), "train_y": (rng.rand(6, 26) > 0.8).astype(np.uint8),
              "test_x": (rng.rand(2, 189) > 0.9).astype(np.uint8), "test_y": (rng.rand(2, 26) > 0.8).astype(np.uint8)}
    write_data(tmp_path)
    savemat(str(tmp_path / "NETtalk" / "nettalk_small.mat"), arrays)
    ds = load_dataset("nettalk", tmp_path)
    assert ds.notes["source_format"] == "mat" and ds.train.tensors[0].shape == (6, 189)
    assert torch.equal(ds.test.tensors[1], torch.from_numpy(arrays["test_y"].astype(np.float32)))
    assert load_dataset("nettalk", tmp_path, source="uci", n_train=3, n_test=3).notes["source_format"] == "uci"
    savemat(str(tmp_path / "NETtalk" / "nettalk_small.mat"), {"train_x": arrays["train_x"]})
    with pytest.raises(DataFileError, match="nettalk_small.mat\n.*key 'train_y' missing"):
        load_dataset("nettalk", tmp_path)
    (tmp_path / "NETtalk" / "nettalk_small.mat").write_bytes(b"MATLAB 5.0 truncated")
    with pytest.raises(DataFileError, match="not a readable MATLAB file"):
        load_dataset("nettalk", tmp_path)


def test_nettalk_accuracy_scores_the_first_sample_of_each_batch():
    y = torch.tensor([[1.0, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 1]])
    r = torch.tensor([[0.5, 0, 0.5, 0], [0.9, 0, 0, 0], [0.2, 0, 0.2, 0], [0, 0, 0, 0.01]])
    # batch size 2 -> samples 0 and 2: cos = 1 and <(.2,0,.2),(1,1,0)> / (.2*sqrt2 * sqrt2) = 0.5
    assert nettalk_accuracy(r, y, batch_size=2) == pytest.approx(0.75)
    # every sample: 1, 0, 0.5, and 0 for the silent last one (max rate 0.01 < 0.05)
    assert nettalk_accuracy(r, y, batch_size=None) == pytest.approx(1.5 / 4)
    with pytest.raises(ValueError, match="must both be"):
        nettalk_accuracy(r, y[:, :3])
