"""NETtalk (Sejnowski & Rosenberg 1987): letter windows -> articulatory features (MDN).

Two sources, looked up under ``root/NETtalk/`` (or ``root/nettalk/``):

* ``nettalk_small.mat`` (the authors' pre-made file, MATLAB v5; keys ``train_x [5033, 189]``,
  ``train_y [5033, 26]``, ``test_x [500, 189]``, ``test_y [500, 26]``), loaded unchanged: this is
  exactly what MDN trained on.  Used by ``source="auto"`` when present.
* ``nettalk.data`` (UCI / CMU connectionist benchmark, 20,008 words): one word per line,
  ``word<whitespace>phonemes<whitespace>stress<whitespace>class``, the three strings letter-aligned
  (same length).  Lines starting with ``#`` or ``;`` and blank lines are comments; any other line
  that does not parse raises :class:`DataFileError` naming the line.

From ``nettalk.data`` the samples are built as follows ([A], the authors' construction of the
``.mat`` file is not published):

* **input** ``x [N, 189]`` (float32, 0/1): the 7-letter window centred on each letter of a word,
  positions outside the word blank; each position one-hot over 27 symbols (``a``-``z`` -> 0-25,
  blank / any other character -> 26); position-major: ``x[7 * 27]``, ``x[27 p + s]``.
* **target** ``y [N, 26]`` (float32 multi-hot, ``target="multi_hot"``): the 21 articulatory
  features of the centre letter's phoneme (:data:`FEATURES`, the feature *names* of Sejnowski &
  Rosenberg's Appendix A: 6 place units that double as vowel front/central/back positions, 6
  manner units, voiced, tensed, 3 vowel heights, 4 punctuation units) followed by 5 stress /
  syllable units for ``<``, ``>``, ``1``, ``2``, ``0``.  The per-phoneme assignments in
  :data:`PHONEME_FEATURES` are a reconstruction from phonetics, not a verified copy of the
  paper's table; pass ``feature_table=path`` (lines ``symbol feature feature ...``) to use another.
  Every target has 2-6 ones.
* **split**: words shuffled with ``np.random.RandomState(split_seed)`` (``split_seed=None`` or
  ``"none"`` keeps file order), their windows concatenated word by word; the first ``n_train`` (5,033) windows
  train, the next ``n_test`` (500) test, as the sizes of the authors' file.  Only the one word
  at the boundary can have letters on both sides.

:func:`nettalk_accuracy` is the MDN code's "accuracy" (a cosine similarity, mdn.md section 5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .base import DataFileError, SpikeDataset, corrupt_file, find_first, missing_file, register_dataset

SOURCE = (
    "the UCI repository, undocumented/connectionist-bench/nettalk/nettalk.data "
    "(or the authors' nettalk_small.mat from github.com/thomasaimondy/MDN-SNN)"
)
WINDOW = 7
SYMBOLS = 27  # a-z and blank
BLANK = 26

#: the 21 articulatory feature units, in output order.
FEATURES = [
    "labial", "dental", "alveolar", "palatal", "velar", "glottal",  # place; vowels: front1/2, central1/2, back1/2
    "stop", "nasal", "fricative", "affricative", "glide", "liquid",
    "voiced", "tensed",
    "high", "medium", "low",
    "silent", "elide", "pause", "full_stop",
]
#: the 5 stress / syllable-boundary units that follow the features.
STRESS = ["<", ">", "1", "2", "0"]

_V = "voiced"
#: NETtalk phoneme symbol -> articulatory features ([A] reconstruction, see the module docstring).
PHONEME_FEATURES: dict[str, tuple[str, ...]] = {
    # consonants
    "p": ("labial", "stop"), "b": ("labial", "stop", _V), "t": ("alveolar", "stop"), "d": ("alveolar", "stop", _V),
    "k": ("velar", "stop"), "g": ("velar", "stop", _V), "m": ("labial", "nasal", _V), "n": ("alveolar", "nasal", _V),
    "G": ("velar", "nasal", _V), "f": ("labial", "fricative"), "v": ("labial", "fricative", _V),
    "T": ("dental", "fricative"), "D": ("dental", "fricative", _V), "s": ("alveolar", "fricative"),
    "z": ("alveolar", "fricative", _V), "S": ("palatal", "fricative"), "Z": ("palatal", "fricative", _V),
    "h": ("glottal", "glide"), "C": ("palatal", "affricative"), "J": ("palatal", "affricative", _V),
    "w": ("labial", "glide", _V), "y": ("palatal", "glide", _V), "l": ("dental", "liquid", _V),
    "r": ("palatal", "liquid", _V),
    # syllabic consonants and clusters written as one phoneme
    "L": ("dental", "liquid", _V, "tensed"), "M": ("labial", "nasal", _V, "tensed"),
    "N": ("alveolar", "nasal", _V, "tensed"), "K": ("velar", "palatal", "fricative"),
    "X": ("velar", "alveolar", "fricative"), "#": ("velar", "alveolar", "fricative", _V),
    "Q": ("velar", "labial", "stop", _V), "!": ("alveolar", "dental", "affricative"),
    "*": ("labial", "glide", "low", _V), "Y": ("palatal", "glide", "high", _V),
    # vowels: position (front = dental, central = palatal, back = velar), height, tensed
    "i": ("dental", "high", "tensed", _V), "I": ("dental", "high", _V), "e": ("dental", "medium", "tensed", _V),
    "E": ("dental", "medium", _V), "@": ("dental", "low", _V), "a": ("velar", "low", "tensed", _V),
    "c": ("velar", "medium", "tensed", _V), "o": ("velar", "medium", "tensed", "glide", _V),
    "u": ("velar", "high", "tensed", _V), "U": ("velar", "high", _V), "^": ("palatal", "low", _V),
    "x": ("palatal", "medium", _V), "R": ("palatal", "medium", "liquid", _V),
    "|": ("palatal", "high", _V), "+": ("palatal", "low", "tensed", _V),
    "A": ("velar", "dental", "low", "tensed", _V), "O": ("velar", "dental", "medium", "tensed", _V),
    "W": ("velar", "labial", "low", "tensed", _V),
    # silence / punctuation
    "-": ("silent",), "_": ("pause", "elide"), ".": ("full_stop", "pause"),
}


def letter_index(ch: str) -> int:
    """``a``-``z`` (any case) -> 0-25, anything else (blank, ``-``, ``'``) -> 26."""
    c = ch.lower()
    return ord(c) - ord("a") if "a" <= c <= "z" else BLANK


def encode_windows(word: str) -> np.ndarray:
    """``[len(word), 189]`` 0/1: the 7-letter window centred on each letter, 27-way one-hot per position."""
    half = WINDOW // 2
    padded = [BLANK] * half + [letter_index(c) for c in word] + [BLANK] * half
    out = np.zeros((len(word), WINDOW * SYMBOLS), dtype=np.float32)
    for i in range(len(word)):
        for p in range(WINDOW):
            out[i, p * SYMBOLS + padded[i + p]] = 1.0
    return out


def target_table(feature_table: dict[str, tuple[str, ...]] | None = None) -> dict[str, np.ndarray]:
    """Phoneme symbol -> 21-dimensional 0/1 feature vector."""
    table = feature_table or PHONEME_FEATURES
    index = {name: i for i, name in enumerate(FEATURES)}
    out = {}
    for symbol, names in table.items():
        vec = np.zeros(len(FEATURES), dtype=np.float32)
        for name in names:
            if name not in index:
                raise ValueError(f"nettalk: unknown feature {name!r} for phoneme {symbol!r}; features are {FEATURES}")
            vec[index[name]] = 1.0
        out[symbol] = vec
    return out


def read_feature_table(path: Path) -> dict[str, tuple[str, ...]]:
    """A feature table file: one line per phoneme, ``symbol feature feature ...`` (names of :data:`FEATURES`)."""
    path = Path(path)
    if not path.exists():
        raise missing_file(path, "nettalk", "your own copy of the NETtalk articulatory feature table", str(path))
    table = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts and not parts[0].startswith("#"):
            table[parts[0]] = tuple(parts[1:])
    return table


def read_nettalk_data(path: Path) -> list[tuple[str, str, str]]:
    """``(word, phonemes, stress)`` of every entry of a ``nettalk.data`` file, in file order."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError as exc:
        raise corrupt_file(path, "nettalk", f"not an ASCII text file ({exc})", SOURCE) from exc
    entries = []
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        parts = stripped.split()
        if len(parts) != 4 or not (len(parts[0]) == len(parts[1]) == len(parts[2])) or not parts[3].isdigit():
            raise corrupt_file(
                path, "nettalk", f"line {n} is not 'word phonemes stress class' with aligned strings: {line!r}", SOURCE
            )
        entries.append((parts[0], parts[1], parts[2]))
    if not entries:
        raise corrupt_file(path, "nettalk", "no entries found (empty or truncated file)", SOURCE)
    return entries


def build_samples(
    entries: list[tuple[str, str, str]], table: dict[str, np.ndarray], path: Path
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per word: the ``[L, 189]`` windows and the ``[L, 26]`` targets."""
    stress_index = {s: i for i, s in enumerate(STRESS)}
    xs, ys = [], []
    for word, phonemes, stress in entries:
        y = np.zeros((len(word), len(FEATURES) + len(STRESS)), dtype=np.float32)
        for i, (ph, st) in enumerate(zip(phonemes, stress)):
            if ph not in table:
                raise corrupt_file(path, "nettalk", f"word {word!r}: unknown phoneme symbol {ph!r}", SOURCE)
            if st not in stress_index:
                raise corrupt_file(path, "nettalk", f"word {word!r}: unknown stress symbol {st!r}", SOURCE)
            y[i, : len(FEATURES)] = table[ph]
            y[i, len(FEATURES) + stress_index[st]] = 1.0
        xs.append(encode_windows(word))
        ys.append(y)
    return xs, ys


def _load_mat(path: Path) -> dict[str, torch.Tensor]:
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path))
    except Exception as exc:  # scipy raises several types for damaged files
        raise corrupt_file(path, "nettalk", f"not a readable MATLAB file ({type(exc).__name__}: {exc})", SOURCE) from exc
    out = {}
    for key, width in (("train_x", 189), ("train_y", 26), ("test_x", 189), ("test_y", 26)):
        if key not in mat:
            raise corrupt_file(path, "nettalk", f"key {key!r} missing (has {sorted(k for k in mat if not k.startswith('__'))})", SOURCE)
        a = np.asarray(mat[key], dtype=np.float32)
        if a.ndim != 2 or a.shape[1] != width:
            raise corrupt_file(path, "nettalk", f"{key} has shape {a.shape}, expected [N, {width}]", SOURCE)
        out[key] = torch.from_numpy(a)
    return out


