"""The audio feature cache: reused while the files and options are the same, never stale, safe to delete."""

import numpy as np
import pytest

from spikedyn.cli import main
from spikedyn.data.cache import cache_key, cached_features


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("SPIKEDYN_CACHE", str(folder))
    return folder


def test_second_call_reads_the_cache_and_a_changed_file_recomputes(tmp_path, cache):
    files = [tmp_path / "a.wav", tmp_path / "b.wav"]
    for f in files:
        f.write_bytes(b"x" * 10)
    calls = []

    def compute():
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(2, 3) * len(calls)

    first = cached_features("fsdd-spectrogram", {"frames": 3}, files, compute)
    again = cached_features("fsdd-spectrogram", {"frames": 3}, files, compute)
    assert len(calls) == 1 and np.array_equal(first, again)
    other = cached_features("fsdd-spectrogram", {"frames": 4}, files, compute)  # other options: another entry
    assert len(calls) == 2 and not np.array_equal(first, other)
    files[1].write_bytes(b"y" * 11)  # a changed file gives a new key
    cached_features("fsdd-spectrogram", {"frames": 3}, files, compute)
    assert len(calls) == 3
    assert not list((cache / "features").glob(".*tmp*")), "no temporary file left"


def test_damaged_entry_is_recomputed_and_cache_can_be_turned_off(tmp_path, cache, monkeypatch):
    f = tmp_path / "a.wav"
    f.write_bytes(b"x")
    cached_features("d", {}, [f], lambda: np.ones(2, dtype=np.float32))
    (entry,) = (cache / "features").glob("*.npy")
    entry.write_bytes(b"garbage")
    assert np.array_equal(cached_features("d", {}, [f], lambda: np.zeros(2, dtype=np.float32)), np.zeros(2))
    monkeypatch.setenv("SPIKEDYN_CACHE", "off")
    calls = []
    for _ in range(2):
        cached_features("d", {}, [f], lambda: calls.append(1) or np.ones(1))
    assert len(calls) == 2
    assert cache_key("d", {}, [f]) == cache_key("d", {}, [f])


def test_fsdd_features_come_back_identical_from_the_cache(data_root, cache, capsys):
    from spikedyn.data import load_dataset

    if not (data_root / "fsdd").is_dir():
        pytest.skip("FSDD not in the data folder")
    first = load_dataset("fsdd", data_root, progress=False)
    assert len(list((cache / "features").glob("*.npy"))) == 1
    second = load_dataset("fsdd", data_root, progress=False)
    assert np.array_equal(first.train.tensors[0].numpy(), second.train.tensors[0].numpy())
    assert main(["data", "cache"]) == 0 and "1 file(s)" in capsys.readouterr().out
    assert main(["data", "cache", "--clear"]) == 0 and "deleted 1" in capsys.readouterr().out
