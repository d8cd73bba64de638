import sys

import pytest

from spikedyn.perf import keep_freed_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings are Linux-only")
def test_keep_freed_memory_applies_on_glibc():
    assert keep_freed_memory() is True
