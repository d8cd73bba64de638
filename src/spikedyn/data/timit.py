"""TIMIT: the gender task (MDN) and the 39-phone frame task (NRR).

Layouts read:

* LDC: ``TIMIT/{TRAIN,TEST}/DR<n>/<speaker>/<utterance>.WAV`` (NIST SPHERE) with ``.PHN``
  (any letter case, any folders between ``TIMIT/`` and ``TRAIN``, e.g. ``TIMIT/data/TRAIN``); a
  converted ``<utterance>.WAV.wav`` beside the SPHERE file counts once.  The official train/test
  folders are the split (4,620 / 1,680 utterances of 462 / 168 speakers).
* NLTK sample: ``timit_sample/dr<n>-<speaker>/<utterance>.wav`` (RIFF, one SPHERE) with ``.phn``:
  160 utterances of 16 speakers (one female, one male per dialect region).  It has no official
  split; the default speaker-held-out split puts dialect regions 7 and 8 (4 speakers, 2 F + 2 M,
  40 utterances) in test and regions 1-6 (12 speakers, 120 utterances) in train.

Gender is the first letter of the speaker id (``f``/``m``): male = 1, female = 0.

* ``timit-gender`` (MDN): 13 MFCC incl. log-energy (25 ms / 10 ms, python_speech_features
  defaults as in the authors' code, i.e. a rectangular window: ``window="rect"``; ``"hamming"``
  optional), zero-padded to 800 frames (longer utterances raise an error) = 10,400 values, reshaped to 20 steps x 520 (40 consecutive frames x 13):
  ``x [N, 20, 520]``.  ``normalize=True`` (default) z-scores every value with the training
  split's mean/std; the authors' code instead passes training batches through a fresh
  BatchNorm (``normalize=False`` gives the raw MFCCs).
* ``timit-phones`` (NRR): 13 MFCC (Hamming window [A]; the LSNN features' window is not
  documented) + delta + delta-delta (``d_t = v_{t+1} - v_{t-1}``) = 39
  features per 10 ms frame, z-scored with training statistics, padded to ``max_frames`` (780)
  with zeros and label ``sil``; frame labels in the reduced 39-phone set (``sil`` = 0), the
  label of frame ``i`` being the phone that covers its centre sample ``160 i + 200``:
  ``x [N, 780, 39]``, ``y [N, 780]`` (``target="frame_class"``) and the number of real frames of
  each utterance, ``lengths [N]``, as the splits' third tensor (the trainer masks the padded
  frames out of the loss and the accuracy).  Utterances longer than ``max_frames`` raise an
  error rather than being cut silently.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset
from tqdm.auto import tqdm
from ..progress import bar_disabled

from .audio import deltas, mfcc, read_audio
from .base import DataFileError, SpikeDataset, corrupt_file, missing_file, register_dataset

SOURCE = "the Linguistic Data Consortium, catalogue LDC93S1 (TIMIT); the NLTK data package has a free 160-utterance sample"

#: the 39 reduced phones (Lee & Hon 1989), 'sil' first.
PHONES_39 = [
    "sil", "aa", "ae", "ah", "aw", "ay", "b", "ch", "d", "dh", "dx", "eh", "er", "ey", "f", "g", "hh", "ih", "iy",
    "jh", "k", "l", "m", "n", "ng", "ow", "oy", "p", "r", "s", "sh", "t", "th", "uh", "uw", "v", "w", "y", "z",
]
#: the 61 TIMIT phones folded onto the 39 (the glottal stop 'q' is folded into 'sil').
FOLD_61_TO_39 = {
    "ao": "aa", "ax": "ah", "ax-h": "ah", "axr": "er", "hv": "hh", "ix": "ih", "el": "l", "em": "m", "en": "n",
    "nx": "n", "eng": "ng", "zh": "sh", "ux": "uw", "pcl": "sil", "tcl": "sil", "kcl": "sil", "bcl": "sil",
    "dcl": "sil", "gcl": "sil", "h#": "sil", "pau": "sil", "epi": "sil", "q": "sil",
}
PHONE_INDEX = {p: i for i, p in enumerate(PHONES_39)}


def utterances(root: Path) -> tuple[list[dict], str]:
    """All utterances with speaker, gender, split and file paths; and the layout found."""
    root = Path(root)
    ldc = next((p for p in (root / "TIMIT", root / "timit") if p.is_dir()), None)
    items = []
    if ldc is not None:
        seen = set()
        for wav in sorted(p for p in ldc.rglob("*") if p.suffix.lower() == ".wav"):
            parts = [s.lower() for s in wav.relative_to(ldc).parts]
            if len(parts) < 4 or parts[-4] not in ("train", "test"):
                continue
            utterance = wav.name.split(".")[0].lower()
            key = (wav.parent, utterance)  # SA1.WAV (SPHERE) and a converted SA1.WAV.wav are one utterance
            if key in seen:
                continue
            seen.add(key)
            items.append({"wav": wav, "speaker": parts[-2], "region": parts[-3], "split": parts[-4]})
        layout = "ldc"
    elif (root / "timit_sample").is_dir():
        for folder in sorted((root / "timit_sample").iterdir()):
            match = re.match(r"^dr(\d)-([fm]\w+)$", folder.name)
            if match is None or not folder.is_dir():
                continue
            region = int(match.group(1))
            for wav in sorted(folder.glob("*.wav")):
                items.append({"wav": wav, "speaker": match.group(2), "region": f"dr{region}",
                              "split": "test" if region >= 7 else "train"})
        layout = "nltk-sample"
    else:
        raise missing_file(root / "TIMIT", "timit", SOURCE,
                           f"{root / 'TIMIT'}/{{TRAIN,TEST}}/DR*/<speaker>/*.WAV, or the NLTK sample at {root / 'timit_sample'}")
    if not items:
        raise missing_file(root / "TIMIT", "timit", SOURCE, "no utterance .wav files found under the TIMIT folder")
    for item in items:
        if item["speaker"][0] not in "fm":
            raise DataFileError(f"timit: speaker folder {item['wav'].parent} does not start with f/m (gender)")
        item["gender"] = 1 if item["speaker"][0] == "m" else 0
    return items, layout


def _mfcc_of(item: dict, window: str) -> np.ndarray:
    signal, rate = read_audio(item["wav"], "timit", SOURCE)
    return mfcc(signal, rate, window=window)


def _split(items: list[dict], *tensors: torch.Tensor) -> tuple[TensorDataset, TensorDataset]:
    test = torch.tensor([it["split"] == "test" for it in items])
    return TensorDataset(*(t[~test] for t in tensors)), TensorDataset(*(t[test] for t in tensors))


@register_dataset("timit-gender")
def load_timit_gender(
    root: Path, frames: int = 800, steps: int = 20, normalize: bool = True, window: str = "rect", progress: bool = True,
) -> SpikeDataset:
    """Gender classification: ``x [N, steps, frames*13/steps]`` MFCC blocks, y male=1."""
    if frames % steps:
        raise ValueError(f"timit-gender: frames={frames} is not a multiple of steps={steps}")
    items, layout = utterances(root)
    feats = np.zeros((len(items), frames, 13), dtype=np.float32)
    for i, item in enumerate(tqdm(items, desc="timit mfcc", disable=bar_disabled(progress), leave=False)):
        m = _mfcc_of(item, window)
        if len(m) > frames:
            raise ValueError(f"timit-gender: {item['wav']} has {len(m)} frames > frames={frames}; raise frames")
        feats[i, : len(m)] = m
    x = torch.from_numpy(feats.reshape(len(items), steps, -1))
    y = torch.tensor([it["gender"] for it in items], dtype=torch.int64)
    train, test = _split(items, x, y)
    if normalize:
        mean, std = train.tensors[0].mean(), train.tensors[0].std()
        train = TensorDataset((train.tensors[0] - mean) / std, train.tensors[1])
        test = TensorDataset((test.tensors[0] - mean) / std, test.tensors[1])
    speakers = {s: len({it["speaker"] for it in items if it["split"] == s}) for s in ("train", "test")}
    return SpikeDataset("timit-gender", train, test, 2, kind="sequence", encoder="direct", source=str(items[0]["wav"].parents[1]),
                        notes={"layout": layout, "speakers": speakers, "normalize": normalize, "window": window})


def read_phn(path: Path) -> list[tuple[int, int, str]]:
    """``.phn`` lines ``start end phone`` (samples)."""
    if not path.exists():
        raise missing_file(path, "timit", SOURCE, "beside its .wav file (same name, .phn / .PHN)")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            raise corrupt_file(path, "timit", f"line {n} is not 'start end phone': {line!r}", SOURCE)
        rows.append((int(parts[0]), int(parts[1]), parts[2].lower()))
    return rows


def frame_labels(phones: list[tuple[int, int, str]], n_frames: int, step: int = 160, centre: int = 200) -> np.ndarray:
    """39-phone label of each frame: the phone covering sample ``step * i + centre`` (else sil)."""
    labels = np.zeros(n_frames, dtype=np.int64)
    centres = step * np.arange(n_frames) + centre
    for start, end, phone in phones:
        folded = FOLD_61_TO_39.get(phone, phone)
        if folded not in PHONE_INDEX:
            raise ValueError(f"unknown TIMIT phone {phone!r}")
        labels[(centres >= start) & (centres < end)] = PHONE_INDEX[folded]
    return labels


@register_dataset("timit-phones")
def load_timit_phones(root: Path, max_frames: int = 780, window: str = "hamming", progress: bool = True) -> SpikeDataset:
    """39-phone frame classification: ``x [N, max_frames, 39]``, ``y [N, max_frames]``, ``lengths [N]``."""
    items, layout = utterances(root)
    xs, ys, lengths = [], [], []
    for item in tqdm(items, desc="timit mfcc", disable=bar_disabled(progress), leave=False):
        m = _mfcc_of(item, window)
        if len(m) > max_frames:
            raise ValueError(f"timit-phones: {item['wav']} has {len(m)} frames > max_frames={max_frames}; raise max_frames")
        d = deltas(m)
        xs.append(np.concatenate([m, d, deltas(d)], axis=1))
        wav = item["wav"]
        stem = wav.name.split(".")[0]
        candidates = [wav.parent / f"{stem}{ext}" for ext in (".phn", ".PHN")]
        phn = next((p for p in candidates if p.exists()), candidates[0])
        ys.append(frame_labels(read_phn(phn), len(m)))
        lengths.append(len(m))
    is_train = np.array([it["split"] == "train" for it in items])
    stacked = np.concatenate([x for x, tr in zip(xs, is_train) if tr])
    mean, std = stacked.mean(0), stacked.std(0) + 1e-8
    x = np.zeros((len(items), max_frames, 39), dtype=np.float32)
    y = np.zeros((len(items), max_frames), dtype=np.int64)
    for i, (f, lab) in enumerate(zip(xs, ys)):
        x[i, : len(f)] = (f - mean) / std
        y[i, : len(lab)] = lab
    train, test = _split(items, torch.from_numpy(x), torch.from_numpy(y), torch.tensor(lengths, dtype=torch.int64))
    return SpikeDataset("timit-phones", train, test, 39, kind="sequence", encoder="direct", target="frame_class",
                        source=str(items[0]["wav"].parents[1]), notes={"layout": layout, "lengths": {"max": max(lengths)}, "window": window})