@register_dataset("nettalk")
def load_nettalk(
    root: Path, source: str = "auto", n_train: int = 5033, n_test: int = 500, split_seed: int | str | None = 0,
    feature_table: str | Path | None = None,
) -> SpikeDataset:
    """NETtalk windows ``x [N, 189]`` and multi-hot targets ``y [N, 26]`` (see the module docstring)."""
    if isinstance(split_seed, str):  # "none" from the command line keeps the file order
        if split_seed.lower() != "none":
            raise ValueError(f"nettalk: split_seed must be an integer or none, got {split_seed!r}")
        split_seed = None
    folder = find_first([Path(root) / "NETtalk", Path(root) / "nettalk"]) or Path(root) / "NETtalk"
    mat_path, data_path = folder / "nettalk_small.mat", folder / "nettalk.data"
    if source not in ("auto", "mat", "uci"):
        raise ValueError(f"nettalk: source must be 'auto', 'mat' or 'uci', got {source!r}")
    use_mat = source == "mat" or (source == "auto" and mat_path.exists())
    if use_mat:
        if not mat_path.exists():
            raise missing_file(mat_path, "nettalk", SOURCE, str(mat_path))
        m = _load_mat(mat_path)
        train, test = TensorDataset(m["train_x"], m["train_y"]), TensorDataset(m["test_x"], m["test_y"])
        where, notes = mat_path, {"source_format": "mat"}
    else:
        if not data_path.exists():
            raise missing_file(data_path, "nettalk", SOURCE, f"{data_path} (or the authors' {mat_path.name} beside it)")
        entries = read_nettalk_data(data_path)
        table = target_table(read_feature_table(Path(feature_table)) if feature_table else None)
        xs, ys = build_samples(entries, table, data_path)
        order = np.arange(len(entries)) if split_seed is None else np.random.RandomState(split_seed).permutation(len(entries))
        x = np.concatenate([xs[i] for i in order])
        y = np.concatenate([ys[i] for i in order])
        if len(x) < n_train + n_test:
            raise DataFileError(f"nettalk: {data_path} yields {len(x)} windows, fewer than n_train + n_test = {n_train + n_test}")
        x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
        train = TensorDataset(x_t[:n_train], y_t[:n_train])
        test = TensorDataset(x_t[n_train : n_train + n_test], y_t[n_train : n_train + n_test])
        where = data_path
        notes = {"source_format": "uci", "words": len(entries), "windows": len(x), "split_seed": split_seed}
    return SpikeDataset("nettalk", train, test, 26, kind="static", encoder="direct", target="multi_hot",
                        source=str(where), notes=notes)


