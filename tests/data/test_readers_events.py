"""N-MNIST (.bin), AEDAT 3.1 (DVS128 Gesture), AEDAT 2.0 (CIFAR10-DVS) and the frame encoders."""

import numpy as np
import pytest
import torch
from writers import write_aedat2, write_aedat31, write_nmnist_bin

from spikedyn.data import DataFileError, load_dataset
from spikedyn.data.aedat import read_aedat2, read_aedat31
from spikedyn.data.events import frames_by_count, frames_by_time, make_events
from spikedyn.data.nmnist import read_nmnist_bin


def test_frames_by_count_splits_by_number_with_remainder_in_last_frame():
    ev = make_events(np.arange(7) * 10, [0, 1, 1, 0, 1, 0, 1], [0, 0, 1, 1, 0, 0, 0], [1, 0, 1, 1, 0, 1, 1])
    f = frames_by_count(ev, 3, (2, 2))  # 7 // 3 = 2 per frame, last frame takes 3
    assert f.shape == (3, 2, 2, 2)
    assert f.sum(axis=(1, 2, 3)).tolist() == [2, 2, 3]
    assert f[0, 1, 0, 0] == 1 and f[0, 0, 0, 1] == 1  # (x0,y0,ON) and (x1,y0,OFF)
    merged = frames_by_count(ev, 3, (2, 2), merge_polarity=True)
    assert merged.shape == (3, 1, 2, 2) and merged.sum() == 7


def test_frames_by_time_bins_occupancy_pooling_and_window():
    ev = make_events([0, 5, 14, 15, 31, 100], [0, 0, 3, 2, 1, 0], [0, 0, 3, 1, 1, 0], [1, 1, 0, 1, 1, 1])
    f = frames_by_time(ev, 3, 15, (4, 4), t0=0)
    assert f.shape == (3, 2, 4, 4)
    assert f[0, 1, 0, 0] == 2 and f[0, 0, 3, 3] == 1 and f[1, 1, 1, 2] == 1 and f[2, 1, 1, 1] == 1
    assert f.sum() == 5  # t = 100 is past the 3-bin window
    assert frames_by_time(ev, 3, 15, (4, 4), t0=0, binary=True)[0, 1, 0, 0] == 1
    pooled = frames_by_time(ev, 3, 15, (4, 4), t0=0, pool=2, merge_polarity=True)
    assert pooled.shape == (3, 1, 2, 2) and pooled[0, 0, 0, 0] == 2 and pooled[0, 0, 1, 1] == 1
    shifted = frames_by_time(ev, 3, 15, (6, 6), t0=0, offset=1)
    assert shifted[0, 1, 1, 1] == 2
    with pytest.raises(ValueError, match="out of range"):
        frames_by_time(ev, 3, 15, (2, 2), t0=0)


def nmnist_fixture(root):
    # digit 3: two events; digit 7: events in bins 0 and 19 (t = 285,000 us), one beyond the window
    write_nmnist_bin(root / "NMNIST" / "Train" / "3" / "00001.bin", [(0, 0, 1, 10), (33, 33, 0, 20_000)])
    write_nmnist_bin(root / "NMNIST" / "Train" / "7" / "00002.bin", [(5, 6, 1, 0), (5, 6, 1, 285_000), (1, 1, 0, 400_000)])
    write_nmnist_bin(root / "NMNIST" / "Test" / "1" / "00001.bin", [(2, 2, 0, 100)])


def test_nmnist_bin_decoding(tmp_path):
    path = write_nmnist_bin(tmp_path / "a.bin", [(33, 2, 1, 0x7FFFFF), (0, 33, 0, 70_000)])
    ev = read_nmnist_bin(path)
    assert ev["x"].tolist() == [33, 0] and ev["y"].tolist() == [2, 33]
    assert ev["p"].tolist() == [1, 0] and ev["t"].tolist() == [0x7FFFFF, 70_000]


def test_nmnist_mdn_and_plif_variants(tmp_path):
    nmnist_fixture(tmp_path)
    ds = load_dataset("nmnist", tmp_path, progress=False)
    x, y = ds.train.tensors
    assert x.shape == (2, 20, 2592) and x.dtype == torch.uint8 and y.tolist() == [3, 7]
    grid = x.reshape(2, 20, 2, 36, 36)
    assert grid[0, 0, 1, 1, 1] == 1  # (0,0) ON shifted by +1
    assert grid[0, 1, 0, 34, 34] == 1  # t = 20 ms -> bin 1
    assert grid[1, 19, 1, 7, 6] == 1 and grid[1].sum() == 2  # y=6,x=5 shifted; 400 ms is beyond 20 x 15 ms
    assert ds.test.tensors[0].shape == (1, 20, 2592) and ds.kind == "sequence"
    assert ds.source == str(tmp_path / "NMNIST")
    plif = load_dataset("nmnist-plif", tmp_path, progress=False)
    assert plif.train.tensors[0].shape == (2, 10, 2, 34, 34)
    assert plif.train.tensors[0][1].sum() == 3


def test_nmnist_errors(tmp_path):
    with pytest.raises(DataFileError, match="NMNIST/Train.*\n.*Obtain"):
        load_dataset("nmnist", tmp_path, progress=False)
    nmnist_fixture(tmp_path)
    bad = tmp_path / "NMNIST" / "Train" / "3" / "00001.bin"
    bad.write_bytes(bad.read_bytes()[:-2])
    with pytest.raises(DataFileError, match="00001.bin.*\n.*not a multiple of 5"):
        load_dataset("nmnist", tmp_path, progress=False)


