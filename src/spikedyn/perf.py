"""Process-level speed settings for CPU training.

Spiking networks allocate many short-lived tensors of a few hundred KB to a few MB per time
step.  glibc's malloc returns such blocks to the operating system on free (``mmap``d chunks,
heap trimming), so the next step faults the same pages back in.  :func:`keep_freed_memory`
tells glibc to keep freed memory in the process instead, the same effect as setting
``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=...`` in the environment.  It is
global to the process; ``spikedyn train`` applies it unless ``--allocator default`` is given.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's upper limit for the mmap threshold on 64-bit
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: the largest value it accepts


def keep_freed_memory() -> bool:
    """Make glibc malloc keep freed memory (no mmap for blocks < 32 MiB, no heap trimming).

    Returns True if applied, False where it does not apply (not glibc / not Linux).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
