"""Counts on the real files (skipped with the reason when the data folder is absent)."""

import pytest

from spikedyn.data import load_dataset


def test_mnist_counts(data_root):
    ds = load_dataset("mnist", data_root)
    assert (len(ds.train), len(ds.test)) == (60000, 10000)
    assert ds.train.tensors[1][:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert ds.summary()["test"]["per_class"] == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_fsdd_official_split_counts(data_root):
    ds = load_dataset("fsdd", data_root, progress=False)
    assert (len(ds.train), len(ds.test)) == (2700, 300)
    assert ds.summary()["test"]["per_class"] == [30] * 10
    assert tuple(ds.train.tensors[0].shape[1:]) == (30, 30)


def test_nmnist_subset_counts(data_root):
    ds = load_dataset("nmnist", data_root, progress=False)
    assert (len(ds.train), len(ds.test)) == (1000, 100)
    assert ds.summary()["train"]["per_class"] == [97, 116, 99, 93, 105, 92, 94, 117, 87, 100]
    assert ds.summary()["test"]["per_class"] == [8, 14, 8, 11, 14, 7, 10, 15, 2, 11]


def test_timit_sample_counts(data_root):
    ds = load_dataset("timit-gender", data_root, progress=False)
    assert len(ds.train) + len(ds.test) == 160
    assert ds.notes["speakers"] == {"train": 12, "test": 4}
    both = ds.summary()
    assert both["train"]["per_class"] == [60, 60] and both["test"]["per_class"] == [20, 20]
    assert ds.notes["layout"] == "nltk-sample"


def test_features_on_real_files_match_python_speech_features(data_root):
    """Golden values; python_speech_features 0.6 (fbank/mfcc, same settings) agrees to 1e-13."""
    import numpy as np

    from spikedyn.data.audio import mfcc, read_audio, spectrogram_frames

    fsdd = data_root / "fsdd" / "recordings" / "3_theo_7.wav"
    timit = data_root / "timit_sample" / "dr1-fvmh0" / "sa1.wav"
    if not (fsdd.exists() and timit.exists()):
        pytest.skip("FSDD or TIMIT sample files missing")
    signal, rate = read_audio(fsdd)
    image = spectrogram_frames(signal, rate, 30, 30)
    np.testing.assert_allclose(image[[0, 7, 29], [0, 12, 29]], [0.00745759, 0.06823259, 0.00092449], rtol=1e-4)
    np.testing.assert_allclose(mfcc(signal, rate)[[0, 10], [0, 5]], [13.01308719, -29.70933929], rtol=1e-7)
    signal, rate = read_audio(timit)
    assert rate == 16000
    np.testing.assert_allclose(spectrogram_frames(signal, rate, 30, 30)[[0, 7, 29], [0, 12, 29]],
                               [1.26037197e-04, 3.22426554e-03, 1.39743419e-05], rtol=1e-6)
    np.testing.assert_allclose(mfcc(signal, rate)[[0, 10], [0, 5]], [6.62966048, 4.98957989], rtol=1e-7)


def test_nettalk_uci_files_rebuild_the_authors_targets(data_root):
    """With nettalk.data, nettalk.list and the authors' nettalk_small.mat all present, the UCI build
    (Appendix A table, first pronunciation of each listed word) gives the authors' target for every
    window but one: the stressed 'a' of "at", whose second pronunciation the authors took."""
    import numpy as np
    import torch
    from scipy.io import loadmat

    folder = data_root / "NETtalk"
    if not all((folder / name).exists() for name in ("nettalk.data", "nettalk.list", "nettalk_small.mat")):
        pytest.skip("NETtalk/nettalk.data, nettalk.list or nettalk_small.mat missing")
    ds = load_dataset("nettalk", data_root, source="uci", split_seed="none")
    assert ds.notes["words"] == "common" and ds.notes["list_words_missing"] == 0 and ds.notes["windows"] == 5438
    x = torch.cat([ds.train.tensors[0], ds.test.tensors[0]]).numpy()
    y = torch.cat([ds.train.tensors[1], ds.test.tensors[1]]).numpy()
    mat = loadmat(str(folder / "nettalk_small.mat"))
    theirs = {(a.tobytes(), b.tobytes()) for a, b in
              zip(mat["word_x"].astype(np.float32), mat["word_phoneme"].astype(np.float32))}
    ours = {(a.tobytes(), b.tobytes()) for a, b in zip(x, y)}
    assert len(ours - theirs) == 1
    test_at = np.sort(mat["randnum"][0].astype(int)[:500] - 1)  # the authors' test windows
    assert np.array_equal(mat["test_x"], mat["word_x"][test_at])
