"""The PostgreSQL element store's writer: each call is one transaction whose changed elements take
the next numbers of the change feed. Several writers (threads or processes, each with its own
store) may write at once; the feed stays in commit order without gaps (see ``feed`` in
:mod:`.schema` and docs/postgres.md)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from loguru import logger

from ..element_store import ElementKey, apply_attachment_results, encode_element
from ..sqlite.reader import decode_document
from ..sqlite.search_text import sender_text
from .fencing import Fence
from .reader import CHANNEL, PostgresElementReader, _Connection
from .search_text import index_texts

_T = TypeVar("_T")

__all__ = ["PostgresElementStore"]

# The search vector of one element from its four word lists (subject, people, body, attachments).
_VECTOR = ("setweight(to_tsvector('simple', %s), 'A') || setweight(to_tsvector('simple', %s), 'B')"
           " || setweight(to_tsvector('simple', %s), 'C') || setweight(to_tsvector('simple', %s), 'D')")


class PostgresElementStore(PostgresElementReader):
    """The element store in one PostgreSQL database. Use one from one thread at a time; open one
    per writer otherwise (a connection each).

    With a ``fence`` (the process's leases, when several processes share the database), each
    write first checks, inside its transaction, that this process still holds the lease of every
    mailbox it writes for; a stale owner's write raises ``LeaseLost`` and changes nothing.
    """

    _idle_in_transaction = 20.0  # a write is a few statements in a row: idle this long, its client is gone

    def __init__(self, url: str, *, fence: Fence | None = None) -> None:
        super().__init__(url)
        self._fence = fence

    def upsert_many(self, elements: Iterable[dict[str, Any]]) -> int:
        """Insert or replace elements by ``id``; one stored exactly as given is left alone.
        Returns how many were written."""
        encoded = {}
        for element in elements:
            encoded[element["id"]] = (element, encode_element(element))
        if not encoded:
            return 0
        with self._transaction({element["mailbox"] for element, _ in encoded.values()}) as db:
            ids = sorted(encoded)  # rows locked in one order by every writer: no deadlock between two
            stored = dict(db.execute("SELECT id, doc FROM elements WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                                     (ids,)).fetchall())
            changes = []
            for element_id in ids:
                element, doc = encoded[element_id]
                if stored.get(element_id) == doc:
                    continue
                deleted = bool(element.get("deleted"))
                texts = (None, None, None, None) if deleted else index_texts(element)
                db.execute(
                    "INSERT INTO elements (id, mailbox, folder, uidvalidity, uid, thread_id, sort_date, sender, deleted,"
                    f" doc, search) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, {_VECTOR})"
                    " ON CONFLICT (id) DO UPDATE SET mailbox = excluded.mailbox, folder = excluded.folder,"
                    " uidvalidity = excluded.uidvalidity, uid = excluded.uid, thread_id = excluded.thread_id,"
                    " sort_date = excluded.sort_date, sender = excluded.sender, deleted = excluded.deleted,"
                    " doc = excluded.doc, search = excluded.search",
                    (element_id, element["mailbox"], element["folder"], element["uidvalidity"], element["uid"],
                     element.get("thread_id"), element.get("date") or element.get("internal_date"),
                     sender_text(element), deleted, doc, *texts))
                changes.append((_op(element), element["mailbox"], element_id))
            self._record_changes(db, changes)
        return len(changes)

    def update_flags(self, updates: Iterable[tuple[ElementKey, list[str]]]) -> int:
        """Set stored elements' flags; returns how many changed (unknown or unchanged ones are skipped)."""
        updates = list(updates)
        with self._transaction({key.mailbox for key, _ in updates}) as db:
            changes = []
            for element_id, element, flags in self._readable(db, updates, "its new flags could not be applied"):
                if element.get("flags") == sorted(flags):
                    continue
                element["flags"] = sorted(flags)
                db.execute("UPDATE elements SET doc = %s WHERE id = %s", (encode_element(element), element_id))
                changes.append((_op(element), element["mailbox"], element_id))
            self._record_changes(db, changes)
        return len(changes)

    def mark_deleted(self, keys: Iterable[ElementKey], when: str) -> int:
        """Turn elements into tombstones (``deleted: true``), out of search; returns how many were live."""
        keys = list(keys)
        with self._transaction({key.mailbox for key in keys}) as db:
            changes = []
            for key in keys:
                found = self._by_key(db, key)
                if found is None:
                    continue
                element_id, deleted, element = found
                if deleted and (element is None or element.get("deleted")):
                    continue
                if element is None:
                    self.on_damaged(element_id, "it was marked deleted, its document left as it is")
                    db.execute("UPDATE elements SET deleted = true, search = NULL WHERE id = %s", (element_id,))
                else:
                    element["deleted"] = True
                    element["deleted_at"] = when
                    db.execute("UPDATE elements SET deleted = true, search = NULL, doc = %s WHERE id = %s",
                               (encode_element(element), element_id))
                changes.append(("delete", key.mailbox, element_id))
            self._record_changes(db, changes)
        return len(changes)

    def update_attachments(self, updates: Iterable[tuple[ElementKey, list[dict[str, Any]]]]) -> int:
        """Record extraction results into attachments still ``pending`` with that hash.

        Not fenced: a result only fills in an attachment still pending with the same content hash,
        once, whoever extracted it, and moves no watermark; so the extraction queued on a host
        that has since lost the mailbox still completes when that host runs again."""
        with self._transaction() as db:
            changes = []
            for element_id, element, results in self._readable(db, updates, "its attachment text could not be added"):
                if not apply_attachment_results(element, results):
                    continue
                if element.get("deleted"):
                    db.execute("UPDATE elements SET doc = %s WHERE id = %s", (encode_element(element), element_id))
                else:
                    db.execute(f"UPDATE elements SET doc = %s, search = {_VECTOR} WHERE id = %s",
                               (encode_element(element), *index_texts(element), element_id))
                changes.append((_op(element), element["mailbox"], element_id))
            self._record_changes(db, changes)
        return len(changes)

    def remove_mailbox(self, mailbox: str) -> int:
        """Purge a mailbox: its elements and change records go, and one ``purge`` change says so.
        Cursors from before its removed changes can no longer be served. Returns how many elements went."""
        with self._transaction() as db:
            removed = db.execute("DELETE FROM elements WHERE mailbox = %s", (mailbox,)).rowcount
            last = db.execute("SELECT max(seq) FROM changes WHERE mailbox = %s", (mailbox,)).fetchone()
            db.execute("DELETE FROM changes WHERE mailbox = %s", (mailbox,))
            if last is not None and last[0] is not None:
                db.execute("UPDATE feed SET oldest_served = greatest(oldest_served, %s)", (last[0],))
            self._record_changes(db, [("purge", mailbox, None)])
        try:  # the space is made free for reuse; see docs/postgres.md for what stays on disk until then
            self._connection.execute("VACUUM elements, changes")
        except Exception as exc:  # noqa: BLE001 - the purge itself is committed
            logger.warning("VACUUM after purging {mailbox} failed: {error}", mailbox=mailbox, error=str(exc))
        return int(removed)

    # -- inside a transaction ------------------------------------------------------------------

    @contextmanager
    def _transaction(self, mailboxes: Collection[str] = ()) -> Iterator[_Connection]:
        """One transaction (READ COMMITTED), committed durably before it returns; fenced for
        ``mailboxes`` first when the store has a fence."""
        with self._connection.transaction():
            if self._fence is not None and mailboxes:
                self._fence.check(self._connection, mailboxes)
            yield self._connection

    @staticmethod
    def _record_changes(db: _Connection, changes: Sequence[tuple[str, str, str | None]]) -> None:
        """Number ``changes`` and add them to the feed: the last step of every write.

        Updating ``feed.last_seq`` locks its one row until this transaction commits, so a second
        writer gets its numbers only after the first committed: numbers are in commit order and a
        reader that has seen seq N has seen every number below it. A rollback gives its numbers
        back (a sequence would leave a gap).
        """
        if not changes:
            return
        row = db.execute("UPDATE feed SET last_seq = last_seq + %s RETURNING last_seq", (len(changes),)).fetchone()
        assert row is not None
        first = int(row[0]) - len(changes) + 1
        with db.cursor() as cursor:
            cursor.executemany("INSERT INTO changes (seq, op, mailbox, id) VALUES (%s, %s, %s, %s)",
                               [(first + n, op, mailbox, element_id) for n, (op, mailbox, element_id) in enumerate(changes)])
        db.execute(f"NOTIFY {CHANNEL}")

    def _readable(
        self, db: _Connection, updates: Iterable[tuple[ElementKey, _T]], lost: str
    ) -> Iterator[tuple[str, dict[str, Any], _T]]:
        for key, value in updates:
            found = self._by_key(db, key)
            if found is None:
                continue
            element_id, _, element = found
            if element is None:
                self.on_damaged(element_id, lost)
                continue
            yield element_id, element, value

    @staticmethod
    def _by_key(db: _Connection, key: ElementKey) -> tuple[str, bool, dict[str, Any] | None] | None:
        """``(id, deleted, element)`` at ``key``, locked until the transaction ends; element None when damaged."""
        found = db.execute("SELECT id, deleted, doc FROM elements WHERE mailbox = %s AND folder = %s"
                           " AND uidvalidity = %s AND uid = %s FOR UPDATE",
                           (key.mailbox, key.folder, key.uidvalidity, key.uid)).fetchone()
        return None if found is None else (found[0], bool(found[1]), decode_document(found[2]))


def _op(element: dict[str, Any]) -> str:
    return "delete" if element.get("deleted") else "upsert"
