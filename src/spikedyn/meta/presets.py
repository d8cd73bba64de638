"""Meta-neuron presets files: named 2nd-order thetas, usable as neuron kinds.

A presets file is human-readable JSON::

    {
      "format": "spikedyn-meta-presets",
      "version": 1,
      "source": {"run": "runs/mnist-mdn", "epoch": 5, ...},          # free provenance info
      "presets": {
        "C1": {"theta_a": 0.06, "theta_b": 0.219, "theta_c": -0.065, "theta_d": 0.003,
               "nearest_paper": "2nd-FS", "distance": 0.0},             # extra keys allowed
        ...
      }
    }

Each preset needs the four finite numbers ``theta_a .. theta_d`` (the (a, b, c, d) of the MDN
neuron, spec mdn.md section 2.1); any other key is kept for the reader and ignored here.  The
kind ``"PATH:NAME"`` (e.g. ``"runs/x/meta/epoch5/presets.json:C1"``) builds a frozen
:class:`~spikedyn.neurons.SecondOrder` with that theta wherever a neuron kind is accepted
(:func:`spikedyn.neurons.make_neuron`, ``--neuron``).
"""

from __future__ import annotations

import json
import math
import numbers
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..neurons.second_order import META_NEURON_PRESETS, SecondOrder
from ..runfiles import write_text_atomic

PRESETS_FORMAT = "spikedyn-meta-presets"
PRESETS_VERSION = 1
THETA_KEYS = ("theta_a", "theta_b", "theta_c", "theta_d")

Theta = tuple[float, float, float, float]


# -- writing ---------------------------------------------------------------------------


