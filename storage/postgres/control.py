"""The control plane several processes share in PostgreSQL: the documents a data directory keeps
as files on one machine (the mailbox registry, each mailbox's folder states, consent) in table
``documents``, the audit log in table ``audit_log``, and quarantined messages in table
``quarantine`` (:mod:`.quarantine`; see :mod:`.schema`).

A document is read and written whole, like its file. A write after a read is refused when another
process wrote the document in between (its ``version`` moved on), so no process overwrites what it
has not seen; :meth:`SharedDocument.update` reads and writes under the row's lock in one
transaction instead. A document of one mailbox is written only by the holder of that mailbox's
lease when the control has a fence: the check runs inside the write's transaction.

Audit entries are numbered and chained under a transaction-scoped advisory lock, so two processes
appending at once take turns and the chain never forks.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.types.json import Jsonb

from ..audit_log import GENESIS, AuditEvent, ChainCheck, chain_hash, new_entry, verify_lines
from ..errors import CorruptStateFile, LocalFault, local_fault
from ..shared import DocumentChanged, SharedDocumentStorage
from ..store_url import display_store
from .fencing import Fence
from .quarantine import PostgresQuarantine
from .schema import connect

__all__ = ["DocumentChanged", "PostgresAuditLog", "SharedControl", "SharedDocument", "SharedDocumentStorage"]

_T = TypeVar("_T")
_Connection = psycopg.Connection[tuple[Any, ...]]
# pg_advisory_xact_lock key of audit appends ("FTAU"): one appender at a time, in every process.
_AUDIT_LOCK = 0x46544155
#: The owner of a mailbox's lease while it is being removed: no process, and none may take it.
RETIRED = "(removed)"


class SharedControl:
    """The shared control plane at ``url``: one connection, used by one thread at a time (a lock
    held for each whole transaction), made again when it broke. With a ``fence`` (this process's
    leases), writes to a mailbox's documents are refused once another process holds its lease;
    ``fence`` may also be set later (before the first mailbox runs), as the leases are made after
    the data directory."""

    def __init__(self, url: str, fence: Fence | None = None) -> None:
        self.url = url
        self.fence = fence
        self._lock = threading.Lock()
        self._live: _Connection | None = None  # connected at the first use: a command may need none

    def document(self, name: str, mailbox: str | None = None) -> SharedDocument:
        return SharedDocument(self, name, mailbox)

    def audit_log(self) -> PostgresAuditLog:
        return PostgresAuditLog(self)

    def quarantine(self) -> PostgresQuarantine:
        return PostgresQuarantine(self)

    def retire_lease(self, mailbox: str) -> None:
        """A mailbox being removed: its lease row is locked ``FOR UPDATE``, which waits for the
        owner's fenced writes in flight (they hold it ``FOR KEY SHARE``), then given to no process
        with a new token and no end, so the owner's next write is refused and no heartbeat takes it."""
        with self._transaction() as db:
            db.execute("INSERT INTO mailbox_leases (mailbox) VALUES (%s) ON CONFLICT DO NOTHING", (mailbox,))
            db.execute("SELECT 1 FROM mailbox_leases WHERE mailbox = %s FOR UPDATE", (mailbox,))
            db.execute("UPDATE mailbox_leases SET owner = %s, token = token + 1, expires_at = 'infinity'"
                       " WHERE mailbox = %s", (RETIRED, mailbox))

    def drop_lease(self, mailbox: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM mailbox_leases WHERE mailbox = %s", (mailbox,))

    def close(self) -> None:
        with self._lock:
            if self._live is not None:
                self._live.close()

    def __enter__(self) -> SharedControl:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def transaction(self) -> AbstractContextManager[_Connection]:
        """One unfenced transaction, for the stores of other modules on this connection (:mod:`.quarantine`)."""
        return self._transaction()

    @contextmanager
    def _transaction(self, mailbox: str | None = None, *, fenced: bool = False) -> Iterator[_Connection]:
        """One transaction on the connection, the lock held throughout; a fenced one first checks
        that this process holds ``mailbox``'s lease."""
        with self._lock:
            if self._live is None or self._live.broken or self._live.closed:
                if self._live is not None:
                    self._live.close()
                self._live = None
                try:
                    self._live = connect(self.url)
                except psycopg.OperationalError as exc:
                    raise _unreachable(exc) from exc
            db = self._live
            try:
                with db.transaction():
                    if fenced and mailbox is not None and self.fence is not None:
                        self.fence.check(db, [mailbox])
                    yield db
            except psycopg.OperationalError as exc:
                raise _unreachable(exc) from exc


class SharedDocument:
    """One document of :class:`SharedControl`; this object remembers the version it last read
    or wrote, against which its next :meth:`write` is checked. Use one from one thread at a time."""

    def __init__(self, control: SharedControl, name: str, mailbox: str | None) -> None:
        self._control = control
        self.name = name
        self.mailbox = mailbox
        self._seen: int | None = None  # the version last read (0: read, and there was none)

    @property
    def location(self) -> str:
        return f"document {self.name!r} in {display_store(self._control.url)}"

    def read(self) -> dict[str, Any] | None:
        with self._control._transaction() as db:
            row = db.execute("SELECT body, version FROM documents WHERE name = %s", (self.name,)).fetchone()
        if row is None:
            self._seen = 0
            return None
        self._seen = int(row[1])
        body: dict[str, Any] = row[0]  # decoded by psycopg; the reader's checks name a body of another shape
        return body

    def write(self, data: dict[str, Any]) -> None:
        body = Jsonb(data)
        with self._control._transaction(self.mailbox, fenced=True) as db:
            if self._seen is None:  # not read first: written as it is
                row = db.execute(
                    "INSERT INTO documents (name, mailbox, body) VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE"
                    " SET body = excluded.body, version = documents.version + 1, updated_at = now() RETURNING version",
                    (self.name, self.mailbox, body)).fetchone()
            elif self._seen == 0:  # there was none: made now unless another process made it meanwhile
                row = db.execute("INSERT INTO documents (name, mailbox, body) VALUES (%s, %s, %s)"
                                 " ON CONFLICT (name) DO NOTHING RETURNING version",
                                 (self.name, self.mailbox, body)).fetchone()
            else:
                row = db.execute("UPDATE documents SET body = %s, version = version + 1, updated_at = now()"
                                 " WHERE name = %s AND version = %s RETURNING version",
                                 (body, self.name, self._seen)).fetchone()
            if row is None:
                raise DocumentChanged(self.location)
        self._seen = int(row[0])

    def update(self, change: Callable[[dict[str, Any]], _T]) -> _T:
        with self._control._transaction(self.mailbox, fenced=True) as db:
            row = db.execute("SELECT body FROM documents WHERE name = %s FOR UPDATE", (self.name,)).fetchone()
            if row is None:
                # No row to lock: a concurrent first write is stopped by the primary key instead.
                db.execute("SELECT pg_advisory_xact_lock(hashtext('documents/' || %s))", (self.name,))
                row = db.execute("SELECT body FROM documents WHERE name = %s FOR UPDATE", (self.name,)).fetchone()
            before = {} if row is None else row[0]
            if not isinstance(before, dict):
                raise CorruptStateFile(self.location, "it is not a JSON object")
            data = copy.deepcopy(before)
            result = change(data)
            if data != before or row is None and data:
                written = db.execute(
                    "INSERT INTO documents (name, mailbox, body) VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE"
                    " SET body = excluded.body, version = documents.version + 1, updated_at = now() RETURNING version",
                    (self.name, self.mailbox, Jsonb(data))).fetchone()
                assert written is not None
                self._seen = int(written[0])
        return result

    def delete(self) -> bool:
        with self._control._transaction(self.mailbox, fenced=True) as db:
            gone = db.execute("DELETE FROM documents WHERE name = %s RETURNING 1", (self.name,)).fetchone()
        self._seen = None
        return gone is not None


class PostgresAuditLog:
    """The audit log in table ``audit_log``: the entries, their masking and their hash chain are
    those of the file (:class:`~storage.audit_log.AuditLog`), one row per line of it."""

    def __init__(self, control: SharedControl) -> None:
        self._control = control

    @property
    def location(self) -> str:
        return f"table audit_log in {display_store(self._control.url)}"

    def append(self, event: AuditEvent, **fields: Any) -> dict[str, Any]:
        with self._control._transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_AUDIT_LOCK,))
            last = db.execute("SELECT seq, entry FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            seq, previous = (0, GENESIS) if last is None else (int(last[0]), chain_hash(str(last[1])))
            entry, line = new_entry(event, fields, previous)
            db.execute("INSERT INTO audit_log (seq, entry) VALUES (%s, %s)", (seq + 1, line))
        return entry

    def _rows(self) -> list[tuple[int, str]]:
        with self._control._transaction() as db:
            return [(int(seq), str(entry)) for seq, entry in
                    db.execute("SELECT seq, entry FROM audit_log ORDER BY seq").fetchall()]

    def entries(self) -> Iterator[dict[str, Any]]:
        for _seq, line in self._rows():
            if line.strip():
                yield json.loads(line)

    def verify(self) -> ChainCheck:
        rows = self._rows()
        for expected, (seq, _line) in enumerate(rows, start=1):
            if seq != expected:
                return ChainCheck(False, expected - 1, f"entry {expected} is missing (the next is {seq})")
        return verify_lines(rows, unit="entry")


def _unreachable(exc: psycopg.OperationalError) -> LocalFault:
    """The database out of reach, as the local fault it is (said once, with what to check)."""
    fault = local_fault(exc)
    assert fault is not None
    return fault
