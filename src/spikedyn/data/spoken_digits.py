"""Spoken-digit sets through the CASIA TIDigits spectrogram pipeline.

Both return ``kind="sequence"`` tensors ``x [N, F, F]`` (float32): step ``t`` feeds frame ``t``'s
``F`` mel-band energies (``time_axis="frames"``, default, the papers' intent), or with
``time_axis="bands"`` step ``t`` feeds band ``t`` over all frames, reproducing the authors'
code, which fills a ``[bands, frames]`` array with a ``[frames, bands]`` matrix.  Labels are the
digits 0-9.  See :func:`spikedyn.data.audio.spectrogram_frames` for the features.

* **TIDigits** (LDC93S10 layout ``.../{train,test}/{man,woman,boy,girl}/<speaker>/<digit><a|b>.wav``,
  NIST SPHERE or RIFF; also the endpointed copies ``<speaker>/<DIGIT><A|B>_endpt.wav`` the authors
  used): every isolated-digit utterance (one digit character, then ``a``/``b``), except "oh"
  (``o``); ``z`` -> 0.  **One utterance, one sample**: files are grouped by (speaker folder, digit,
  repetition), case-insensitively, and when a folder holds both ``1a.wav`` and ``1A_endpt.wav``
  only one is read: the endpointed copy by default (``prefer="endpt"``: the authors' code was run
  on the endpointed copies, its sort-key comment reads ``BH/1A_endpt.wav``, and its label and
  "oh" tests compare the upper-case first letter of those names), or the raw recording with
  ``prefer="raw"``.  The number of files left out this way is recorded in the data set's
  notes (``duplicates_dropped``, shown by ``spikedyn data info``).  Split as the authors' code:
  utterances sorted by (digit character, speaker folder, repetition letter), permuted with
  ``np.random.seed(42)``, first ``int(0.7 N)`` train, rest test.
  ``groups`` keeps only files under the named speaker-group folders (``("man", "woman")`` or
  ``"man,woman"``).
  ``F = 30`` (MDN, BRP) or ``39`` (NRR).  The paper reports 4,144 samples; which subset of the
  LDC corpus that is was not published, so all isolated digits are used by default.
* **FSDD** (Free Spoken Digit Dataset, ``fsdd/recordings/{digit}_{speaker}_{index}.wav``, 8 kHz):
  ``split="official"``: index 0-4 test (300), 5-49 train (2,700); ``split="speaker"``: the
  recordings of ``test_speaker`` (default ``theo``) test, the other five speakers train.
  The release has 3,000 recordings: 6 speakers (:data:`FSDD_SPEAKERS`) x 10 digits x 50
  repetitions (index 0-49).  The loader checks the folder against that list: the file names of
  ``fsdd/files.csv`` (column ``file``) when that listing is present, else every digit and
  index of each speaker found (a release without some of the six speakers, such as an older
  one, gives a warning naming them).  Missing recordings are an error naming them, unless
  ``complete=False``, which trains on the files present with a warning.
"""

from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset
from tqdm.auto import tqdm
from ..progress import bar_disabled

from .audio import read_audio, spectrogram_frames
from .base import DataFileError, SpikeDataset, missing_file, register_dataset
from .cache import cached_features

TIDIGITS_SOURCE = "the Linguistic Data Consortium, catalogue LDC93S10 (TIDIGITS, licensed)"
FSDD_SOURCE = "https://github.com/Jakobovski/free-spoken-digit-dataset (folder recordings/)"
_TIDIGITS_LABELS = {"z": 0, **{str(d): d for d in range(1, 10)}}


def _images(paths: list[Path], frames: int, dataset: str, obtain: str, time_axis: str, progress: bool) -> torch.Tensor:
    """``[N, F, F]`` spectrograms of ``paths`` (from the feature cache when these files were seen before)."""
    if time_axis not in ("frames", "bands"):
        raise ValueError(f"time_axis must be 'frames' or 'bands', got {time_axis!r}")

    def compute() -> np.ndarray:
        out = np.empty((len(paths), frames, frames), dtype=np.float32)
        for i, path in enumerate(tqdm(paths, desc=f"{dataset} features", disable=bar_disabled(progress), leave=False)):
            signal, rate = read_audio(path, dataset, obtain)
            if len(signal) == 0:
                raise DataFileError(f"{dataset}: {path} holds no samples; replace it from {obtain}")
            image = spectrogram_frames(signal, rate, frames, frames)
            out[i] = image.T if time_axis == "bands" else image
        return out

    options = {"frames": frames, "time_axis": time_axis}
    return torch.from_numpy(cached_features(f"{dataset}-spectrogram", options, paths, compute))


_TIDIGITS_NAME = re.compile(r"^([zo1-9])([ab])(_endpt)?$", re.IGNORECASE)
TIDIGITS_PREFER = ("endpt", "raw")