def test_aedat31_reader(tmp_path):
    path = write_aedat31(tmp_path / "u.aedat", [(127, 0, 1, 5), (3, 100, 0, 7)], overflow=1)
    ev = read_aedat31(path)
    assert ev["x"].tolist() == [127, 3] and ev["y"].tolist() == [0, 100] and ev["p"].tolist() == [1, 0]
    assert ev["t"].tolist() == [(1 << 31) | 5, (1 << 31) | 7]
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(DataFileError, match="runs past the end"):
        read_aedat31(path)
    path.write_bytes(b"#!AER-DAT2.0\r\n")
    with pytest.raises(DataFileError, match="END-HEADER"):
        read_aedat31(path)


def gesture_fixture(root):
    folder = root / "DvsGesture"
    # trial 1: gesture class 3 in [1000, 5000) us, class 11 in [40000, 80000)
    write_aedat31(folder / "user01_led.aedat", [(0, 0, 1, 500), (4, 8, 1, 1000), (5, 9, 0, 2000), (127, 127, 1, 40000), (64, 64, 0, 60000)])
    (folder / "user01_led_labels.csv").write_text("class,startTime_usec,endTime_usec\n3,1000,5000\n11,40000,80000\n")
    write_aedat31(folder / "user02_led.aedat", [(10, 10, 1, 100)])
    (folder / "user02_led_labels.csv").write_text("class,startTime_usec,endTime_usec\n1,0,1000\n")
    (folder / "trials_to_train.txt").write_text("user01_led.aedat\n")
    (folder / "trials_to_test.txt").write_text("user02_led.aedat\n")
    return folder


def test_dvsgesture_variants(tmp_path):
    gesture_fixture(tmp_path)
    ds = load_dataset("dvsgesture", tmp_path, progress=False)
    x, y = ds.train.tensors
    assert x.shape == (2, 100, 1024) and y.tolist() == [2, 10] and ds.num_classes == 11
    frames = x.reshape(2, 100, 32, 32)
    assert frames[0, 0, 2, 1] == 1  # (x=4, y=8) at t=0 ms of the gesture -> (y//4, x//4)
    assert frames[0].sum() == 1  # (4,8) and (5,9) share a 4x4 cell and an 18 ms frame: binarised to 1
    assert frames[1, 0, 31, 31] == 1 and frames[1, 1, 16, 16] == 1  # 20 ms after start -> frame 1
    assert ds.test.tensors[1].tolist() == [0]
    plif = load_dataset("dvsgesture-plif", tmp_path, progress=False)
    assert plif.train.tensors[0].shape == (2, 20, 2, 128, 128) and plif.train.tensors[0][0].sum() == 2


def test_dvsgesture_errors(tmp_path):
    folder = gesture_fixture(tmp_path)
    (folder / "user02_led_labels.csv").write_text("class,startTime_usec,endTime_usec\n12,0,1000\n")
    with pytest.raises(DataFileError, match="class 12 outside"):
        load_dataset("dvsgesture", tmp_path, progress=False)
    (folder / "user02_led.aedat").unlink()
    with pytest.raises(DataFileError, match="user02_led.aedat"):
        load_dataset("dvsgesture", tmp_path, progress=False)


def test_aedat2_and_cifar10dvs(tmp_path):
    path = write_aedat2(tmp_path / "a.aedat", [(127, 3, 1, 10), (0, 127, 0, 20)])
    ev = read_aedat2(path)
    assert ev["x"].tolist() == [127, 0] and ev["y"].tolist() == [3, 127] and ev["p"].tolist() == [1, 0]
    from spikedyn.data.dvs import CIFAR10_CLASSES

    for label, cls in enumerate(CIFAR10_CLASSES):
        for i in range(3):
            write_aedat2(tmp_path / "CIFAR10DVS" / cls / f"cifar10_{cls}_{i}.aedat", [(label, i, 1, t) for t in range(5)])
    ds = load_dataset("cifar10dvs", tmp_path, train_per_class=2, progress=False)
    x, y = ds.train.tensors
    assert x.shape == (20, 20, 2, 128, 128) and ds.test.tensors[0].shape == (10, 20, 2, 128, 128)
    assert y.tolist() == [c for c in range(10) for _ in range(2)]
    assert ds.test.tensors[0][3, :, 1, 2, 3].sum() == 5  # class 3, file index 2 -> y = 2, x = 3
    sj = load_dataset("cifar10dvs", tmp_path, train_per_class=2, orientation="spikingjelly", progress=False)
    assert sj.test.tensors[0][3, :, 0, 127 - 3, 127 - 2].sum() == 5  # x' = 127 - y, y' = 127 - x, p' = 1 - p
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataFileError, match="not a multiple of 8"):
        read_aedat2(path)


def test_nmnist_alternative_folder_names(tmp_path):
    nmnist_fixture(tmp_path)
    (tmp_path / "NMNIST" / "Train").rename(tmp_path / "NMNIST" / "train")
    (tmp_path / "NMNIST").rename(tmp_path / "N-MNIST")
    ds = load_dataset("nmnist", tmp_path, progress=False)
    assert ds.train.tensors[1].tolist() == [3, 7] and ds.source == str(tmp_path / "N-MNIST")
