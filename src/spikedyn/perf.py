"""Process-level speed settings for CPU training.

Spiking networks allocate many short-lived tensors of a few hundred KB to tens of MB per time
step.  glibc's malloc returns such blocks to the operating system on free (``mmap``d chunks,
heap trimming), so the next step faults the same pages back in.  :func:`keep_freed_memory`
tells glibc to keep freed memory in the process instead, the same effect as setting
``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...`` in the environment.
It is global to the process; ``spikedyn train`` and ``spikedyn reproduce`` apply it unless
``--allocator default`` is given.

Raising the mmap threshold alone stops at glibc's ceiling of 32 MiB: larger blocks were still
``mmap``ed on every allocation and unmapped on every free.  The PLIF MNIST net's first-layer maps
(``[8, 16, 128, 28, 28]`` floats, 51 MB) are such blocks: with the threshold alone its CPU training step
took 37,000 minor page faults and 466 ms a batch; with no ``mmap`` at all (``M_MMAP_MAX = 0``: every block
comes from the heap and is reused) it takes about 500 and 353 ms, with no more resident memory at its peak
(1.30 against 1.32 GB; ``benchmarks/plif_cpu_step.py``, AMD EPYC, two threads; an earlier run: 437 against
341 ms, 1.29 against 1.48 GB).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's upper limit for the mmap threshold on 64-bit
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: the largest value it accepts
#: the settings as the benchmarks' result files record them
SETTINGS = "mallopt M_MMAP_THRESHOLD=32 MiB, M_MMAP_MAX=0, M_TRIM_THRESHOLD=2^31-1"


def keep_freed_memory() -> bool:
    """Make glibc malloc keep freed memory: no mmap for blocks of any size, and the heap trimmed only when
    more than 2 GiB lie free at its top (the PLIF MNIST run's resident memory went from 1.55 GB in training to
    3.2 GB in its test pass at batch 128 and back to 1.55 GB after it).

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
    return (
        bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
        and bool(mallopt(_M_MMAP_MAX, 0))
        and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    )
