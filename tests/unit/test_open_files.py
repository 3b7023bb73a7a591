"""The service raises its soft open-file limit to the hard one (a real child process's limits)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import resource
from futurnal.process.open_files import UNLIMITED_TARGET, raise_open_file_limit
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
returned = raise_open_file_limit()
expected = UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
print(returned, resource.getrlimit(resource.RLIMIT_NOFILE)[0], expected)
"""


def test_the_soft_limit_is_raised_to_the_hard_limit() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True)
    returned, soft, expected = (int(value) for value in done.stdout.split())
    assert soft == expected == returned and soft > 256, done.stdout