def tidigits_scan(
    root: Path, groups: tuple[str, ...] | str | None = None, prefer: str = "endpt",
) -> tuple[list[tuple[Path, int]], list[Path]]:
    """Isolated-digit utterances under a TIDigits tree, one file each, and the duplicate files left out.

    Reads file names only.  A file counts when its suffix is ``.wav`` (any case) and its stem is
    one digit character (``z``, ``1``-``9``; ``o`` = "oh" is skipped), one repetition letter
    (``a``/``b``) and optionally ``_endpt``, in any case.  With ``groups``, only files with one of
    the named folders (e.g. ``man``) among their parent folders count.

    Files of the same utterance, i.e. the same (speaker folder relative to ``root``, digit,
    repetition) compared case-insensitively, are one sample: of ``1a.wav`` and ``1A_endpt.wav``
    the endpointed copy is kept with ``prefer="endpt"`` and the raw recording with
    ``prefer="raw"``; among copies of the same kind the first by path is kept.  The others are
    returned as the second element, sorted by path.

    The kept files come in the order of the authors' sort key, ``(name[0], speaker folder,
    name[1])``, compared case-insensitively (the same order as the authors' on their upper-case
    names); the full path breaks ties so the order never depends on the file system.
    """
    if prefer not in TIDIGITS_PREFER:
        raise ValueError(f"tidigits: prefer must be one of {TIDIGITS_PREFER}, got {prefer!r}")
    if isinstance(groups, str):  # "man,woman" from the command line
        groups = tuple(g for g in groups.split(",") if g)
    wanted = {g.strip().lower() for g in groups} if groups else None
    utterances: dict[tuple[str, str, str], list[Path]] = {}
    for path in root.rglob("*"):
        match = _TIDIGITS_NAME.match(path.stem) if path.suffix.lower() == ".wav" else None
        if match is None or match.group(1).lower() == "o":
            continue
        folders = path.relative_to(root).parts[:-1]
        if wanted is not None and not wanted & {part.lower() for part in folders}:
            continue
        key = ("/".join(folders).lower(), match.group(1).lower(), match.group(2).lower())
        utterances.setdefault(key, []).append(path)
    kept, dropped = [], []
    for copies in utterances.values():
        # endpointed first for "endpt", raw first for "raw"; then by path
        copies.sort(key=lambda p: (p.stem.lower().endswith("_endpt") != (prefer == "endpt"), str(p)))
        kept.append(copies[0])
        dropped.extend(copies[1:])
    kept.sort(key=lambda p: (p.name[0].lower(), p.parent.name.lower(), p.name[1].lower(), str(p)))
    return [(p, _TIDIGITS_LABELS[p.name[0].lower()]) for p in kept], sorted(dropped, key=str)


def tidigits_files(
    root: Path, groups: tuple[str, ...] | str | None = None, prefer: str = "endpt",
) -> list[tuple[Path, int]]:
    """Isolated-digit utterances (not "oh") under a TIDigits tree with their labels, in the authors' order.

    One file per utterance; see :func:`tidigits_scan` for the rules and the files left out.
    """
    return tidigits_scan(root, groups, prefer)[0]


@register_dataset("tidigits")
def load_tidigits(
    root: Path, frames: int = 30, time_axis: str = "frames", groups: tuple[str, ...] | str | None = None,
    prefer: str = "endpt", progress: bool = True,
) -> SpikeDataset:
    """TIDigits isolated digits as ``[N, frames, frames]`` spectrogram sequences (70/30 split, seed 42).

    Reads ``root/TIDIGITS`` (or ``root/tidigits``): one file per utterance, the endpointed copy
    when both are present (``prefer="raw"`` keeps the raw recording instead), see
    :func:`tidigits_scan`.  ``notes`` records ``prefer`` and ``duplicates_dropped``, the number
    of files not read because another copy of the same utterance was.
    """
    folder = next((p for p in (Path(root) / "TIDIGITS", Path(root) / "tidigits") if p.is_dir()), None)
    files, dropped = tidigits_scan(folder, groups, prefer) if folder else ([], [])
    if not files:
        raise missing_file(
            Path(root) / "TIDIGITS", "tidigits", TIDIGITS_SOURCE,
            f"{Path(root) / 'TIDIGITS'}/<train|test>/<man|woman|boy|girl>/<speaker>/<digit>a.wav (SPHERE or RIFF)",
        )
    x = _images([p for p, _ in files], frames, "tidigits", TIDIGITS_SOURCE, time_axis, progress)
    y = torch.tensor([label for _, label in files], dtype=torch.int64)
    perm = torch.from_numpy(np.random.RandomState(42).permutation(len(files)))
    n_train = int(0.7 * len(files))
    tr, te = perm[:n_train], perm[n_train:]
    notes = {
        "frames": frames, "time_axis": time_axis, **({"groups": groups} if groups else {}),
        "prefer": prefer, "duplicates_dropped": len(dropped),
    }
    return SpikeDataset(
        "tidigits", TensorDataset(x[tr], y[tr]), TensorDataset(x[te], y[te]), 10, kind="sequence",
        encoder="direct", source=str(folder), notes=notes,
    )


