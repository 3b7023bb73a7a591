"""Run one child process and account for exactly its resources.

``resource.getrusage(RUSAGE_CHILDREN)`` mixes every child ever reaped, and its ``ru_maxrss`` is
the maximum over all of them, so it cannot give one run's peak memory. ``os.wait4`` returns the
rusage of the one child it reaps: its user and system CPU and its own peak RSS.

Children are started by ``spawner.py``, a small helper process, not by this (large) process:
Linux keeps a process's peak RSS across exec, so a child forked from here would inherit this
process's size as its "peak". See ``spawner.py``; :func:`rss_floor` measures what remains.
Output goes to files, not pipes, so a chatty child can never block on a full pipe.
"""

from __future__ import annotations

import atexit
import marshal
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["ChildRun", "ChildTimeout", "machine_cpu_seconds", "rss_floor", "run_measured"]


class ChildTimeout(RuntimeError):
    """The child ran past its timeout and was killed."""


@dataclass(frozen=True)
class ChildRun:
    """What one child process cost; ``max_rss_bytes`` is that process's own peak RSS."""

    argv: tuple[str, ...]
    returncode: int
    wall_seconds: float
    user_seconds: float
    system_seconds: float
    max_rss_bytes: int
    stdout: str
    stderr: str

    @property
    def cpu_seconds(self) -> float:
        return self.user_seconds + self.system_seconds

    def check(self, what: str) -> ChildRun:
        """Raise with the child's stderr tail when it failed: a failed run must never be timed."""
        if self.returncode != 0:
            tail = "\n".join((self.stderr.strip() or self.stdout.strip()).splitlines()[-15:])
            raise RuntimeError(f"{what} failed with exit status {self.returncode}:\n{tail}")
        return self


class _Spawner:
    """The helper process; one request at a time (the benchmark runs one command at a time)."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(Path(__file__).with_name("spawner.py"))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
        )
        self._lock = threading.Lock()
        atexit.register(self.close)

    def run(self, request: dict[str, Any], timeout: float,
            on_start: Callable[[int], None] | None = None) -> tuple[dict[str, Any], bool]:
        """Send ``request``; return the final reply and whether the watchdog killed the child.
        ``on_start`` is given the child's pid as soon as it runs (from this thread)."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        with self._lock:
            marshal.dump(request, self._proc.stdin)
            self._proc.stdin.flush()
            pid = _load(self._proc.stdout)["pid"]
            if on_start is not None:
                on_start(pid)
            timed_out = threading.Event()

            def kill() -> None:
                timed_out.set()
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

            watchdog = threading.Timer(timeout, kill)
            watchdog.daemon = True
            watchdog.start()
            try:
                return _load(self._proc.stdout), timed_out.is_set()
            finally:
                watchdog.cancel()

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)


def _load(stream: IO[bytes]) -> dict[str, Any]:
    try:
        reply: dict[str, Any] = marshal.load(stream)
    except EOFError:
        raise RuntimeError("the benchmark's spawner process died") from None
    return reply


_spawner: _Spawner | None = None


def _get_spawner() -> _Spawner:
    global _spawner
    if _spawner is None:
        _spawner = _Spawner()
    return _spawner


def run_measured(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float,
    stdin: str | None = None,
    cwd: Path | None = None,
    on_start: Callable[[int], None] | None = None,
) -> ChildRun:
    """Run ``argv`` to completion and return its wall time, CPU time and peak RSS.

    Wall time covers fork/exec to reaping, i.e. what a user waiting for the command sees. A
    watchdog kills the child after ``timeout`` seconds (then :class:`ChildTimeout` is raised).
    """
    with tempfile.TemporaryDirectory(prefix="bench-io-") as tmp:
        io_dir = Path(tmp)
        stdin_path = None
        if stdin is not None:
            stdin_path = io_dir / "stdin"
            stdin_path.write_text(stdin, encoding="utf-8")
        request = {
            "argv": list(argv), "env": dict(env if env is not None else os.environ),
            "cwd": str(cwd) if cwd else None, "stdin": str(stdin_path) if stdin_path else None,
            "stdout": str(io_dir / "stdout"), "stderr": str(io_dir / "stderr"),
        }
        reply, timed_out = _get_spawner().run(request, timeout, on_start)
        stdout = (io_dir / "stdout").read_text(encoding="utf-8", errors="replace")
        stderr = (io_dir / "stderr").read_text(encoding="utf-8", errors="replace")
    if timed_out:
        raise ChildTimeout(f"{argv[0]} did not finish within {timeout:g} s and was killed")
    return ChildRun(
        argv=tuple(argv), returncode=os.waitstatus_to_exitcode(reply["status"]), wall_seconds=reply["wall"],
        user_seconds=reply["utime"], system_seconds=reply["stime"],
        max_rss_bytes=reply["maxrss_kb"] * 1024,  # Linux reports kilobytes
        stdout=stdout, stderr=stderr,
    )


def rss_floor() -> int:
    """Peak RSS reported for ``true``: the least any measured child can show (bytes).

    A child's reported peak is max(its real peak, this floor), so figures above it are exact.
    """
    return run_measured(["true"], env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, timeout=10).max_rss_bytes


def machine_cpu_seconds() -> float:
    """CPU time used so far by everything on the machine (all CPUs, /proc/stat), in seconds.

    The difference over a run, divided by its wall time, is how many CPUs were busy during it:
    about 1 plus Dovecot's share for a single-threaded client; much more means other work on
    the machine competed with the measurement (this machine has 2 CPUs and is shared).
    """
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice, already counted in user/nice]
    busy = sum(fields[:3]) + sum(fields[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a running process has used so far, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def process_status(pid: int, key: str, unit: int = 1024) -> int:
    """A field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``: bytes; ``Threads`` with ``unit=1``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * unit
    return 0


def open_sockets(pid: int) -> int:
    """How many sockets a running process holds open."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:
            pass
    return count
