"""Waking readers of the change feed when the writer commits, across processes, without polling.

Each listener (``elements changes --follow``, a console ``changes`` stream, an embedder) binds a
datagram socket in Linux's abstract namespace and leaves a file named after it in the data
directory's ``feed-listeners/``; after each commit the writer sends one byte to every socket listed
there. A listener blocks in ``select`` until that byte comes, so an idle follower costs nothing
and sees a commit at once. A listener that died leaves a file whose socket is gone: the next ring
removes it. Elsewhere than Linux (no abstract sockets) listeners wake on their timeout instead.
"""

from __future__ import annotations

import os
import secrets
import select
import socket
import sys
from pathlib import Path

__all__ = ["BellListener", "ChangeBell"]

_ABSTRACT = sys.platform.startswith("linux")
_PREFIX = "\0futurnal-feed-"


class ChangeBell:
    """The writer's side: ``ring()`` after each commit wakes every listener of ``directory``."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._socket: socket.socket | None = None
        self._names: list[str] = []
        self._listed_at: int | None = None  # the directory's mtime when it was last listed

    def ring(self) -> None:
        if not _ABSTRACT:
            return
        try:
            mtime = os.stat(self._directory).st_mtime_ns
        except FileNotFoundError:
            return  # nobody has ever listened
        if mtime != self._listed_at:
            self._names = [entry.name for entry in os.scandir(self._directory) if not entry.name.startswith(".")]
            self._listed_at = mtime
        if not self._names:
            return
        if self._socket is None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._socket.setblocking(False)
        for name in self._names:
            try:
                self._socket.sendto(b"!", _PREFIX + name)
            except BlockingIOError:
                pass  # its queue is full of rings it has not read yet: it is awake anyway
            except (ConnectionRefusedError, FileNotFoundError):
                (self._directory / name).unlink(missing_ok=True)  # its listener is gone

    def listen(self) -> BellListener:
        return BellListener(self._directory)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class BellListener:
    """A reader's side: ``wait(timeout)`` returns True when the writer rang since the last wait."""

    def __init__(self, directory: Path) -> None:
        self._file: Path | None = None
        self._socket: socket.socket | None = None
        if not _ABSTRACT:
            return
        name = f"{os.getpid()}-{secrets.token_hex(6)}"
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(_PREFIX + name)
        self._socket.setblocking(False)
        directory.mkdir(mode=0o700, exist_ok=True)
        self._file = directory / name
        self._file.touch(mode=0o600)

    def wait(self, timeout: float) -> bool:
        if self._socket is None:
            select.select([], [], [], timeout)
            return False
        readable, _, _ = select.select([self._socket], [], [], timeout)
        if not readable:
            return False
        try:
            while self._socket.recv(64):  # every ring so far: one wake-up covers them all
                pass
        except BlockingIOError:
            pass
        return True

    def close(self) -> None:
        if self._file is not None:
            self._file.unlink(missing_ok=True)
            self._file = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> BellListener:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
