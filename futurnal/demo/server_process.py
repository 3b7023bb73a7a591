"""A server process in its own process group: the life cycle every throwaway server here shares.

Dovecot (the ``demo`` command and the tests), Cyrus and the test OAuth2 provider each run as one
main process in a session of its own: terminal signals (Ctrl-C) stay away from it, and all it
forks stays in one process group that can be killed as a whole. :class:`ServerProcess` launches
such a process, waits until it is ready, stops it by killing its group within a deadline, and is
a context manager; a subclass says what to run, what "ready" means and what to tidy up.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = ["NeverReady", "ServerProcess", "free_ports"]

# Every launched process that was not stopped yet -> whether SIGTERM goes to its whole group.
_running: dict[subprocess.Popen[Any], bool] = {}


@atexit.register
def _terminate_forgotten_servers() -> None:
    """SIGTERM servers whose owner never called stop(), e.g. after an uncaught exception.

    They run in sessions of their own, so they would otherwise outlive the program and keep their
    ports. No waiting here: the servers finish shutting down on their own.
    """
    for proc, whole_group in list(_running.items()):
        if proc.poll() is None:  # not reaped, so its process group is still ours
            _terminate(proc.pid, whole_group)


class NeverReady(Exception):
    """Raised by a readiness probe when waiting longer cannot help, e.g. a port taken by another
    program; the message says what is wrong."""


class ServerProcess:
    """One server process and its process group; subclasses implement :meth:`start`.

    Attributes:
        term_whole_group: Send SIGTERM to the whole group rather than to the main process
            alone (when the main process does not pass it on to its children itself).
        stop_timeout: Seconds the main process gets to exit after SIGTERM, before the group is
            sent SIGKILL.
        drain_timeout: Seconds the rest of the group gets to exit on its own after the main
            process has, e.g. to finish writing, before whatever is left is sent SIGKILL.
    """

    term_whole_group: bool = False
    stop_timeout: float = 10.0
    drain_timeout: float = 0.0

    _proc: subprocess.Popen[Any] | None = None

    @property
    def running(self) -> bool:
        """Whether the server process was started and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the server and everything in its process group. Idempotent.

        SIGTERM first (see :attr:`term_whole_group`); SIGKILL to the group if the main process
        does not exit within :attr:`stop_timeout`. Once it has exited, whatever is left of the
        group gets :attr:`drain_timeout` seconds and is then killed: a restarted server must
        never share its ports or its clients with stragglers of the old one.
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return
        _running.pop(proc, None)
        try:
            if proc.returncode is None:  # not reaped yet, so the group id cannot have been reused
                if not _exited(proc.pid):
                    _terminate(proc.pid, self.term_whole_group)
                    if not _wait_unreaped(proc.pid, self.stop_timeout):
                        _signal_group(proc.pid, signal.SIGKILL)
                        _wait_unreaped(proc.pid, self.stop_timeout)
                deadline = time.monotonic() + self.drain_timeout
                while time.monotonic() < deadline and _group_members(proc.pid):
                    time.sleep(0.005)
                _signal_group(proc.pid, signal.SIGKILL)
            elif _group_members(proc.pid):  # exited and reaped earlier; its group lives on
                _signal_group(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=self.stop_timeout)
            if proc.stdout is not None:
                proc.stdout.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _launch(self, argv: Sequence[str], log: Path, *, pipe_stdout: bool = False,
                env: Mapping[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen[Any]:
        """Start ``argv`` in a new session, output appended to ``log``.

        With ``pipe_stdout``, only stderr goes to the log and stdout is readable as text from
        the returned process (for a server that announces itself there).
        """
        with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
            self._proc = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipe_stdout else out,
                stderr=out if pipe_stdout else subprocess.STDOUT, text=pipe_stdout,
                env=env, cwd=cwd, start_new_session=True,
            )
        _running[self._proc] = self.term_whole_group
        return self._proc

    def _wait_ready(self, probe: Callable[[float], str | None], timeout: float,
                    interval: float = 0.05) -> str | None:
        """Call ``probe(deadline)`` until it returns None (ready); else say why it never was.

        The probe returns what it still waits for (e.g. ``"did not greet on 127.0.0.1:143"``),
        or raises :class:`NeverReady`; it should return by ``deadline`` (a ``time.monotonic()``
        value). Returns None once ready, else the problem: the process exited, the probe gave
        up, or what it still waited for when ``timeout`` seconds had passed.
        """
        proc = self._proc
        assert proc is not None, "_launch() first"
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                return f"exited with code {proc.returncode}"
            try:
                waiting = probe(deadline)
            except NeverReady as exc:
                return str(exc)
            if waiting is None:
                return None
            if time.monotonic() >= deadline:
                return f"{waiting} within {timeout} s"
            time.sleep(interval)


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (all bound at once, so never the same twice)."""
    socks = [socket.create_server(("127.0.0.1", 0)) for _ in range(count)]
    ports = [sock.getsockname()[1] for sock in socks]
    for sock in socks:
        sock.close()
    return ports


def _terminate(pid: int, whole_group: bool) -> None:
    try:
        if whole_group:
            os.killpg(pid, signal.SIGTERM)
        else:
            os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):  # none left, or none of them ours to signal
        pass


def _exited(pid: int) -> bool:
    """Whether child ``pid`` has exited, without reaping it."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _wait_unreaped(pid: int, timeout: float) -> bool:
    """Wait until child ``pid`` exits without reaping it (so its process group id stays ours)."""
    deadline = time.monotonic() + timeout
    while not _exited(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group ``pgid``, found through /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat_file:
                fields = stat_file.read().rsplit(b")", 1)[1].split()  # after "pid (comm)"
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(entry))
    return members
