"""The SQLite element store's one writer: each call is one transaction, committed durably, whose
changed elements take the next numbers of the change feed."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from loguru import logger

from ..change_bell import ChangeBell
from ..element_store import ElementKey, apply_attachment_results, encode_element
from .reader import SqliteElementReader, decode_document
from .search_text import attachment_column, index_columns, sender_text

_T = TypeVar("_T")

__all__ = ["SqliteElementStore"]

_LOOKUP_CHUNK = 500  # ids per "IN (...)" query, under SQLite's limit on bound parameters


class SqliteElementStore(SqliteElementReader):
    """The element store in one SQLite database. Use it from one thread at a time (the sink's).

    A change addressed to an element whose stored document is damaged (see
    :class:`~.reader.SqliteElementReader`) is named to ``on_damaged`` and does what it still can
    (a deletion still takes the element out of search and exports), rather than failing the
    whole batch every time the folder is synced.
    """

    def __init__(self, path: Path, listeners: Path) -> None:
        super().__init__(path, listeners)
        self._bell = ChangeBell(listeners)

    def upsert_many(self, elements: Iterable[dict[str, Any]]) -> int:
        """Insert or replace elements by ``id``; one that is stored exactly as given is left alone
        (a re-fetch after a crash adds nothing to the feed). Returns how many were written."""
        encoded = {}
        for element in elements:  # the same element twice in one call: the later one wins
            encoded[element["id"]] = (element, encode_element(element))
        if not encoded:
            return 0
        with self._transaction() as db:
            stored = self._stored(db, list(encoded))
            next_row = db.execute("SELECT coalesce(max(row), 0) FROM elements").fetchone()[0] + 1
            inserts, updates, documents, texts, changes, unindexed = [], [], [], [], [], []
            for element_id, (element, doc) in encoded.items():
                row, old_doc = stored.get(element_id, (None, None))
                if old_doc == doc:
                    continue
                deleted = 1 if element.get("deleted") else 0
                columns = (element.get("thread_id"), element.get("date") or element.get("internal_date"),
                           sender_text(element), deleted)
                if row is None:
                    row, next_row = next_row, next_row + 1
                    inserts.append((row, element_id, element["mailbox"], element["folder"], element["uidvalidity"],
                                    element["uid"], *columns))
                else:
                    updates.append((*columns, row))
                    unindexed.append((row,))
                documents.append((row, doc))
                if not deleted:
                    texts.append((row, *index_columns(element)))
                changes.append((_op(element), element["mailbox"], element_id))
            db.executemany("DELETE FROM search WHERE rowid = ?", unindexed)
            db.executemany(
                "INSERT INTO elements (row, id, mailbox, folder, uidvalidity, uid, thread_id, sort_date, sender,"
                " deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", inserts)
            db.executemany("UPDATE elements SET thread_id = ?, sort_date = ?, sender = ?, deleted = ? WHERE row = ?",
                           updates)
            db.executemany("INSERT OR REPLACE INTO documents (row, doc) VALUES (?, ?)", documents)
            db.executemany("INSERT INTO search (rowid, subject, people, body, attachments) VALUES (?, ?, ?, ?, ?)",
                           texts)
            db.executemany("INSERT INTO changes (op, mailbox, id) VALUES (?, ?, ?)", changes)
        return len(changes)

    def update_flags(self, updates: Iterable[tuple[ElementKey, list[str]]]) -> int:
        """Set stored elements' flags; returns how many changed (unknown or unchanged ones are skipped)."""
        with self._transaction() as db:
            changed = 0
            for row, element, flags in self._readable(db, updates, "its new flags could not be applied"):
                if element.get("flags") == sorted(flags):
                    continue
                element["flags"] = sorted(flags)
                self._rewrite(db, row, element, _op(element))
                changed += 1
        return changed

    def mark_deleted(self, keys: Iterable[ElementKey], when: str) -> int:
        """Turn elements into tombstones (``deleted: true``), out of search; returns how many were live."""
        with self._transaction() as db:
            changed = 0
            for key in keys:
                found = self._by_key(db, key)
                if found is None:
                    continue
                row, element_id, element = found
                if element is not None and element.get("deleted"):
                    continue
                db.execute("DELETE FROM search WHERE rowid = ?", (row,))
                db.execute("UPDATE elements SET deleted = 1 WHERE row = ?", (row,))
                if element is None:
                    # Its row says deleted and it leaves search; its document stays as it is, for
                    # whoever wants to look at the damage.
                    self.on_damaged(element_id, "it was marked deleted, its document left as it is")
                    self._record_change(db, row, "delete")
                else:
                    element["deleted"] = True
                    element["deleted_at"] = when
                    self._rewrite(db, row, element, "delete")
                changed += 1
        return changed

    def update_attachments(self, updates: Iterable[tuple[ElementKey, list[dict[str, Any]]]]) -> int:
        """Record extraction results into attachments still ``pending`` with that hash (see
        :func:`~..element_store.apply_attachment_results`); returns how many elements changed."""
        with self._transaction() as db:
            changed = 0
            for row, element, results in self._readable(db, updates, "its attachment text could not be added"):
                if not apply_attachment_results(element, results):
                    continue
                if not element.get("deleted"):
                    db.execute("UPDATE search SET attachments = ? WHERE rowid = ?", (attachment_column(element), row))
                self._rewrite(db, row, element, _op(element))
                changed += 1
        return changed

    def remove_mailbox(self, mailbox: str) -> int:
        """Purge a mailbox: its elements, their search entries and change records go, and one
        ``purge`` change says so. Cursors from before its removed changes can no longer be served.
        Then the file is rewritten, so none of the mailbox's mail stays in free pages or the WAL.
        Returns how many elements went."""
        with self._transaction() as db:
            removed = db.execute("SELECT count(*) FROM elements WHERE mailbox = ?", (mailbox,)).fetchone()[0]
            db.execute("DELETE FROM search WHERE rowid IN (SELECT row FROM elements WHERE mailbox = ?)", (mailbox,))
            db.execute("DELETE FROM documents WHERE row IN (SELECT row FROM elements WHERE mailbox = ?)", (mailbox,))
            db.execute("DELETE FROM elements WHERE mailbox = ?", (mailbox,))
            last_removed = db.execute("SELECT max(seq) FROM changes WHERE mailbox = ?", (mailbox,)).fetchone()[0]
            db.execute("DELETE FROM changes WHERE mailbox = ?", (mailbox,))
            if last_removed is not None:
                db.execute("UPDATE meta SET value = max(value, ?) WHERE key = 'oldest_served'", (last_removed,))
            db.execute("INSERT INTO changes (op, mailbox, id) VALUES ('purge', ?, NULL)", (mailbox,))
        self._scrub()
        return int(removed)

    def _scrub(self) -> None:
        """Rewrite the index and the file so deleted text is gone from its bytes, not just unlinked."""
        db = self._connection
        db.execute("INSERT INTO search (search) VALUES ('optimize')")  # merges away deleted index entries
        db.execute("VACUUM")
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            logger.warning("the element store's write-ahead log could not be emptied after a purge while a "
                           "reader held it; it is emptied at the next checkpoint")

    def close(self) -> None:
        self._bell.close()
        super().close()

    # -- inside a transaction ------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One durable transaction; on any failure, the COMMIT's own included (a full disk), it is
        rolled back, so the connection is ready for the next call once the trouble is gone."""
        db = self._connection
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            self._roll_back()
            raise
        self._bell.ring()

    def _roll_back(self) -> None:
        """SQLite rolls back by itself after some errors (SQLITE_FULL, SQLITE_IOERR): a ROLLBACK
        then has nothing to do, and its own error must not hide the one that matters."""
        if not self._connection.in_transaction:
            return
        try:
            self._connection.execute("ROLLBACK")
        except sqlite3.Error as exc:
            logger.debug("rollback after a failed write of the element store failed too: {error}", error=str(exc))

    @staticmethod
    def _stored(db: sqlite3.Connection, ids: list[str]) -> dict[str, tuple[int, str]]:
        stored = {}
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = ids[start:start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            for element_id, row, doc in db.execute(
                    f"SELECT id, row, doc FROM elements JOIN documents USING (row) WHERE id IN ({marks})", chunk):
                stored[element_id] = (row, doc)
        return stored

    def _readable(
        self, db: sqlite3.Connection, updates: Iterable[tuple[ElementKey, _T]], lost: str
    ) -> Iterator[tuple[int, dict[str, Any], _T]]:
        """Each update's stored element, as (row, element, value); unknown keys are skipped and a
        damaged document is reported (``lost`` says what it misses), not fatal to the rest."""
        for key, value in updates:
            found = self._by_key(db, key)
            if found is None:
                continue
            row, element_id, element = found
            if element is None:
                self.on_damaged(element_id, lost)
                continue
            yield row, element, value

    @staticmethod
    def _by_key(db: sqlite3.Connection, key: ElementKey) -> tuple[int, str, dict[str, Any] | None] | None:
        """``(row, id, element)`` of the element at ``key``, element None when its document is damaged."""
        found = db.execute("SELECT row, id, doc FROM elements JOIN documents USING (row) WHERE mailbox = ?"
                           " AND folder = ? AND uidvalidity = ? AND uid = ?",
                           (key.mailbox, key.folder, key.uidvalidity, key.uid)).fetchone()
        return None if found is None else (found[0], found[1], decode_document(found[2]))

    @classmethod
    def _rewrite(cls, db: sqlite3.Connection, row: int, element: dict[str, Any], op: str) -> None:
        db.execute("UPDATE documents SET doc = ? WHERE row = ?", (encode_element(element), row))
        cls._record_change(db, row, op)

    @staticmethod
    def _record_change(db: sqlite3.Connection, row: int, op: str) -> None:
        db.execute("INSERT INTO changes (op, mailbox, id) SELECT ?, mailbox, id FROM elements WHERE row = ?",
                   (op, row))


def _op(element: dict[str, Any]) -> str:
    """The change an element's new state is: a tombstone is a ``delete``, anything else an ``upsert``."""
    return "delete" if element.get("deleted") else "upsert"
