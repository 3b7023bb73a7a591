"""Errors raised by the storage layer, each carrying a message fit to show a user as is."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

__all__ = ["CorruptStateFile", "DataDirLocked", "KeyringUnavailable", "LocalFault", "StorageError", "local_fault"]


class StorageError(Exception):
    """Base class: something about the data directory or the secret store is wrong."""


class DataDirLocked(StorageError):
    """Another process owns the data directory."""

    def __init__(self, path: str, owner: str) -> None:
        super().__init__(
            f"data directory {path} is in use by another futurnal-actors process ({owner}); "
            "stop it first, or use another --data-dir"
        )


class CorruptStateFile(StorageError):
    """A state file exists but cannot be read; it is left untouched for the user to inspect."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(
            f"state file {path} is corrupt ({detail}); it was left untouched: "
            "restore it from a backup or move it aside to start that state afresh"
        )


class KeyringUnavailable(StorageError):
    """No usable keyring backend, or the backend refused an operation."""


class LocalFault(StorageError):
    """Something on this machine, not in any message, stops the work for now: a full disk, a file
    that cannot be read or written, a CA file gone missing, an element store that cannot be written.

    Kept apart from every other failure because of what follows from it: no message is to blame
    (so none is quarantined as poison), and the same work succeeds once the user has fixed the
    machine, so it is retried with back-off rather than given up on. The text says what is wrong
    where, and what to do: "disk full at /data: free space".
    """


# The errno values that mean "the file system cannot take more", whatever the file.
_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
# SQLite result codes (primary codes, the extended ones start with these) of trouble on this machine.
_SQLITE_DISK = ("SQLITE_FULL", "SQLITE_IOERR")
_SQLITE_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
_SQLITE_UNWRITABLE = ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")
_SQLITE_BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED")
_NEARLY_FULL_BYTES = 256 * 1024  # what a file system must have left before an I/O error is blamed on it


def local_fault(exc: BaseException, *, path: Path | str | None = None, files_only: bool = False) -> LocalFault | None:
    """``exc`` as a :class:`LocalFault` when it is one, else None (a bug, or the message's fault).

    ``path`` names the file being worked on when the exception does not (SQLite's never do).
    Mail-side failures are wrapped by the IMAP session before they reach the actors, so there a
    bare ``OSError`` is always about a local file. Elsewhere (``files_only``), only one that names
    a file, or that only a file system raises, is taken for one.
    """
    if isinstance(exc, LocalFault):
        return exc
    if isinstance(exc, OSError):
        if files_only and not exc.filename and exc.errno not in (*_FULL, errno.EROFS, errno.EIO):
            return None
        return _os_fault(exc, path)
    sqlite3 = sys.modules.get("sqlite3")  # not imported for it: without it, no SQLite error exists
    if sqlite3 is not None and isinstance(exc, sqlite3.Error):
        return _sqlite_fault(exc, path)
    psycopg = sys.modules.get("psycopg")  # likewise: only a shared store imports it
    if psycopg is not None and isinstance(exc, psycopg.OperationalError):
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return LocalFault(f"the shared store cannot be reached ({detail}): check the database and the network")
    return None


def _os_fault(exc: OSError, path: Path | str | None) -> LocalFault:
    target = Path(exc.filename) if exc.filename else Path(path) if path else None
    what = exc.strerror or exc.__class__.__name__
    if exc.errno in _FULL:
        return _disk_full(target)
    if exc.errno == errno.EROFS:
        return LocalFault(f"the file system at {_directory(target)} is read-only: make it writable")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return LocalFault(f"no permission to use {target or 'a file of the data directory'}: fix its permissions")
    if exc.errno == errno.EIO:
        return LocalFault(f"I/O error at {target or 'the data directory'}: check the disk")
    return LocalFault(f"{what} at {target or 'the data directory'}: fix it")


def _sqlite_fault(exc: Exception, path: Path | str | None) -> LocalFault | None:
    name = getattr(exc, "sqlite_errorname", "") or ""
    store = Path(path) if path else None
    where = f"the element store {store}" if store else "the element store"
    if name.startswith("SQLITE_FULL") or (name.startswith("SQLITE_IOERR") and _nearly_full(store)):
        return _disk_full(store)
    if name.startswith("SQLITE_IOERR"):
        return LocalFault(f"I/O error on {where} ({exc}): check the disk")
    if name.startswith(_SQLITE_DAMAGED):
        return LocalFault(f"{where} is damaged ({exc}): `futurnal-actors elements check` tells more")
    if name.startswith(_SQLITE_UNWRITABLE):
        return LocalFault(f"cannot write {where} ({exc}): check its file and its permissions")
    if name.startswith(_SQLITE_BUSY):
        return LocalFault(f"{where} is busy ({exc}): another program holds it locked")
    return None


def _disk_full(target: Path | None) -> LocalFault:
    return LocalFault(f"disk full at {_directory(target)}: free space")


def _directory(target: Path | None) -> str:
    """The directory a file is in (where space must be freed), or the file itself if it is one."""
    if target is None:
        return "the data directory"
    return str(target if target.is_dir() else target.parent)


def _nearly_full(path: Path | None) -> bool:
    """Whether the file system holding ``path`` has (almost) no room left: SQLite reports a
    write that ran out of space as a plain I/O error in some places (its shared-memory file)."""
    if path is None:
        return False
    try:
        stats = os.statvfs(path.parent)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < _NEARLY_FULL_BYTES
