"""Event streams and their frame encoders.

Events are a structured numpy array with fields ``t`` (int64, microseconds), ``x``, ``y``
(int16) and ``p`` (int8 polarity, 0 = OFF, 1 = ON).  Encoders turn one stream into a dense
``[T, C, H, W]`` array:

* :func:`frames_by_time` -- fixed time bins: event ``e`` falls in bin ``(t_e - t_0) // bin_us``;
  bins ``>= T`` are outside the window (the papers use only the first ``T`` bins).
  ``binary=True`` gives occupancy (MDN's N-MNIST: 1 if any event), else counts.
* :func:`frames_by_count` -- "split by number" (PLIF / SpikingJelly 0.0.0.0.4): with ``N`` events
  and ``M`` frames, frame ``j`` holds events ``[floor(N/M) j, floor(N/M) (j+1))`` and the last
  frame also takes the remainder; values are event counts.

Both take ``pool`` (spatial sum-pooling factor) and ``merge_polarity`` (one channel).

The loaders store frames compactly with :func:`narrow_counts`: the stated dtype (``uint8`` for
occupancy, ``int16`` for counts) when every value fits, else the narrowest wider integer type
that holds them, so a count above 32,767 in one pixel and frame never wraps around.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

EVENT_DTYPE = np.dtype([("t", np.int64), ("x", np.int16), ("y", np.int16), ("p", np.int8)])


def narrow_counts(frames: np.ndarray, dtype: np.dtype | type = np.int16) -> np.ndarray:
    """``frames`` as ``dtype`` when all its values fit, else as the narrowest of int16/int32/int64 that holds them."""
    if frames.size == 0:
        return frames.astype(dtype)
    low, high = frames.min(), frames.max()
    for candidate in (dtype, np.int16, np.int32, np.int64):
        info = np.iinfo(candidate)
        if info.min <= low and high <= info.max:
            return frames.astype(candidate, copy=False)
    raise ValueError(f"event counts up to {high} do not fit in int64")


def make_events(t: ArrayLike, x: ArrayLike, y: ArrayLike, p: ArrayLike) -> np.ndarray:
    """Build an event array (fields t, x, y, p) from four equally long sequences."""
    ev = np.empty(len(t), dtype=EVENT_DTYPE)
    ev["t"], ev["x"], ev["y"], ev["p"] = t, x, y, p
    return ev


def _accumulate(
    events: np.ndarray, frame_index: np.ndarray, frames: int, size: tuple[int, int], pool: int,
    merge_polarity: bool, offset: int = 0,
) -> np.ndarray:
    height, width = size
    channels = 1 if merge_polarity else 2
    out_h, out_w = (height + pool - 1) // pool, (width + pool - 1) // pool
    keep = (frame_index >= 0) & (frame_index < frames)
    ev = events[keep]
    x = (ev["x"].astype(np.int64) + offset) // pool
    y = (ev["y"].astype(np.int64) + offset) // pool
    if len(ev) and (x.max() >= out_w or y.max() >= out_h or x.min() < 0 or y.min() < 0):
        raise ValueError(f"event coordinates out of range for a {height}x{width} sensor (offset {offset})")
    c = np.zeros(len(ev), dtype=np.int64) if merge_polarity else ev["p"].astype(np.int64)
    flat = ((frame_index[keep] * channels + c) * out_h + y) * out_w + x
    counts = np.bincount(flat, minlength=frames * channels * out_h * out_w)
    return counts.reshape(frames, channels, out_h, out_w)


def frames_by_time(
    events: np.ndarray, frames: int, bin_us: int, size: tuple[int, int], *, t0: int | None = None,
    pool: int = 1, merge_polarity: bool = False, binary: bool = False, offset: int = 0,
) -> np.ndarray:
    """``[frames, C, H/pool, W/pool]`` from fixed bins of ``bin_us`` microseconds starting at ``t0``."""
    start = int(events["t"][0]) if t0 is None and len(events) else (t0 or 0)
    index = (events["t"] - start) // bin_us
    counts = _accumulate(events, index, frames, size, pool, merge_polarity, offset)
    return (counts > 0).astype(np.uint8) if binary else counts


def frames_by_count(
    events: np.ndarray, frames: int, size: tuple[int, int], *, pool: int = 1, merge_polarity: bool = False,
) -> np.ndarray:
    """``[frames, C, H/pool, W/pool]`` event counts, "split by number"."""
    n = len(events)
    per = n // frames
    index = np.arange(n) // per if per > 0 else np.full(n, frames - 1)
    index = np.minimum(index, frames - 1)  # the last frame takes the remainder
    return _accumulate(events, index, frames, size, pool, merge_polarity)
