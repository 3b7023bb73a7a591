"""One process owns a data directory at a time."""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from loguru import logger

from .atomic import make_private_dir, remove_stale_temp_files
from .errors import DataDirLocked

__all__ = ["DataDirLock", "writers_take_turns"]


class DataDirLock:
    """An exclusive ``flock`` on ``<data dir>/lock``, released when the process dies.

    ``flock`` rather than a PID file: the kernel drops the lock on exit, even on SIGKILL, so a
    crashed run never leaves a stale lock behind. Whoever takes it also sweeps away the temp files
    that writes cut short by such a crash left (no other owner is writing then).
    """

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / "lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        make_private_dir(self._path.parent)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown pid"
            os.close(fd)
            raise DataDirLocked(str(self._path.parent), owner) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        if removed := remove_stale_temp_files(self._path.parent):
            logger.info("removed {n} temp file(s) left by interrupted writes", n=removed)

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


@contextmanager
def writers_take_turns(lock_path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock_path`` (created 0600, its directory 0700) for the block.

    For a file that more than one process may change (a CLI command and the running service):
    each reads, changes and atomically replaces it in turn. Readers need no lock.
    """
    make_private_dir(lock_path.parent)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # drops the lock
