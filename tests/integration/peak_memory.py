"""Peak memory of a CLI run, measured as the process's own and as its tree's.

Run as a script, this file is the launcher: it starts the command given as JSON on argv, samples
the child's ``VmHWM`` every 20 ms and waits for it with ``wait4``, and prints what it saw. Why a
launcher of its own, not ``wait4`` from the test: on Linux a child's ``ru_maxrss`` starts from
the high-water mark of the memory it had before exec -- a copy of its parent's -- so a CLI
started by pytest (hundreds of MB by the end of a suite) would report pytest's own peak. A
launcher started fresh is small, so what its child reports is the child's.

Imported, it gives :func:`run_measured` to the tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Measured", "run_measured"]


@dataclass
class Measured:
    code: int
    out: str
    err: str
    seconds: float
    own_peak_mb: float  # VmHWM of the process itself, sampled every 20 ms until it exits
    tree_peak_mb: float  # its ru_maxrss from wait4: it and every descendant it reaped (parser workers...)


def run_measured(command: list[str], env: dict[str, str], timeout: float) -> Measured:
    """Run ``command`` as its own process; its result, wall time and peak memory.

    ``os.wait4`` gives the peak resident set of the child, but Linux folds into it the peaks of the
    children it reaped (its parser workers and extraction servers, whose memory is capped
    separately). So the process's own high-water mark (``VmHWM``, which never goes down) is also
    read every 20 ms while it runs; the last reading is its own peak, give or take its last moments.
    """
    with tempfile.TemporaryDirectory() as scratch:
        out_path, err_path = Path(scratch, "out"), Path(scratch, "err")
        request = json.dumps([command, str(out_path), str(err_path), timeout])
        launched = subprocess.run([sys.executable, __file__, request], env=env, capture_output=True,
                                  text=True, timeout=timeout + 30)
        assert launched.returncode == 0, launched.stderr
        report = json.loads(launched.stdout)
        return Measured(report["code"], out_path.read_bytes().decode("utf-8", "replace"),
                        err_path.read_bytes().decode("utf-8", "replace"), report["seconds"],
                        report["own_kib"] / 1024, report["tree_kib"] / 1024)  # KiB on Linux


def _own_peak_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0  # gone, or a zombie (whose memory is released)


def _launch(request: str) -> None:
    command, out_path, err_path, timeout = json.loads(request)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.monotonic()
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        own = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.02):
                own[0] = max(own[0], _own_peak_kib(process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        killer = threading.Timer(timeout, process.kill)
        killer.start()
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.monotonic() - started
        killer.cancel()
        done.set()
        sampler.join()
    print(json.dumps({"code": os.waitstatus_to_exitcode(status), "seconds": seconds,
                      "tree_kib": usage.ru_maxrss, "own_kib": own[0]}))


if __name__ == "__main__":
    _launch(sys.argv[1])
