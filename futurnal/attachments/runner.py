"""Run one extraction in a fresh child process, and kill it past the time or memory limit.

The children are forked by fork servers (:mod:`.child`) that have the extraction libraries
imported already: a fresh, isolated process per file for the price of a fork.
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


@dataclass(frozen=True, slots=True)
class ExtractionOutcome:
    """``status`` is ``ok`` (with ``text``), ``timeout`` or ``failed`` (with a short ``reason``)."""

    status: str
    text: str | None = None
    reason: str | None = None


class OutOfProcessExtractor:
    """Runs each extraction in a child process of its own, forked by a fork server.

    A process per file buys what a thread cannot: a hang is ended by killing it, a memory blow-up
    stays in its own address space, and a crash in a C extension takes down only the child. The
    fork servers (one per concurrent extraction, started on demand) have the libraries imported,
    so a child costs a fork, not an interpreter start. Thread-safe: each call borrows a server.
    :meth:`kill_all` ends every child and server (used when the service stops) and refuses new work.
    """

    def __init__(self, settings: AttachmentSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._idle: list[_ForkServer] = []
        self._busy: set[_ForkServer] = set()
        self._closed = False

    def extract(self, path: Path, kind: str, charset: str | None = None) -> ExtractionOutcome:
        request = {
            "path": str(path), "kind": kind, "charset": charset,
            "max_chars": self._settings.max_text_chars, "memory_mb": self._settings.memory_mb,
            "timeout_seconds": self._settings.timeout_seconds,
        }
        server = self._borrow()
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
        for server in servers:
            server.kill()

    def _borrow(self) -> _ForkServer | None:
        with self._lock:
            if self._closed:
                return None
            server = None
            while self._idle and server is None:
                candidate = self._idle.pop()
                if candidate.running():
                    server = candidate
                else:
                    candidate.kill()
            if server is None:
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
        self.alive = True

    def run(self, request: dict[str, Any], timeout: float) -> ExtractionOutcome:
        deadline = time.monotonic() + timeout
        try:
            assert self._process.stdin is not None
            self._process.stdin.write(json.dumps(request).encode() + b"\n")
            self._process.stdin.flush()
            # The first request also waits for the server's start-up (imports): a minute at most.
            started = self._replies.line(max(deadline, time.monotonic() + 60))
            if started is None:
                raise _ServerGone("no child was started")
            self._child = json.loads(started)["pid"]
            ended = self._replies.line(deadline)
            if ended is None and self.alive:
                self._kill_child()
                ended = self._replies.line(time.monotonic() + 10)
                if ended is not None:
                    return ExtractionOutcome("timeout", reason=f"killed after {timeout:g} s")
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
        return _outcome(int(result["status"]), answer)

    def running(self) -> bool:
        return self.alive and self._process.poll() is None

    def _kill_child(self) -> None:
        if self._child is not None:
            try:
                os.killpg(self._child, signal.SIGKILL)  # it leads its own group
            except (ProcessLookupError, PermissionError):
                pass

    def kill(self) -> None:
        """End the running child and the server; safe from any thread, more than once."""
        self.alive = False
        self._kill_child()
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


def _outcome(returncode: int, answer: Any) -> ExtractionOutcome:
    if not isinstance(answer, dict):
        answer = {}
    if returncode == 0 and isinstance(answer.get("text"), str):
        return ExtractionOutcome("ok", text=answer["text"])
    if returncode == EXIT_OUT_OF_MEMORY:
        return ExtractionOutcome("failed", reason="over the memory limit")
    if returncode == -signal.SIGXCPU:  # the child's own CPU limit, a second line behind the clock
        return ExtractionOutcome("timeout", reason="over the CPU time limit")
    if returncode < 0:
        return ExtractionOutcome("failed", reason=f"killed by signal {-returncode}")
    return ExtractionOutcome("failed", reason=str(answer.get("error") or f"exit status {returncode}")[:300])

