"""A cache of computed features (spectrograms of audio data sets), keyed on the files and the options.

Computing FSDD's 3,000 spectrograms takes seconds to tens of seconds before the first epoch; the
result depends only on the audio files and the options, so it is kept as one ``.npy`` per
(data set, options, files) under the cache folder and reused while none of them changes.

* Folder: ``$SPIKEDYN_CACHE`` if set, else ``$XDG_CACHE_HOME/spikedyn`` (``~/.cache/spikedyn``);
  ``SPIKEDYN_CACHE=off`` turns caching off.  Everything in it is safe to delete at any time
  (``spikedyn data cache --clear``); it is recomputed when needed.
* Key: SHA-256 of the feature version, the data set, the options, and every file's path, size
  and modification time (a changed, added or removed file gives a new key, so a stale entry is
  never read).
* Writes are atomic (temporary file, then rename), so an interrupted run leaves no half entry;
  an entry that cannot be read is recomputed and replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

CACHE_ENV = "SPIKEDYN_CACHE"
#: bump when the feature computation changes, so old entries are not reused
FEATURE_VERSION = 1


def cache_dir() -> Path | None:
    """The cache folder, or None when caching is off (``SPIKEDYN_CACHE=off``)."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in ("off", "0", "no", "") else Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "spikedyn"


def cache_key(name: str, options: dict, files: Sequence[Path]) -> str:
    """The hex key of features of ``files`` computed with ``options`` (see the module docstring)."""
    h = hashlib.sha256()
    h.update(json.dumps({"version": FEATURE_VERSION, "name": name, "options": options}, sort_keys=True).encode())
    for path in files:
        st = Path(path).stat()
        h.update(f"\0{Path(path).resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()


def cached_features(name: str, options: dict, files: Sequence[Path], compute: Callable[[], np.ndarray]) -> np.ndarray:
    """``compute()``'s array, read from the cache when an entry for these files and options exists."""
    folder = cache_dir()
    if folder is None:
        return compute()
    path = folder / "features" / f"{name}-{cache_key(name, options, files)[:32]}.npy"
    if path.exists():
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            pass  # damaged entry: recompute and replace it
    array = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
        os.replace(tmp, path)
    except OSError:  # a read-only or full disk only costs the recomputation next time
        pass
    return array


def cache_summary() -> tuple[Path | None, int, int]:
    """(folder, number of entries, bytes) of the feature cache."""
    folder = cache_dir()
    if folder is None or not (folder / "features").is_dir():
        return folder, 0, 0
    entries = list((folder / "features").glob("*.npy"))
    return folder, len(entries), sum(p.stat().st_size for p in entries)


def clear_cache() -> int:
    """Delete every cached feature file; returns how many."""
    folder = cache_dir()
    if folder is None or not (folder / "features").is_dir():
        return 0
    count = 0
    for path in (folder / "features").iterdir():
        if path.is_file():
            path.unlink()
            count += 1
    return count
