"""Run extractions in child processes, and kill a child past a file's time or memory limit.

The children are forked by fork servers (:mod:`.child`) that have the extraction libraries
imported already. A child serves several files of one mailbox in turn, each under its own limits,
and is replaced after any failure, timeout or cap, and after ``files_per_child`` files.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .child import EXIT_OUT_OF_MEMORY
from .settings import AttachmentSettings

__all__ = ["ExtractionOutcome", "OutOfProcessExtractor"]

#: How long a stopping service gives the fork servers to end their children and themselves.
_CLOSE_GRACE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class ExtractionOutcome:
    """``status`` is ``ok`` (with ``text``), ``timeout`` or ``failed`` (with a short ``reason``)."""

    status: str
    text: str | None = None
    reason: str | None = None
    #: The process that read the file (None if none was started): tests and logs tell children apart by it.
    child: int | None = None


class OutOfProcessExtractor:
    """Runs extractions in child processes, forked by fork servers, never in this process.

    A child process buys what a thread cannot: a hang is ended by killing it, a memory blow-up
    stays in its own address space, and a crash in a C extension takes down only the child. The
    fork servers (one per concurrent extraction, started on demand) have the libraries imported,
    so a child costs a fork, not an interpreter start; and a child serves up to
    ``files_per_child`` files of the same ``group`` (a mailbox), so most files skip the fork too.
    Every file keeps its own wall-clock timeout, CPU limit and memory cap (see :mod:`.child`).
    Thread-safe: each call borrows a server, preferring one whose child serves the same group.
    :meth:`kill_all` ends every child and server (used when the service stops) and refuses new work.
    """

    def __init__(self, settings: AttachmentSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._idle: list[_ForkServer] = []
        self._busy: set[_ForkServer] = set()
        self._closed = False

    def extract(self, path: Path, kind: str, charset: str | None = None, group: str | None = None) -> ExtractionOutcome:
        """Extract one file; ``group`` (the mailbox) keeps children from serving files of two groups."""
        request = {
            "path": str(path), "kind": kind, "charset": charset, "group": group,
            "max_chars": self._settings.max_text_chars, "memory_mb": self._settings.memory_mb,
            "timeout_seconds": self._settings.timeout_seconds, "files_per_child": self._settings.files_per_child,
        }
        server = self._borrow(group)
        if server is None:
            return ExtractionOutcome("failed", reason="the service is stopping")
        try:
            return server.run(request, self._settings.timeout_seconds)
        finally:
            self._give_back(server)

    def kill_all(self) -> None:
        with self._lock:
            self._closed = True
            servers = [*self._idle, *self._busy]
            self._idle.clear()
        for server in servers:  # each ends its child and then itself, their CPU time accounted for
            server.close_input()
        deadline = time.monotonic() + _CLOSE_GRACE_SECONDS
        for server in servers:
            server.kill(wait=deadline - time.monotonic())

    def _borrow(self, group: str | None) -> _ForkServer | None:
        with self._lock:
            if self._closed:
                return None
            for candidate in [s for s in self._idle if not s.running()]:
                self._idle.remove(candidate)
                candidate.kill()
            server = next((s for s in reversed(self._idle) if s.group == group), None)
            if server is None and self._idle:
                server = self._idle[-1]
            if server is not None:
                self._idle.remove(server)
            else:
                server = _ForkServer()
            self._busy.add(server)
            return server

    def _give_back(self, server: _ForkServer) -> None:
        with self._lock:
            self._busy.discard(server)
            if server.alive and not self._closed:
                self._idle.append(server)
                return
        server.kill()


class _ForkServer:
    """One ``python -m futurnal.attachments.child`` and the child it is running, if any."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "futurnal.attachments.child"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd="/",  # `-m` puts the working directory on sys.path; make it one with no modules
        )
        assert self._process.stdout is not None
        self._replies = _LineReader(self._process.stdout.fileno())
        self._child: int | None = None
        self._killed_one = False  # a child was killed: the next file gets a new one, whatever
        self.group: str | None = None  # whose files its child serves
        self.alive = True

    def run(self, request: dict[str, Any], timeout: float) -> ExtractionOutcome:
        deadline = time.monotonic() + timeout
        child = None
        if self._killed_one:
            request = {**request, "fresh": True}
            self._killed_one = False
        self.group = request.get("group")
        try:
            assert self._process.stdin is not None
            self._process.stdin.write(json.dumps(request).encode() + b"\n")
            self._process.stdin.flush()
            # The first request also waits for the server's start-up (imports): a minute at most.
            started = self._replies.line(max(deadline, time.monotonic() + 60))
            if started is None:
                raise _ServerGone("no child was started")
            self._child = child = json.loads(started)["pid"]
            ended = self._replies.line(deadline)
            if ended is None and self.alive:
                self._kill_child()
                ended = self._replies.line(time.monotonic() + 10)
                if ended is not None:
                    return ExtractionOutcome("timeout", reason=f"killed after {timeout:g} s", child=child)
            if ended is None:
                raise _ServerGone("the child's end was not reported")
        except (OSError, ValueError, KeyError, _ServerGone) as exc:
            self.kill()
            return ExtractionOutcome("failed", reason=f"extraction server failed: {exc}")
        finally:
            self._child = None
        result = json.loads(ended)
        try:
            answer = json.loads(result["answer"]) if result["answer"] else None
        except ValueError:
            answer = None
        return _outcome(int(result["status"]), answer, child)

    def running(self) -> bool:
        return self.alive and self._process.poll() is None

    def _kill_child(self) -> None:
        if self._child is not None:
            self._killed_one = True
            try:
                os.killpg(self._child, signal.SIGKILL)  # it leads its own group
            except (ProcessLookupError, PermissionError):
                pass

    def close_input(self) -> None:
        """Kill the running child, if any, and tell the server to end its child and itself."""
        self.alive = False
        self._kill_child()
        if self._process.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self._process.stdin.close()

    def kill(self, wait: float = 0.0) -> None:
        """End the running child and the server (after ``wait`` seconds for it to end by itself);
        safe from any thread, more than once."""
        self.close_input()
        if wait > 0:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=wait)
        self._process.kill()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class _ServerGone(Exception):
    pass


class _LineReader:
    """Reads newline-ended replies from a pipe, each with a deadline."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""

    def line(self, deadline: float) -> bytes | None:
        """The next line, or None at the deadline or at EOF."""
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                ready, _, _ = select.select([self._fd], [], [], remaining)
            except (OSError, ValueError):
                return None
            if not ready:
                return None
            chunk = os.read(self._fd, 1 << 16)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line


def _outcome(returncode: int, answer: Any, child: int | None = None) -> ExtractionOutcome:
    if not isinstance(answer, dict):
        answer = {}
    if returncode == 0 and isinstance(answer.get("text"), str):
        return ExtractionOutcome("ok", text=answer["text"], child=child)
    if returncode == EXIT_OUT_OF_MEMORY:
        return ExtractionOutcome("failed", reason="over the memory limit", child=child)
    if returncode == -signal.SIGXCPU:  # the child's own CPU limit, a second line behind the clock
        return ExtractionOutcome("timeout", reason="over the CPU time limit", child=child)
    if returncode < 0:
        return ExtractionOutcome("failed", reason=f"killed by signal {-returncode}", child=child)
    reason = str(answer.get("error") or f"exit status {returncode}")[:300]
    return ExtractionOutcome("failed", reason=reason, child=child)

