"""Crash-safe file writes: a reader sees the old content or the new, never half of either."""

from __future__ import annotations

import itertools
import json
import os
import threading
from pathlib import Path
from typing import Any

from tinydb.storages import Storage

from .errors import CorruptStateFile

__all__ = ["AtomicJSONStorage", "atomic_write_bytes", "fsync_directory"]


def fsync_directory(directory: Path) -> None:
    """Make a rename inside ``directory`` durable (the rename lives in the directory's inode)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(
    path: Path, data: bytes, *, mode: int = 0o600, sync_dir: bool = True, make_parent: bool = True
) -> None:
    """Write ``data`` to ``path`` by temp file + fsync + rename.

    ``sync_dir=False`` lets a caller writing many files into one directory fsync it once at the
    end, and ``make_parent=False`` lets it create the directory once: on a busy disk every
    system call here waits its turn, so a store writing many files keeps to the five that matter.
    """
    if make_parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(str(path))
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if mode != 0o600:  # the temp file is created 0600
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_directory(path.parent)


_temp_numbers = itertools.count()


def _create_temp(target: str) -> tuple[int, str]:
    """A new 0600 file beside ``target``, named after it, this process, this thread and a counter.

    Unique without ``tempfile``'s random names, which cost more Python than the write itself when
    a store writes thousands of small files (the attachment queue, the blob store). A name left by a crashed earlier process
    with the same pid is skipped (``O_EXCL``).
    """
    directory = os.path.dirname(target) or "."  # a bare name is in the working directory
    stem = f"{directory}/.{os.path.basename(target)}.{os.getpid()}.{threading.get_native_id()}"
    while True:
        tmp = f"{stem}.{next(_temp_numbers)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), tmp
        except FileExistsError:
            continue


class AtomicJSONStorage(Storage):
    """TinyDB storage that replaces the file atomically instead of rewriting it in place.

    TinyDB's own JSONStorage truncates and rewrites the file, so a crash mid-write leaves a
    corrupt database. This one never does. It is not thread-safe: one owner per file.
    """

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        self._path = Path(path)
        self._read_only = read_only

    def read(self) -> dict[str, dict[str, Any]] | None:
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            return None
        if not raw.strip():
            return None
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise CorruptStateFile(str(self._path), f"not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise CorruptStateFile(str(self._path), "top level is not a JSON object")
        return data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        if self._read_only:
            raise PermissionError(f"{self._path} was opened read-only")
        payload = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False).encode()
        atomic_write_bytes(self._path, payload)

    def close(self) -> None:
        """Nothing is held open between calls."""
