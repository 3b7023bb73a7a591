"""A fixed mmap threshold: a freed multi-megabyte buffer goes back to the kernel at once."""

from __future__ import annotations

import subprocess
import sys

import pytest

_PROBE = """
import sys
from futurnal.process.malloc_threshold import fix_mmap_threshold
if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
# glibc raises its threshold past a freed 8 MB mapping; afterwards 4 MB buffers come from the heap
first = bytearray(8 * 1024 * 1024)
del first
kept, pins = [], []
for _ in range(8):  # 32 MB, touched (bytearray zero-fills), each followed by a small block that stays
    kept.append(bytearray(4 * 1024 * 1024))
    pins.append(bytearray(4096))  # from malloc too (pymalloc takes only up to 512 bytes)
before = rss_kb()
del kept
print(before - rss_kb())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_with_the_fixed_threshold_freed_large_buffers_leave_the_process() -> None:
    def released_mb(mode: str) -> float:
        done = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, timeout=60,
                              check=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)})
        return int(done.stdout) / 1024

    assert released_mb("fixed") > 28  # every 4 MB buffer was a mapping of its own
    assert released_mb("default") < 8  # the adjusted threshold kept them on the heap
