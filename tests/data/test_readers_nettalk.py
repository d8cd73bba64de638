"""NETtalk: the UCI text format, the authors' .mat file, and the cosine-similarity score."""

import numpy as np
import pytest
import torch

from spikedyn.data import DataFileError, load_dataset
from spikedyn.data.nettalk import (
    FEATURES,
    PHONEME_FEATURES,
    RECONSTRUCTED_FEATURES,
    STRESS,
    encode_windows,
    nettalk_accuracy,
    read_nettalk_list,
    target_table,
)

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


def write_list(root, words):
    """A ``nettalk.list`` in the benchmark's layout: a note, a line of asterisks, one Lisp list."""
    body = " ".join(w.upper() for w in words)
    text = f"Note: the words of the 1000-word experiments, (approximately).\n\n{'*' * 40}\n\n({body})\n"
    (root / "NETtalk" / "nettalk.list").write_text(text)


def units(vector):
    return {FEATURES[i] for i in torch.nonzero(torch.as_tensor(vector)[:21]).flatten().tolist()}


#: the 50 phoneme symbols of the benchmark's nettalk.names and '-' (a letter not pronounced).
UCI_SYMBOLS = "abcdefghiklmnoprstuvwxyzACDEGIJKLMNOQRSTUWXYZ@!#*^+-"


def test_original_table_pins_published_rows():
    table = target_table()
    # Sejnowski & Rosenberg 1987, Appendix A ("Unvoiced" has no unit of its own)
    assert units(table["p"]) == {"labial", "stop"}  # pet: Unvoiced, Labial, Stop
    assert units(table["i"]) == {"high", "tensed", "labial"}  # Pete: High, Tensed, Front1
    assert units(table["W"]) == {"high", "medium", "tensed", "palatal", "velar"}  # bout
    assert units(table["Y"]) == {"high", "tensed", "labial", "dental", "alveolar"}  # cute
    assert units(table["*"]) == {"voiced", "glide", "labial", "low", "alveolar"}  # one
    assert units(table["K"]) == {"palatal", "fricative", "velar", "affricative"}  # sexual
    assert units(table["R"]) == {"voiced", "velar", "liquid"}  # bird
    assert units(table["-"]) == {"silent", "elide"}
    # the published /J/ (gin) equals /G/ (sing); no other two symbols share a vector
    assert units(table["J"]) == units(table["G"]) == {"voiced", "velar", "nasal"}
    vectors = {}
    for symbol, vec in table.items():
        vectors.setdefault(vec.tobytes(), []).append(symbol)
    assert sorted(sorted(group) for group in vectors.values() if len(group) > 1) == [["G", "J"]]
    # every symbol of the corpus has 2-5 feature units; vowels are never marked voiced
    assert set(UCI_SYMBOLS) <= set(table)
    assert all(2 <= v.sum() <= 5 for v in table.values()) and len(table["a"]) == 21
    assert not any(table[v][FEATURES.index("voiced")] for v in "aceiouxAEIOUWY@^|+")


