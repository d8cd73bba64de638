"""DVS128 Gesture and CIFAR10-DVS, read from their AEDAT files.

**DVS128 Gesture** (``DvsGesture/``: ``user<NN>_<lighting>.aedat`` (AEDAT 3.1) with
``user<NN>_<lighting>_labels.csv`` (``class,startTime_usec,endTime_usec``, classes 1-11 ->
0-10) and the official ``trials_to_train.txt`` / ``trials_to_test.txt``).  One sample per
labelled gesture: the events with ``start <= t < end``.

* ``dvsgesture`` (BRP / NRR, the [A] default of the spec for their unreleased 32x32x100 file):
  polarities merged, 4x4 spatial sum-pooling to 32x32, 1,800 one-ms bins from the gesture
  start merged into 100 frames of 18 ms, binarised: ``x [N, 100, 1024]`` uint8.
* ``dvsgesture-plif``: 20 frames "split by number", event counts, ``x [N, 20, 2, 128, 128]`` int16
  (int32 when a count exceeds 32,767, see :func:`~spikedyn.data.events.narrow_counts`).

**CIFAR10-DVS** (``CIFAR10DVS/<class>/cifar10_<class>_<index>.aedat``, AEDAT 2.0; classes in the
usual CIFAR-10 order): per class, files sorted by index, the first 900 train and the last
100 test.  ``cifar10dvs``: 20 frames split by number, counts on 2x128x128 (``pool`` > 1
sum-pools; the full set at pool 1 takes ~13 GB as int16).  ``orientation="raw"`` keeps the
sensor's address bits; ``"spikingjelly"`` applies today's SpikingJelly correction
(``x' = 127 - y``, ``y' = 127 - x``, ``p' = 1 - p``); the 2020 version the PLIF authors ran is
not known to have had it, so ``raw`` is the default.

Why not ``tonic``: its ``DVSGesture`` class reads re-packaged ``.npy`` files and its
``CIFAR10DVS`` class ``.aedat4`` re-conversions (both downloaded from its own mirrors), not the
original AEDAT 3.1 / 2.0 files, and it pulls in librosa (numba, llvmlite), h5py, importRosbag and
expelliarmus.  The two formats are a few dozen lines each (:mod:`spikedyn.data.aedat`), so no
extra dependency is needed.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import TensorDataset
from tqdm.auto import tqdm
from ..progress import bar_disabled

from .aedat import read_aedat2, read_aedat31
from .base import DataFileError, SpikeDataset, corrupt_file, find_first, missing_file, register_dataset
from .events import frames_by_count, frames_by_time, make_events, narrow_counts

GESTURE_SOURCE = "https://research.ibm.com/interactive/dvsgesture/ (DvsGesture.tar.gz, extracted)"
CIFAR10DVS_SOURCE = "https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671 (per-class zips, extracted)"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _gesture_folder(root: Path) -> Path:
    folder = find_first([Path(root) / "DvsGesture", Path(root) / "DVSGesture", Path(root) / "dvsgesture"])
    if folder is None:
        raise missing_file(Path(root) / "DvsGesture", "dvsgesture", GESTURE_SOURCE,
                           f"{Path(root) / 'DvsGesture'}/user01_fluorescent.aedat, ..._labels.csv, trials_to_train.txt, trials_to_test.txt")
    return folder


def read_gesture_labels(path: Path) -> list[tuple[int, int, int]]:
    """``(class 0-10, start_us, end_us)`` rows of a ``*_labels.csv`` file."""
    if not path.exists():
        raise missing_file(path, "dvsgesture", GESTURE_SOURCE, "beside its .aedat file")
    rows = []
    with open(path, newline="") as fh:
        for n, row in enumerate(csv.reader(fh), 1):
            if n == 1 or not row:
                continue
            try:
                label, start, end = int(row[0]), int(row[1]), int(row[2])
            except (ValueError, IndexError) as exc:
                raise corrupt_file(path, "dvsgesture", f"line {n} is not 'class,start,end': {row}", GESTURE_SOURCE) from exc
            if not 1 <= label <= 11:
                raise corrupt_file(path, "dvsgesture", f"line {n}: class {label} outside 1..11", GESTURE_SOURCE)
            rows.append((label - 1, start, end))
    return rows


def gesture_samples(
    root: Path, encode: Callable[[np.ndarray, int], np.ndarray], dtype: type, name: str, progress: bool,
) -> SpikeDataset:
    """One sample per labelled gesture of the official trials; ``encode(events, start_us)`` -> frames."""
    folder = _gesture_folder(root)
    splits = {}
    for split in ("train", "test"):
        listing = folder / f"trials_to_{split}.txt"
        if not listing.exists():
            raise missing_file(listing, name, GESTURE_SOURCE, f"{folder}/trials_to_{split}.txt")
        trials = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        xs, ys = [], []
        for trial in tqdm(trials, desc=f"{name} {split}", disable=bar_disabled(progress), leave=False):
            aedat = folder / trial
            if not aedat.exists():
                raise missing_file(aedat, name, GESTURE_SOURCE, f"{folder}/{trial} (listed in {listing.name})")
            events = read_aedat31(aedat, name, GESTURE_SOURCE)
            for label, start, end in read_gesture_labels(aedat.with_name(aedat.stem + "_labels.csv")):
                sample = events[(events["t"] >= start) & (events["t"] < end)]
                if len(sample) == 0:
                    raise DataFileError(f"{name}: {aedat} has no events in gesture [{start}, {end}) of class {label + 1}")
                xs.append(narrow_counts(encode(sample, start), dtype))
                ys.append(label)
        splits[split] = TensorDataset(torch.from_numpy(np.stack(xs)), torch.tensor(ys, dtype=torch.int64))
    return SpikeDataset(name, splits["train"], splits["test"], 11, kind="sequence", encoder="direct", source=str(folder))


@register_dataset("dvsgesture")
def load_dvsgesture(root: Path, steps: int = 100, bin_ms: int = 18, pool: int = 4, flatten: bool = True, progress: bool = True) -> SpikeDataset:
    """BRP/NRR frames: merged polarity, ``pool`` x ``pool`` sum-pooling, ``steps`` bins of ``bin_ms``, binary."""

    def encode(ev: np.ndarray, start: int) -> np.ndarray:
        f = frames_by_time(ev, steps, bin_ms * 1000, (128, 128), t0=start, pool=pool, merge_polarity=True, binary=True)
        return f.reshape(steps, -1) if flatten else f

    return gesture_samples(root, encode, np.uint8, "dvsgesture", progress)


@register_dataset("dvsgesture-plif")
def load_dvsgesture_plif(root: Path, steps: int = 20, progress: bool = True) -> SpikeDataset:
    """PLIF frames: ``steps`` frames split by number, counts on 2x128x128."""
    return gesture_samples(root, lambda ev, start: frames_by_count(ev, steps, (128, 128)), np.int16, "dvsgesture-plif", progress)


@register_dataset("cifar10dvs")
def load_cifar10dvs(
    root: Path, steps: int = 20, pool: int = 1, train_per_class: int = 900, orientation: str = "raw", progress: bool = True,
) -> SpikeDataset:
    """PLIF frames of CIFAR10-DVS with the fixed per-class split (first 900 train, rest test)."""
    if orientation not in ("raw", "spikingjelly"):
        raise ValueError(f"cifar10dvs: orientation must be 'raw' or 'spikingjelly', got {orientation!r}")
    folder = find_first([Path(root) / "CIFAR10DVS", Path(root) / "cifar10dvs", Path(root) / "CIFAR10-DVS"])
    if folder is None:
        raise missing_file(Path(root) / "CIFAR10DVS", "cifar10dvs", CIFAR10DVS_SOURCE,
                           f"{Path(root) / 'CIFAR10DVS'}/<class>/cifar10_<class>_<index>.aedat")
    parts = {"train": ([], []), "test": ([], [])}
    for label, cls in enumerate(CIFAR10_CLASSES):
        files = list((folder / cls).glob("*.aedat")) if (folder / cls).is_dir() else []
        if not files:
            raise missing_file(folder / cls, "cifar10dvs", CIFAR10DVS_SOURCE, f"{folder / cls}/cifar10_{cls}_0.aedat ...")
        files.sort(key=lambda p: int(re.findall(r"\d+", p.stem)[-1]) if re.findall(r"\d+", p.stem) else -1)
        for i, path in enumerate(tqdm(files, desc=f"cifar10dvs {cls}", disable=bar_disabled(progress), leave=False)):
            events = read_aedat2(path, "cifar10dvs", CIFAR10DVS_SOURCE)
            if orientation == "spikingjelly":
                events = make_events(events["t"], 127 - events["y"], 127 - events["x"], 1 - events["p"])
            frames = frames_by_count(events, steps, (128, 128), pool=pool)
            xs, ys = parts["train" if i < train_per_class else "test"]
            xs.append(narrow_counts(frames, np.int16))
            ys.append(label)
    splits = {
        split: TensorDataset(torch.from_numpy(np.stack(xs)), torch.tensor(ys, dtype=torch.int64))
        for split, (xs, ys) in parts.items()
    }
    return SpikeDataset("cifar10dvs", splits["train"], splits["test"], 10, kind="sequence", encoder="direct", source=str(folder),
                        notes={"orientation": orientation, "pool": pool})
