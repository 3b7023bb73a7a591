"""The control plane shared by several processes (a PostgreSQL database, :mod:`.postgres.control`),
as the file-based stores see it: JSON documents read and written whole, an audit log, and the
quarantine.

Kept free of any database library: a data directory without a shared control plane imports
nothing of it, and the stores here take either a file or a shared document.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from tinydb.storages import Storage

from .atomic import AtomicJSONStorage, tinydb_shape_problem
from .audit_log import AuditTrail
from .errors import CorruptStateFile, StorageError
from .quarantine import Quarantine

__all__ = ["DocumentChanged", "SharedControlPlane", "SharedDocument", "SharedDocumentStorage", "tinydb_storage"]

_T = TypeVar("_T")


class DocumentChanged(StorageError):
    """A write that would overwrite another process's write made since this one read the document."""

    def __init__(self, where: str) -> None:
        super().__init__(f"{where} was changed by another process meanwhile; nothing was written, try again")


class SharedDocument(Protocol):
    """One JSON object kept under a name, read and written whole."""

    @property
    def location(self) -> str:
        """What it is and where, for messages: ``document 'registry' in postgresql://host/db``."""

    def read(self) -> dict[str, Any] | None:
        """Its content, None when there is none. A later :meth:`write` is checked against this read."""

    def write(self, data: dict[str, Any]) -> None:
        """Replace the content; :class:`DocumentChanged` when another process wrote it since this
        object's last :meth:`read` (nothing is written then)."""

    def update(self, change: Callable[[dict[str, Any]], _T]) -> _T:
        """Apply ``change`` to the content (``{}`` when there is none) in place, as one
        read-modify-write no other writer can come between; returns what ``change`` returned."""

    def delete(self) -> bool:
        """Remove the document; False when there was none."""


class SharedControlPlane(Protocol):
    """What a data directory's stores use of a shared control plane."""

    def document(self, name: str, mailbox: str | None = None) -> SharedDocument:
        """The document ``name``; one of ``mailbox``'s alone is written only under its lease."""

    def audit_log(self) -> AuditTrail: ...

    def quarantine(self) -> Quarantine:
        """Quarantined messages, records and raw bytes, seen by every process."""

    @property
    def url(self) -> str:
        """The database's URL (the element store is there too)."""

    def retire_lease(self, mailbox: str) -> None:
        """Take a mailbox being removed from whichever process runs it: once a write of its owner in
        flight has committed, every later one is refused, and no process takes it again."""

    def drop_lease(self, mailbox: str) -> None:
        """Forget a removed mailbox's lease altogether."""


class SharedDocumentStorage(Storage):
    """TinyDB storage over a :class:`SharedDocument`, with :class:`~.atomic.AtomicJSONStorage`'s
    ``read_only`` and ``check`` and the same checks of what is read.

    A write is refused with :class:`DocumentChanged` when another process wrote the document after
    TinyDB read it (TinyDB reads right before each write, so only a write in between conflicts).
    """

    def __init__(
        self, document: SharedDocument, read_only: bool = False,
        check: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> None:
        self._document = document
        self._read_only = read_only
        self._check = check

    def read(self) -> dict[str, dict[str, Any]] | None:
        data = self._document.read()
        if data is None:
            return None
        problem = tinydb_shape_problem(data)
        if problem is None and self._check is not None:
            problem = self._check(data)
        if problem is not None:
            raise CorruptStateFile(self._document.location, problem)
        return data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        if self._read_only:
            raise PermissionError(f"{self._document.location} was opened read-only")
        self._document.write(data)

    def close(self) -> None:
        """Nothing is held open between calls."""


def tinydb_storage(source: Path | SharedDocument) -> type[Storage]:
    """The TinyDB storage class for ``source``: a file, or a shared document."""
    return AtomicJSONStorage if isinstance(source, str | Path) else SharedDocumentStorage
