"""Crash-safe file writes: a reader sees the old content or the new, never half of either."""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tinydb.storages import Storage

from .errors import CorruptStateFile

__all__ = [
    "AtomicJSONStorage", "atomic_write_bytes", "create_file_once", "create_temp_file", "fsync_directory",
    "make_private_dir", "remove_stale_temp_files", "tinydb_shape_problem",
]  # fmt: skip

#: What :func:`create_temp_file` names its files: ``.<target>.<pid>.<thread>.<n>.tmp``.
_TEMP_NAME = re.compile(r"\..+\.(\d+)\.\d+\.\d+\.tmp")
#: A temp file this old is abandoned even when a process with its writer's pid runs.
STALE_TEMP_SECONDS = 60.0


def fsync_directory(directory: Path) -> None:
    """Make a rename inside ``directory`` durable (the rename lives in the directory's inode)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_private_dir(directory: Path) -> None:
    """Create ``directory`` and its missing parents 0700: what is under the data directory is the
    user's alone, and ``Path.mkdir(parents=True)`` would make the parents 0777 less the umask."""
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        if not directory.is_dir():
            raise
    except FileNotFoundError:
        if directory.parent == directory:
            raise
        make_private_dir(directory.parent)
        make_private_dir(directory)


def atomic_write_bytes(
    path: Path, data: bytes, *, mode: int = 0o600, sync_dir: bool = True, make_parent: bool = True,
    fsync: bool = True,
) -> None:
    """Write ``data`` to ``path`` by temp file + fsync + rename.

    ``sync_dir=False`` lets a caller writing many files into one directory fsync it once at the
    end, and ``make_parent=False`` lets it create the directory once: on a busy disk every
    system call here waits its turn, so a store writing many files keeps to the five that matter.
    ``fsync=False`` is for a file whose loss in a crash costs nothing (whole or absent, never half).
    """
    if make_parent:
        make_private_dir(path.parent)
    fd, tmp = create_temp_file(str(path))
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
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


def create_file_once(path: Path, data: bytes) -> bool:
    """Create ``path`` holding ``data`` (0600, its missing directories 0700) unless it exists.

    The file appears whole, by a hard link of a finished temp file, so two processes creating it
    at once agree on one content: whoever links second keeps the winner's. True when this call
    created it.
    """
    make_private_dir(path.parent)
    fd, tmp = create_temp_file(str(path))  # 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        os.unlink(tmp)
    fsync_directory(path.parent)
    return True


_temp_numbers = itertools.count()


def create_temp_file(target: str) -> tuple[int, str]:
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


def remove_stale_temp_files(root: Path, now: float | None = None) -> int:
    """Delete the temp files under ``root`` that no write will ever rename: their writer is gone
    (the pid in the name runs no more) or they are older than ``STALE_TEMP_SECONDS``.

    For the owner of the data directory's lock, at its start: a write cut by ``kill -9`` leaves
    its temp file behind, and nothing else would ever remove it. Only names this module makes are
    touched. Returns how many were removed.
    """
    now = time.time() if now is None else now
    removed = 0
    for directory, _dirs, names in os.walk(root):
        for name in names:
            match = _TEMP_NAME.fullmatch(name)
            if match is None:
                continue
            path = os.path.join(directory, name)
            try:
                stale = not _running(int(match[1])) or now - os.lstat(path).st_mtime > STALE_TEMP_SECONDS
                if stale:
                    os.unlink(path)
                    removed += 1
            except FileNotFoundError:
                continue  # its writer renamed it meanwhile
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except OverflowError:
        return False
    return True


class AtomicJSONStorage(Storage):
    """TinyDB storage that replaces the file atomically instead of rewriting it in place.

    TinyDB's own JSONStorage truncates and rewrites the file, so a crash mid-write leaves a
    corrupt database. This one never does. It is not thread-safe: one owner per file.
    """

    def __init__(
        self, path: str | Path, read_only: bool = False, check: Callable[[dict[str, Any]], str | None] | None = None
    ) -> None:
        """``check`` names what is wrong with the data of a file that is well-formed TinyDB (None: nothing)."""
        self._path = Path(path)
        self._read_only = read_only
        self._check = check

    def read(self) -> dict[str, dict[str, Any]] | None:
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            return None
        if not raw.strip():  # never written so: every write holds at least "{}"
            raise CorruptStateFile(str(self._path), "the file is empty")
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise CorruptStateFile(str(self._path), f"not valid JSON: {exc}") from None
        problem = tinydb_shape_problem(data)
        if problem is None and self._check is not None:
            problem = self._check(data)
        if problem is not None:
            raise CorruptStateFile(str(self._path), problem)
        checked: dict[str, dict[str, Any]] = data
        return checked

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        if self._read_only:
            raise PermissionError(f"{self._path} was opened read-only")
        payload = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False).encode()
        atomic_write_bytes(self._path, payload)

    def close(self) -> None:
        """Nothing is held open between calls."""


def tinydb_shape_problem(data: Any) -> str | None:
    """What keeps ``data`` from being TinyDB's ``{table: {doc id: document}}``, or None.

    Checked on every read: TinyDB itself would fail on some shapes with an error naming no file,
    and on others quietly rewrite the table, losing what was there.
    """
    if not isinstance(data, dict):
        return "top level is not a JSON object"
    for table, documents in data.items():
        if not isinstance(documents, dict):
            return f"table {table!r} is not a JSON object"
        for doc_id, document in documents.items():
            if not (doc_id.isascii() and doc_id.isdigit()) or not isinstance(document, dict):
                return f"entry {doc_id!r} of table {table!r} is not a document with a numeric id"
    return None