def save_presets(
    path: str | Path,
    presets: Mapping[str, Sequence[float]],
    source: Mapping[str, Any] | None = None,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Write ``presets`` (name -> (theta_a, theta_b, theta_c, theta_d)) as a presets file.

    ``source`` is free provenance info stored under ``"source"``; ``extra[name]`` adds keys to
    that preset's entry (e.g. ``nearest_paper``, ``distance``).  Values are stored as JSON
    numbers with Python's shortest round-trip repr, so :func:`load_presets` returns exactly the
    same floats.  The write is atomic (temporary file + ``os.replace``).  Returns ``path``.
    """
    path = Path(path)
    if not presets:
        raise ValueError(f"no presets to write to {path}: pass at least one name -> theta")
    extra = dict(extra or {})
    unknown = sorted(set(extra) - set(presets))
    if unknown:
        raise ValueError(f"extra info given for {unknown}, which are not among the presets {list(presets)}")
    entries: dict[str, dict[str, Any]] = {}
    for name, theta in presets.items():
        _check_name(name, path)
        values = _theta_values(theta, f"preset {name!r} for {path}")
        entry: dict[str, Any] = dict(zip(THETA_KEYS, values))
        for key, value in (extra.get(name) or {}).items():
            if key in THETA_KEYS:
                raise ValueError(f"extra info for preset {name!r} must not set {key!r}; pass theta in `presets`")
            entry[str(key)] = value
        entries[name] = entry
    document = {
        "format": PRESETS_FORMAT,
        "version": PRESETS_VERSION,
        "source": dict(source or {}),
        "presets": entries,
    }
    try:
        text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise ValueError(f"presets for {path} are not JSON-serialisable ({exc}); pass plain numbers and strings in source/extra") from exc
    return write_text_atomic(path, text)


# -- reading ---------------------------------------------------------------------------


def load_presets(path: str | Path) -> dict[str, Theta]:
    """Read a presets file: name -> (theta_a, theta_b, theta_c, theta_d), in file order.

    Raises ``FileNotFoundError`` if the file is missing and ``ValueError`` (naming the file and
    what to fix) if it is not JSON, not a presets file, or a preset lacks a theta key or holds
    a non-finite value.
    """
    return {name: theta for name, (theta, _) in _read_presets(path).items()}


def load_preset_info(path: str | Path) -> dict[str, dict[str, Any]]:
    """Like :func:`load_presets` but each entry is the full dict (theta keys plus extra keys)."""
    return {name: {**dict(zip(THETA_KEYS, theta)), **info} for name, (theta, info) in _read_presets(path).items()}


def _read_presets(path: str | Path) -> dict[str, tuple[Theta, dict[str, Any]]]:
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise FileNotFoundError(
            f"presets file {path} {what}: write one with `spikedyn meta cluster RUN` or spikedyn.meta.save_presets()"
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"presets file {path} is not UTF-8 text ({exc}); pass a JSON presets file") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"presets file {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); fix the syntax"
        ) from exc
    if not isinstance(document, dict) or document.get("format") != PRESETS_FORMAT:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise ValueError(
            f"{path} is not a spikedyn presets file: expected a JSON object with \"format\": \"{PRESETS_FORMAT}\", "
            f"found format {found!r}"
        )
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"presets file {path} has version {version!r}; expected the integer {PRESETS_VERSION}")
    if version > PRESETS_VERSION:
        raise ValueError(
            f"presets file {path} has version {version}, newer than this spikedyn reads ({PRESETS_VERSION}); upgrade spikedyn"
        )
    presets = document.get("presets")
    if not isinstance(presets, dict) or not presets:
        raise ValueError(f"presets file {path} needs a non-empty object \"presets\": {{NAME: {{\"theta_a\": ..., ...}}}}")
    out: dict[str, tuple[Theta, dict[str, Any]]] = {}
    for name, entry in presets.items():
        _check_name(name, path)
        if not isinstance(entry, dict):
            raise ValueError(f"preset {name!r} in {path} must be an object with keys {', '.join(THETA_KEYS)}")
        missing = [k for k in THETA_KEYS if k not in entry]
        if missing:
            raise ValueError(f"preset {name!r} in {path} lacks {', '.join(missing)}; each preset needs {', '.join(THETA_KEYS)}")
        theta = _theta_values([entry[k] for k in THETA_KEYS], f"preset {name!r} in {path}")
        out[name] = (theta, {k: v for k, v in entry.items() if k not in THETA_KEYS})
    return out


def _theta_values(theta: Sequence[Any], where: str) -> Theta:
    values = list(theta.tolist() if hasattr(theta, "tolist") else theta)
    if len(values) != 4:
        raise ValueError(f"{where}: theta needs 4 values ({', '.join(THETA_KEYS)}), got {len(values)}")
    out = []
    for key, value in zip(THETA_KEYS, values):
        if hasattr(value, "item") and not isinstance(value, numbers.Real):
            try:
                value = value.item()  # one-element tensor / array
            except (RuntimeError, ValueError):
                raise ValueError(f"{where}: {key} must be one number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{where}: {key} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{where}: {key} is {value!r}; theta values must be finite numbers")
        out.append(float(value))
    return tuple(out)  # type: ignore[return-value]


def _check_name(name: Any, path: Path) -> None:
    if not isinstance(name, str) or not name.strip() or ":" in name:
        raise ValueError(
            f"preset name {name!r} for {path} is not usable: names must be non-empty and contain no ':' "
            "(a neuron kind is written PATH:NAME)"
        )


# -- paper presets -----------------------------------------------------------------------


def paper_presets() -> dict[str, Theta]:
    """The named meta neurons of the MDN paper/code (spec mdn.md section 2.3), name -> theta.

    ``2nd-FS``, ``2nd-RS`` (MNIST), ``2nd-SDS``, ``2nd-WDS`` (TIDigits) and the discarded MNIST
    candidate ``2nd-M3``.  A fresh dict: changing it does not change the library's table.
    """
    return dict(META_NEURON_PRESETS)


def nearest_paper_preset(
    theta: Sequence[float], candidates: Mapping[str, Sequence[float]] | None = None
) -> tuple[str, float]:
    """Nearest named preset to ``theta`` and its distance.

    distance = sqrt(sum_k (theta_k - preset_k)^2) over k in (a, b, c, d), the plain (unweighted)
    Euclidean distance in theta space; ``candidates`` defaults to :func:`paper_presets`.  Ties
    go to the first candidate in order.
    """
    point = _theta_values(theta, "nearest_paper_preset")
    candidates = paper_presets() if candidates is None else candidates
    if not candidates:
        raise ValueError("nearest_paper_preset needs at least one candidate preset")
    best_name, best = "", math.inf
    for name, other in candidates.items():
        ref = _theta_values(other, f"candidate {name!r}")
        distance = math.sqrt(sum((p - r) ** 2 for p, r in zip(point, ref)))
        if distance < best:
            best_name, best = name, distance
    return best_name, best


# -- presets files as neuron kinds -----------------------------------------------------------


def split_preset_kind(kind: str) -> tuple[Path, str] | None:
    """``"PATH:NAME"`` -> ``(Path(PATH), NAME)``; ``None`` for kinds without ``':'`` (built-in kinds).

    The split is at the last ``':'``, so a Windows drive letter in PATH is kept.
    """
    if ":" not in kind:
        return None
    path, _, name = kind.rpartition(":")
    if not path or not name:
        raise ValueError(f"neuron kind {kind!r} must be written PATH:NAME, e.g. presets.json:C1 (both parts non-empty)")
    return Path(path), name


def preset_theta(kind: str) -> Theta:
    """The theta named by a ``"PATH:NAME"`` kind (exact name, else a unique case-insensitive match)."""
    split = split_preset_kind(kind)
    if split is None:
        raise ValueError(f"neuron kind {kind!r} is not a presets-file kind PATH:NAME")
    path, name = split
    presets = load_presets(path)
    if name in presets:
        return presets[name]
    folded = [key for key in presets if key.lower() == name.lower()]
    if len(folded) == 1:
        return presets[folded[0]]
    raise ValueError(f"no preset {name!r} in {path}; the file holds: {', '.join(presets)}")


def preset_neuron(kind: str, shape: int | Sequence[int], **kwargs: Any) -> SecondOrder:
    """Frozen ``SecondOrder(shape, theta=<preset>, learnable=False, **kwargs)`` for ``"PATH:NAME"``."""
    return SecondOrder(shape, theta=preset_theta(kind), learnable=False, **kwargs)


__all__ = [
    "PRESETS_FORMAT",
    "PRESETS_VERSION",
    "THETA_KEYS",
    "save_presets",
    "load_presets",
    "load_preset_info",
    "paper_presets",
    "nearest_paper_preset",
    "split_preset_kind",
    "preset_theta",
    "preset_neuron",
]