def test_reconstructed_table_stays_available(tmp_path):
    write_data(tmp_path)
    old = load_dataset("nettalk", tmp_path, n_train=10, n_test=5, split_seed="none", feature_table="reconstructed")
    new = load_dataset("nettalk", tmp_path, n_train=10, n_test=5, split_seed="none")
    assert old.notes["feature_table"] == "reconstructed" and new.notes["feature_table"] == "original"
    assert units(old.train.tensors[1][0]) == {"palatal", "medium", "voiced"}  # 'x' (about), reconstructed
    assert units(new.train.tensors[1][0]) == {"palatal", "medium"}  # 'x' (about), Appendix A
    assert set(RECONSTRUCTED_FEATURES) == set(PHONEME_FEATURES)
    (tmp_path / "table.txt").write_text("# mine\n" + "\n".join(f"{s} voiced" for s in UCI_SYMBOLS) + "\n")
    mine = load_dataset("nettalk", tmp_path, n_train=10, n_test=5, feature_table=str(tmp_path / "table.txt"))
    assert (mine.train.tensors[1][:, :21].sum(1) == 1).all()


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
    assert units(y[0]) == {"palatal", "medium"} and y[0, 21 + STRESS.index("0")] == 1 and y[0].sum() == 3
    assert STRESS == ["<", ">", "0", "1", "2"]  # the unit order of the authors' file
    # 'k' of "aback" (index 3): velar stop, unvoiced, stress '<' (unit 21)
    assert units(y[3]) == {"velar", "stop"} and y[3, 21] == 1
    assert units(y[4]) == {"silent", "elide"}  # the silent 'k' -> '-'
    ones = torch.cat([y, ds.test.tensors[1]]).sum(1)
    assert ones.min() >= 3 and ones.max() <= 6
    assert ds.metric == "nettalk-cosine" and ds.notes["words"] == "all"
    # file order: "aback" (5) + "abbe" (4) + the 't' of "the" train; the test split starts at its 'h'
    assert ds.test.tensors[0][0].reshape(7, 27).argmax(-1).tolist()[3] == ord("h") - ord("a")
    shuffled = load_dataset("nettalk", tmp_path, n_train=10, n_test=5)  # words permuted with seed 0
    both = lambda d: sorted(map(tuple, torch.cat([d.train.tensors[0], d.test.tensors[0]]).tolist()))  # noqa: E731
    assert both(shuffled) == both(ds) and not torch.equal(shuffled.train.tensors[0], x)
    with pytest.raises(DataFileError, match="yields 15 windows"):
        load_dataset("nettalk", tmp_path)  # default 5033 + 500


def test_common_words_and_the_authors_window_split(tmp_path):
    write_data(tmp_path, DATA + "the\tDx-\t>0<\t0\nab\t@b\t1<\t0\n")  # a second pronunciation of "the"
    write_list(tmp_path, ["the", "cab", "zebra", "abbe"])  # "zebra" is not in the data file
    assert read_nettalk_list(tmp_path / "NETtalk" / "nettalk.list") == ["the", "cab", "zebra", "abbe"]
    ds = load_dataset("nettalk", tmp_path, n_test=3, split_seed="none")  # words="auto": the list is there
    assert ds.notes["words"] == "common" and ds.notes["list_words_missing"] == 1
    assert ds.notes["entries"] == 3 and ds.notes["windows"] == 10  # the (first) + cab + abbe, list order
    x = torch.cat([ds.train.tensors[0], ds.test.tensors[0]])
    centres = "".join(chr(ord("a") + int(i)) for i in x.reshape(-1, 7, 27).argmax(-1)[:, 3])
    assert centres == "thecababbe" and len(ds.test) == 3  # split_seed none: the last 3 windows test
    assert units(ds.train.tensors[1][0]) == {"dental", "fricative", "voiced"}  # 'D' of the first "the"
    drawn = load_dataset("nettalk", tmp_path, n_test=3, split_seed=1)
    test_at = np.sort(np.random.RandomState(1).permutation(10)[:3])
    assert torch.equal(drawn.test.tensors[0], x[test_at]) and len(drawn.train) == 7
    kept = [i for i in range(10) if i not in test_at]
    assert torch.equal(drawn.train.tensors[0], x[kept])  # the rest, in corpus order
    assert len(load_dataset("nettalk", tmp_path, n_train=4, n_test=3).train) == 4
    assert load_dataset("nettalk", tmp_path, words="all", n_train=10, n_test=5).notes["words"] == "all"
    (tmp_path / "NETtalk" / "nettalk.list").unlink()
    assert load_dataset("nettalk", tmp_path, n_train=10, n_test=5).notes["words"] == "all"
    with pytest.raises(DataFileError, match="nettalk.list\n.*Obtain it from.*\n.*words=all"):
        load_dataset("nettalk", tmp_path, words="common", n_test=3)
    (tmp_path / "NETtalk" / "nettalk.list").write_text("Note\n***\n(THE CAB")
    with pytest.raises(DataFileError, match="never closed"):
        load_dataset("nettalk", tmp_path, n_test=3)
    with pytest.raises(ValueError, match="words must be"):
        load_dataset("nettalk", tmp_path, words="some")


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
    assert ds.metric == "nettalk-cosine"
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