def nettalk_accuracy(
    rates: torch.Tensor, targets: torch.Tensor, batch_size: int | None = 5, threshold: float = 0.05
) -> float:
    """MDN's NETtalk score: mean over batches of a cosine similarity, in [0, 1].

    ``rates`` and ``targets`` are ``[N, 26]`` in test-loader order.  The samples are cut into
    consecutive batches of ``batch_size`` (MDN: 5; ``None`` scores every sample); of each batch
    only the **first** sample is scored, as in the authors' code: 0 if its largest output rate
    is below ``threshold``, else ``cos(r, y) = <r, y> / (|r| |y|)`` over the positions where
    ``r`` or ``y`` is non-zero (the other positions add nothing to either term).
    """
    rates, targets = rates.detach().float(), targets.detach().float()
    if rates.shape != targets.shape or rates.ndim != 2:
        raise ValueError(f"rates {tuple(rates.shape)} and targets {tuple(targets.shape)} must both be [N, C]")
    step = 1 if batch_size is None else batch_size
    r, y = rates[::step], targets[::step]
    if len(r) == 0:
        return 0.0
    cos = (r * y).sum(1) / (r.norm(dim=1) * y.norm(dim=1)).clamp_min(1e-12)
    cos = torch.where(r.max(dim=1).values < threshold, torch.zeros_like(cos), cos)
    return float(cos.mean())
