"""NETtalk (Sejnowski & Rosenberg 1987): letter windows -> articulatory features (MDN).

Two sources, looked up under ``root/NETtalk/`` (or ``root/nettalk/``):

* ``nettalk_small.mat`` (the authors' pre-made file, MATLAB v5; keys ``train_x [5033, 189]``,
  ``train_y [5033, 26]``, ``test_x [500, 189]``, ``test_y [500, 26]``), loaded unchanged: this is
  exactly what MDN trained on.  Used by ``source="auto"`` when present.
* ``nettalk.data`` (UCI / CMU connectionist benchmark, 20,008 words): one word per line,
  ``word<whitespace>phonemes<whitespace>stress<whitespace>class``, the three strings letter-aligned
  (same length).  Lines starting with ``#`` or ``;`` and blank lines are comments; any other line
  that does not parse raises :class:`DataFileError` naming the line.  Optionally beside it
  ``nettalk.list``, the benchmark's list of the 1,000 most common English words (a note, a line
  of asterisks, then the words as one parenthesised list, ``(THE OF AND ...)``).

What the authors' file holds (read from it; the construction is not published): its extra keys
``word_x [5533, 189]`` and ``word_phoneme [5533, 26]`` are the letter windows of the words of
``nettalk.list`` in list order, one ``nettalk.data`` entry per word (the first, but for "at"),
plus the second pronunciation of 17 of them ("while" ... "complex"; no rule found), 1,017
entries, 5,533 letters; ``randnum`` is a permutation of 1..5533 whose first 500 entries, sorted,
are the test windows; the other 5,033 windows, in order, train.  So test windows come from words
whose other letters are trained on.  ``words="common"`` builds this from the UCI files with
Sejnowski & Rosenberg's rule, the first pronunciation of each listed word (1,000 entries, 5,438
letters on the real files); its targets equal the authors' for every window of those entries.
Samples built from ``nettalk.data``:

* **input** ``x [N, 189]`` (float32, 0/1): the 7-letter window centred on each letter of a word,
  positions outside the word blank; each position one-hot over 27 symbols (``a``-``z`` -> 0-25,
  blank / any other character -> 26); position-major: ``x[7 * 27]``, ``x[27 p + s]``.
* **target** ``y [N, 26]`` (float32 multi-hot, ``target="multi_hot"``): the 21 articulatory
  feature units of the centre letter's phoneme (:data:`FEATURES`) followed by 5 stress /
  syllable units, one-hot over ``<``, ``>``, ``0``, ``1``, ``2`` (:data:`STRESS`); the unit order
  is that of the authors' file.  The phoneme -> feature table (``feature_table``):

  - ``"original"`` (default, :data:`PHONEME_FEATURES`): Sejnowski & Rosenberg's table,
    Appendix A of "Parallel networks that learn to pronounce English text", Complex Systems 1
    (1987) 145-168.  Every target has 3-6 ones.
  - ``"reconstructed"`` (:data:`RECONSTRUCTED_FEATURES`): the reconstruction from phonetics this
    module used before the original was found; kept to compare with runs made with it.
  - a path to a text file, one line per phoneme: ``symbol feature feature ...``.

* **words** (``words``): ``"common"``, the first entry of each word of ``nettalk.list``
  (required then), in list order; ``"all"``, every entry of ``nettalk.data``, in file order;
  ``"auto"`` (default), ``"common"`` when ``nettalk.list`` is beside ``nettalk.data``, else
  ``"all"``.  The notes record which, and how many listed words the data file lacks.
* **split**: with ``"common"``, the authors' scheme: ``n_test`` windows drawn with
  ``np.random.RandomState(split_seed).permutation`` test (the authors' own draw is stored only in
  their ``.mat``), the others, in corpus order, train (all of them, or the first ``n_train``);
  ``split_seed=None`` (``"none"``) makes the last ``n_test`` windows test.  With ``"all"``: words
  shuffled with ``RandomState(split_seed)`` (``None`` keeps file order), their windows
  concatenated word by word, the first ``n_train`` windows (default 5,033) train, the next
  ``n_test`` test, so test words are (but for the one at the boundary) unseen.

Both sources set ``metric="nettalk-cosine"``: :func:`nettalk_accuracy` is the MDN code's
"accuracy" (a cosine similarity, mdn.md section 5).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .base import DataFileError, SpikeDataset, corrupt_file, find_first, missing_file, register_dataset

SOURCE = (
    "the UCI repository, undocumented/connectionist-bench/nettalk/nettalk.data "
    "(or the authors' nettalk_small.mat from github.com/thomasaimondy/MDN-SNN)"
)
LIST_SOURCE = "the UCI repository, undocumented/connectionist-bench/nettalk/nettalk.list (beside nettalk.data)"
WINDOW = 7
SYMBOLS = 27  # a-z and blank
BLANK = 26

#: the 21 articulatory feature units, in output order (that of the authors' ``nettalk_small.mat``).
#: The six place units double as vowel positions (Appendix A): labial = Front1, dental = Front2,
#: alveolar = Central1, palatal = Central2, velar = Back1, glottal = Back2.  There is no unit
#: for the table's "Unvoiced": an unvoiced consonant is one without ``voiced``.
FEATURES = [
    "labial", "dental", "alveolar", "palatal", "velar", "glottal",  # place; vowels: front1/2, central1/2, back1/2
    "stop", "nasal", "fricative", "affricative", "glide", "liquid",
    "voiced", "tensed",
    "high", "medium", "low",
    "silent", "elide", "pause", "full_stop",
]
#: the 5 stress / syllable-boundary units that follow the features, one-hot, in the authors' order.
STRESS = ["<", ">", "0", "1", "2"]

_V = "voiced"
#: NETtalk phoneme symbol -> articulatory features: Sejnowski & Rosenberg (1987), "Parallel
#: networks that learn to pronounce English text", Complex Systems 1, 145-168, Appendix A
#: (columns Phoneme, Sound, Articulatory Features; each symbol's example word is in the comment).
#: Read from a scan of the appendix's table (reproduced in the public repository jere1882/NetTalk)
#: and checked against (1) the targets of the MDN authors' ``nettalk_small.mat``
#: (github.com/thomasaimondy/MDN-SNN): decoded against ``nettalk.data``, each of the 46 symbols
#: in its 5,533 windows has one 21-unit vector there, equal to this table's, and ``-`` has
#: silent + elide; (2) two transcriptions of the appendix in public NETtalk re-implementations
#: (jere1882/NetTalk, umqadir/nettalk), which agree on all 51 symbols of the scan.  The
#: appendix gives ``/J/`` ("gin") the features of ``/G/`` ("sing"), voiced velar nasal; the
#: authors' data has the same, so it is kept as published.  ``+`` (the French vowel of
#: "abattoir", 21 letters of ``nettalk.data``), ``_`` and ``.`` are neither in the scanned part
#: of the table nor in the authors' data: their rows follow the one transcription that has them
#: (umqadir/nettalk) and are unverified.
PHONEME_FEATURES: dict[str, tuple[str, ...]] = {
    # consonants
    "p": ("labial", "stop"),  # pet
    "b": ("labial", "stop", _V),  # bet
    "t": ("alveolar", "stop"),  # test
    "d": ("alveolar", "stop", _V),  # deb
    "k": ("velar", "stop"),  # Ken
    "g": ("velar", "stop", _V),  # guess
    "m": ("labial", "nasal", _V),  # met
    "n": ("alveolar", "nasal", _V),  # net
    "G": ("velar", "nasal", _V),  # sing
    "f": ("labial", "fricative"),  # fin
    "v": ("labial", "fricative", _V),  # vest
    "T": ("dental", "fricative"),  # thin
    "D": ("dental", "fricative", _V),  # this
    "s": ("alveolar", "fricative"),  # sit
    "z": ("alveolar", "fricative", _V),  # zoo
    "S": ("palatal", "fricative"),  # shin
    "Z": ("palatal", "fricative", _V),  # leisure
    "C": ("palatal", "affricative"),  # chin
    "J": ("velar", "nasal", _V),  # gin (as published: the same features as /G/)
    "h": ("glottal", "glide"),  # head
    "w": ("labial", "glide", _V),  # wet
    "y": ("palatal", "glide", _V),  # yet
    "l": ("dental", "liquid", _V),  # let
    "r": ("palatal", "liquid", _V),  # red
    "R": ("velar", "liquid", _V),  # bird
    "L": ("alveolar", "liquid", _V),  # bottle
    "M": ("dental", "nasal", _V),  # absym
    "N": ("palatal", "nasal", _V),  # button
    # consonant clusters written as one phoneme
    "K": ("palatal", "fricative", "velar", "affricative"),  # sexual
    "Q": ("labial", "velar", "affricative", "stop", _V),  # quest
    "X": ("affricative", "dental", "alveolar"),  # excess
    "!": ("labial", "dental", "affricative"),  # Nazi
    "#": ("palatal", "velar", "affricative", _V),  # examine
    "*": ("glide", "labial", "low", "alveolar", _V),  # one
    # vowels: position (front1/2 = labial/dental, central1/2 = alveolar/palatal, back1/2 = velar/glottal)
    "a": ("low", "tensed", "palatal"),  # father
    "c": ("medium", "velar"),  # bought
    "e": ("medium", "tensed", "dental"),  # bake
    "i": ("high", "tensed", "labial"),  # Pete
    "o": ("medium", "tensed", "glottal"),  # boat
    "u": ("high", "tensed", "glottal"),  # lute
    "x": ("medium", "palatal"),  # about
    "A": ("medium", "tensed", "dental", "alveolar"),  # bite
    "E": ("medium", "labial", "dental"),  # bet
    "I": ("high", "labial"),  # bit
    "O": ("medium", "tensed", "alveolar", "palatal"),  # boy
    "U": ("high", "velar"),  # book
    "W": ("high", "medium", "tensed", "palatal", "velar"),  # bout
    "Y": ("high", "tensed", "labial", "dental", "alveolar"),  # cute
    "@": ("low", "dental"),  # bat
    "|": ("high", "labial", "dental"),  # logic
    "^": ("low", "alveolar"),  # but
    "+": ("medium", "tensed", "palatal"),  # abattoir (unverified, see above)
    # silence / punctuation
    "-": ("silent", "elide"),  # continuation: a letter not pronounced
    "_": ("pause", "elide"),  # word boundary (unverified)
    ".": ("pause", "full_stop"),  # period (unverified)
}

#: [A] the reconstruction from phonetics used before :data:`PHONEME_FEATURES` was found
#: (``feature_table="reconstructed"``); every vowel is voiced here, never in the original.
RECONSTRUCTED_FEATURES: dict[str, tuple[str, ...]] = {
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

#: the named tables of ``feature_table``.
FEATURE_TABLES: dict[str, dict[str, tuple[str, ...]]] = {
    "original": PHONEME_FEATURES, "reconstructed": RECONSTRUCTED_FEATURES,
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
    """Phoneme symbol -> 21-dimensional 0/1 feature vector (default: :data:`PHONEME_FEATURES`)."""
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
    """A feature table file: one line per phoneme, ``symbol feature feature ...`` (names of :data:`FEATURES`).

    Blank lines and lines starting with ``#`` are skipped (so ``#`` cannot be a symbol here).
    """
    path = Path(path)
    if not path.exists():
        raise missing_file(path, "nettalk", "your own copy of the NETtalk articulatory feature table", str(path))
    table = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts and not parts[0].startswith("#"):
            table[parts[0]] = tuple(parts[1:])
    return table


def resolve_feature_table(feature_table: str | Path | None) -> tuple[dict[str, tuple[str, ...]], str]:
    """``feature_table`` option -> (symbol -> feature names, name for the notes).

    ``None`` or ``"original"``: :data:`PHONEME_FEATURES`; ``"reconstructed"``:
    :data:`RECONSTRUCTED_FEATURES`; anything else is read as a file by :func:`read_feature_table`.
    """
    name = "original" if feature_table is None else str(feature_table)
    if name in FEATURE_TABLES:
        return FEATURE_TABLES[name], name
    return read_feature_table(Path(name)), name


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


def read_nettalk_list(path: Path) -> list[str]:
    """The words of a ``nettalk.list`` file, lower-cased, in list order, each once.

    The benchmark's file is a note, a line of asterisks, then the words as one parenthesised
    list; the words are the tokens inside the last ``( ... )`` of the file.  A file without
    parentheses is read as whitespace-separated words (e.g. one per line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError as exc:
        raise corrupt_file(path, "nettalk", f"not an ASCII text file ({exc})", LIST_SOURCE) from exc
    start = text.rfind("(")
    if start >= 0:
        end = text.find(")", start)
        if end < 0:
            problem = "the word list opened with '(' is never closed (truncated file?)"
            raise corrupt_file(path, "nettalk", problem, LIST_SOURCE)
        text = text[start + 1 : end]
    words = list(dict.fromkeys(token.lower() for token in re.findall(r"[^\s()]+", text)))
    if not words:
        raise corrupt_file(path, "nettalk", "no words found (empty or truncated file)", LIST_SOURCE)
    return words


def select_listed_words(
    entries: list[tuple[str, str, str]], words: list[str]
) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The first entry (in file order) of each listed word, in list order; and the listed words not found.

    Words are compared case-insensitively.  Sejnowski & Rosenberg used "only the first
    pronunciation given for each word" (the benchmark's ``nettalk.names``).
    """
    first: dict[str, tuple[str, str, str]] = {}
    for entry in entries:
        first.setdefault(entry[0].lower(), entry)
    return [first[word] for word in words if word in first], [word for word in words if word not in first]


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
    root: Path, source: str = "auto", n_train: int | None = None, n_test: int = 500, split_seed: int | str | None = 0,
    feature_table: str | Path | None = "original", words: str = "auto",
) -> SpikeDataset:
    """NETtalk windows ``x [N, 189]`` and multi-hot targets ``y [N, 26]`` (see the module docstring)."""
    if isinstance(split_seed, str):  # "none" from the command line keeps the file order
        if split_seed.lower() != "none":
            raise ValueError(f"nettalk: split_seed must be an integer or none, got {split_seed!r}")
        split_seed = None
    if words not in ("auto", "common", "all"):
        raise ValueError(f"nettalk: words must be 'auto', 'common' or 'all', got {words!r}")
    folder = find_first([Path(root) / "NETtalk", Path(root) / "nettalk"]) or Path(root) / "NETtalk"
    mat_path, data_path, list_path = folder / "nettalk_small.mat", folder / "nettalk.data", folder / "nettalk.list"
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
        if words == "common" and not list_path.exists():
            raise missing_file(list_path, "nettalk", LIST_SOURCE, f"{list_path} (or pass words=all to use every word)")
        chosen = "common" if words == "common" or (words == "auto" and list_path.exists()) else "all"
        entries = read_nettalk_data(data_path)
        names, table_name = resolve_feature_table(feature_table)
        notes = {"source_format": "uci", "words": chosen, "feature_table": table_name}
        if chosen == "common":
            listed = read_nettalk_list(list_path)
            entries, missing = select_listed_words(entries, listed)
            notes.update({"list_words": len(listed), "list_words_missing": len(missing)})
            if not entries:
                raise DataFileError(f"nettalk: none of the {len(listed)} words of {list_path} is in {data_path}")
        xs, ys = build_samples(entries, target_table(names), data_path)
        if chosen == "all" and split_seed is not None:
            order = np.random.RandomState(split_seed).permutation(len(entries))
            xs, ys = [xs[i] for i in order], [ys[i] for i in order]
        x, y = torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))
        if n_train is None:
            n_train = len(x) - n_test if chosen == "common" else 5033
        if len(x) < n_train + n_test:
            raise DataFileError(
                f"nettalk: {data_path} ({chosen} words) yields {len(x)} windows, "
                f"fewer than n_train + n_test = {n_train + n_test}"
            )
        if chosen == "common":  # the authors' scheme: n_test windows drawn at random test, the rest train
            if split_seed is None:
                is_test = torch.arange(len(x)) >= len(x) - n_test
            else:
                is_test = torch.zeros(len(x), dtype=torch.bool)
                is_test[torch.from_numpy(np.random.RandomState(split_seed).permutation(len(x))[:n_test])] = True
            train = TensorDataset(x[~is_test][:n_train], y[~is_test][:n_train])
            test = TensorDataset(x[is_test], y[is_test])
        else:
            train = TensorDataset(x[:n_train], y[:n_train])
            test = TensorDataset(x[n_train : n_train + n_test], y[n_train : n_train + n_test])
        where = data_path
        notes.update({"entries": len(entries), "windows": len(x), "split_seed": split_seed})
    return SpikeDataset("nettalk", train, test, 26, kind="static", encoder="direct", target="multi_hot",
                        source=str(where), notes=notes, metric="nettalk-cosine")


def nettalk_accuracy(
    rates: torch.Tensor, targets: torch.Tensor, batch_size: int | None = 5, threshold: float = 0.05
) -> float:
    """MDN's NETtalk score: mean over batches of a cosine similarity, in [0, 1].

    ``rates`` and ``targets`` are ``[N, 26]`` in test-loader order.  The samples are cut into
    consecutive batches of ``batch_size`` (MDN: 5; ``None`` scores every sample); of each batch
    only the **first** sample is scored, as in the authors' code: 0 if the largest output rate
    of the whole batch is below ``threshold`` (the authors test ``outputs.max()`` over the
    batch), else ``cos(r, y) = <r, y> / (|r| |y|)`` of the first sample over the positions where
    ``r`` or ``y`` is non-zero (the other positions add nothing to either term).
    """
    rates, targets = rates.detach().float(), targets.detach().float()
    if rates.shape != targets.shape or rates.ndim != 2:
        raise ValueError(f"rates {tuple(rates.shape)} and targets {tuple(targets.shape)} must both be [N, C]")
    step = 1 if batch_size is None else batch_size
    r, y = rates[::step], targets[::step]
    if len(r) == 0:
        return 0.0
    batch_max = torch.stack([rates[i : i + step].max() for i in range(0, len(rates), step)])
    cos = (r * y).sum(1) / (r.norm(dim=1) * y.norm(dim=1)).clamp_min(1e-12)
    cos = torch.where(batch_max < threshold, torch.zeros_like(cos), cos)
    return float(cos.mean())
