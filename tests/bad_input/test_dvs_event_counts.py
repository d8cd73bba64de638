"""Event counts above 32,767 in one pixel and frame are kept (a wider integer type), never wrapped."""

import numpy as np
import torch
from bad_input_helpers import write_nmnist_bin

from spikedyn.data import load_dataset
from spikedyn.data.events import frames_by_count, make_events, narrow_counts

MANY = 40_000


def test_narrow_counts_widens_instead_of_wrapping():
    ev = make_events(np.arange(MANY), np.full(MANY, 3), np.full(MANY, 4), np.ones(MANY))
    frames = narrow_counts(frames_by_count(ev, 1, (8, 8)), np.int16)
    assert frames.dtype == np.int32 and frames[0, 1, 4, 3] == MANY
    assert narrow_counts(np.array([0, 5]), np.int16).dtype == np.int16  # the compact type when it fits


def test_nmnist_plif_file_with_40000_events_in_one_pixel(tmp_path):
    write_nmnist_bin(tmp_path / "NMNIST" / "Train" / "2" / "00001.bin", [(5, 6, 1, t) for t in range(MANY)])
    write_nmnist_bin(tmp_path / "NMNIST" / "Test" / "2" / "00001.bin", [(1, 1, 0, 7)])
    ds = load_dataset("nmnist-plif", tmp_path, steps=1, progress=False)
    x = ds.train.tensors[0]
    assert x.dtype == torch.int32 and int(x[0, 0, 1, 6, 5]) == MANY and int(x.min()) >= 0
