"""Run one extraction in a fresh child process, and kill it past the time or memory limit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

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
    """Starts ``python -m futurnal.attachments.child`` per attachment.

    A fresh process per file costs a few tens of milliseconds, and buys what a thread cannot: a
    hang is ended by killing it, a memory blow-up stays in its own address space, and a crash in a
    C extension takes down only the child. Thread-safe: each call owns its child. :meth:`kill_all`
    ends every child still running (used when the service stops).
    """

    def __init__(self, settings: AttachmentSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._children: set[subprocess.Popen[bytes]] = set()
        self._closed = False

    def extract(self, path: Path, kind: str, charset: str | None = None) -> ExtractionOutcome:
        request = json.dumps({
            "path": str(path), "kind": kind, "charset": charset,
            "max_chars": self._settings.max_text_chars, "memory_mb": self._settings.memory_mb,
            "timeout_seconds": self._settings.timeout_seconds,
        }).encode()
        child = self._start()
        if child is None:
            return ExtractionOutcome("failed", reason="the service is stopping")
        try:
            out, _ = child.communicate(request, timeout=self._settings.timeout_seconds)
        except subprocess.TimeoutExpired:
            self._kill(child)
            return ExtractionOutcome("timeout", reason=f"killed after {self._settings.timeout_seconds:g} s")
        finally:
            with self._lock:
                self._children.discard(child)
        return _outcome(child.returncode, out)

    def kill_all(self) -> None:
        with self._lock:
            self._closed = True
            children = list(self._children)
        for child in children:
            self._kill(child)

    def _start(self) -> subprocess.Popen[bytes] | None:
        with self._lock:
            if self._closed:
                return None
            child = subprocess.Popen(
                [sys.executable, "-m", "futurnal.attachments.child"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: a kill reaches anything it started
                cwd="/",  # `-m` puts the working directory on sys.path; make it one with no modules
            )
            self._children.add(child)
            return child

    @staticmethod
    def _kill(child: subprocess.Popen[bytes]) -> None:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            child.communicate(timeout=5)
        except (subprocess.TimeoutExpired, ValueError, OSError):
            pass


def _outcome(returncode: int, out: bytes) -> ExtractionOutcome:
    try:
        answer = json.loads(out) if out else {}
    except ValueError:
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