_FSDD_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")
#: the speakers of the FSDD release (v1.0.10): 6 x 10 digits x 50 repetitions = 3,000 recordings.
FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
FSDD_REPETITIONS = 50


def fsdd_expected_files(folder: Path, speakers: set[str]) -> tuple[set[str], str]:
    """The recordings the FSDD folder should hold, and where that list comes from.

    ``folder`` is ``fsdd/recordings``: the ``file`` column of ``fsdd/files.csv`` when present,
    else every digit 0-9 and index 0-49 of each speaker in ``speakers`` (those found).
    """
    listing = folder.parent / "files.csv"
    if listing.is_file():
        try:
            with open(listing, newline="") as fh:
                names = {row["file"].strip() for row in csv.DictReader(fh) if row.get("file")}
        except (OSError, KeyError, csv.Error, UnicodeDecodeError):
            names = set()
        if names:
            return names, f"the {len(names)} files listed in {listing}"
    names = {f"{d}_{s}_{i}.wav" for s in speakers for d in range(10) for i in range(FSDD_REPETITIONS)}
    return names, f"10 digits x {FSDD_REPETITIONS} repetitions of each of the {len(speakers)} speakers found"


def check_fsdd_complete(folder: Path, found: set[str], speakers: set[str], complete: bool) -> int:
    """Compare the recordings found with the release's list; returns the number missing.

    Missing files are a :class:`DataFileError` naming them (a warning with ``complete=False``);
    speakers of the release absent altogether (when no ``files.csv`` lists them) a warning.
    """
    expected, origin = fsdd_expected_files(folder, speakers)
    missing = sorted(expected - found)
    absent = sorted(set(FSDD_SPEAKERS) - speakers)
    if absent and not (folder.parent / "files.csv").is_file():
        warnings.warn(
            f"fsdd: {folder} holds no recordings of the speaker(s) {', '.join(absent)}; the current release has "
            f"{len(FSDD_SPEAKERS)} speakers and 3000 recordings (an older release?). Results will not compare with "
            f"runs on the full set; the files are at {FSDD_SOURCE}.",
            stacklevel=3,
        )
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        text = f"fsdd: {len(missing)} of {origin} are missing from {folder}: {shown}."
        if complete:
            raise DataFileError(
                f"{text} Training on the rest would silently use another data set. Restore the missing files "
                f"from {FSDD_SOURCE}, or pass --data-option complete=false (complete=False in Python) to use the "
                f"recordings present."
            )
        warnings.warn(f"{text} Using the {len(found)} recordings present (complete=False).", stacklevel=3)
    return len(missing)


@register_dataset("fsdd")
def load_fsdd(
    root: Path, frames: int = 30, split: str = "official", test_speaker: str = "theo", time_axis: str = "frames",
    progress: bool = True, complete: bool = True,
) -> SpikeDataset:
    """Free Spoken Digit Dataset as ``[N, frames, frames]`` spectrogram sequences.

    ``complete=True`` requires every recording of the release (see the module docstring);
    ``complete=False`` uses the files present and records the number missing in the notes.
    """
    folder = Path(root) / "fsdd" / "recordings"
    if not folder.is_dir():
        raise missing_file(folder, "fsdd", FSDD_SOURCE, f"{folder}/<digit>_<speaker>_<index>.wav")
    entries = []
    for path in sorted(folder.iterdir()):
        match = _FSDD_NAME.match(path.name)
        if match is None:
            if path.suffix.lower() == ".wav":
                raise DataFileError(f"fsdd: unexpected file name {path}; FSDD files are named <digit>_<speaker>_<index>.wav")
            continue
        entries.append((path, int(match.group(1)), match.group(2), int(match.group(3))))
    if not entries:
        raise missing_file(folder / "0_george_0.wav", "fsdd", FSDD_SOURCE, f"{folder}/<digit>_<speaker>_<index>.wav")
    missing = check_fsdd_complete(folder, {p.name for p, *_ in entries}, {s for _, _, s, _ in entries}, complete)
    if split == "official":
        is_test = [index < 5 for _, _, _, index in entries]
    elif split == "speaker":
        speakers = sorted({s for _, _, s, _ in entries})
        if test_speaker not in speakers:
            raise ValueError(f"fsdd: test_speaker {test_speaker!r} not among the speakers {speakers}")
        is_test = [speaker == test_speaker for _, _, speaker, _ in entries]
    else:
        raise ValueError(f"fsdd: split must be 'official' or 'speaker', got {split!r}")
    x = _images([p for p, *_ in entries], frames, "fsdd", FSDD_SOURCE, time_axis, progress)
    y = torch.tensor([d for _, d, _, _ in entries], dtype=torch.int64)
    test = torch.tensor(is_test)
    return SpikeDataset(
        "fsdd", TensorDataset(x[~test], y[~test]), TensorDataset(x[test], y[test]), 10, kind="sequence",
        encoder="direct", source=str(folder),
        notes={"frames": frames, "split": split, "time_axis": time_axis, **({"test_speaker": test_speaker} if split == "speaker" else {}),
               **({"missing_recordings": missing} if missing else {})},
    )
