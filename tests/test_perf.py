import resource
import sys

import pytest
import torch

from spikedyn.perf import keep_freed_memory

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings are Linux-only")


@linux_only
def test_keep_freed_memory_applies_on_glibc():
    assert keep_freed_memory() is True


def _faults_of_one_big_tensor(mib: int) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.empty(mib * 2**18)  # float32: 4 bytes each
    x.fill_(1.0)  # touch every page
    del x
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@linux_only
def test_a_freed_block_over_32_mib_is_reused_without_page_faults():
    """glibc's mmap threshold stops at 32 MiB; blocks above it must come from the kept heap as well
    (M_MMAP_MAX = 0), or every allocation faults its pages in again (64 MiB: 16,384 faults of 4 KiB)."""
    assert keep_freed_memory()
    _faults_of_one_big_tensor(64)  # the first one grows the heap
    assert _faults_of_one_big_tensor(64) < 1000
