"""Reading the SQLite element store: elements, the change feed, search and consumers' cursors.

A reader has its own connection and may live in any process beside the writer: WAL gives it a
consistent snapshot per query while the writer commits.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..change_bell import BellListener, ChangeBell
from ..element_store import BadSearchQuery, Change, ConsumerCursor, CursorExpired, SearchFilters, SearchHit
from .schema import connect
from .search_text import SNIPPET_CLOSE, SNIPPET_OPEN, fts_query, readable_snippet

__all__ = ["SqliteElementReader"]

_SNIPPET_WORDS = 16


class SqliteElementReader:
    """The read side of the store at ``path``; ``listeners`` is where change-feed followers register."""

    def __init__(self, path: Path, listeners: Path) -> None:
        self.path = path
        self._connection = connect(path)
        self._listeners = listeners
        self._listener: BellListener | None = None

    # -- elements ------------------------------------------------------------------------------

    def get(self, element_id: str) -> dict[str, Any] | None:
        row = self._connection.execute("SELECT doc FROM elements WHERE id = ?", (element_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def iter_documents(self, mailbox: str | None = None, folder: str | None = None, *,
                       include_deleted: bool = True) -> Iterator[str]:
        """Each element's JSON text, ordered by mailbox, folder, UIDVALIDITY and UID."""
        where, params = _element_filter(mailbox, folder, include_deleted)
        cursor = self._connection.execute(
            f"SELECT doc FROM elements {where} ORDER BY mailbox, folder, uidvalidity, uid", params)
        cursor.arraysize = 512
        while rows := cursor.fetchmany():
            for (doc,) in rows:
                yield doc

    def iter_elements(self, mailbox: str | None = None, folder: str | None = None, *,
                      include_deleted: bool = True) -> Iterator[dict[str, Any]]:
        for doc in self.iter_documents(mailbox, folder, include_deleted=include_deleted):
            yield json.loads(doc)

    def count(self, mailbox: str | None = None, folder: str | None = None) -> int:
        """How many elements (of ``mailbox``, of ``folder``; tombstones included) are stored."""
        where, params = _element_filter(mailbox, folder, True)
        return int(self._connection.execute(f"SELECT count(*) FROM elements {where}", params).fetchone()[0])

    def folders(self, mailbox: str) -> list[str]:
        rows = self._connection.execute("SELECT DISTINCT folder FROM elements WHERE mailbox = ? ORDER BY folder",
                                        (mailbox,))
        return [folder for (folder,) in rows]

    def thread(self, thread_id: str) -> list[dict[str, Any]]:
        """The live elements of one conversation, oldest first."""
        rows = self._connection.execute(
            "SELECT doc FROM elements WHERE thread_id = ? AND deleted = 0 ORDER BY sort_date, id", (thread_id,))
        return [json.loads(doc) for (doc,) in rows]

    # -- search --------------------------------------------------------------------------------

    def search(self, query: str, filters: SearchFilters | None = None, limit: int = 20) -> list[SearchHit]:
        """The live elements matching ``query`` (see :func:`~.search_text.fts_query`), best first."""
        filters = filters or SearchFilters()
        clauses, params = ["search MATCH ?", "e.deleted = 0"], [fts_query(query)]
        if filters.mailbox is not None:
            clauses.append("e.mailbox = ?")
            params.append(filters.mailbox)
        if filters.folder is not None:
            clauses.append("e.folder = ?")
            params.append(filters.folder)
        if filters.sender:
            clauses.append("e.sender LIKE ? ESCAPE '\\'")
            params.append("%" + filters.sender.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        if filters.after:
            clauses.append("e.sort_date >= ?")
            params.append(_as_utc(filters.after))
        if filters.before:
            clauses.append("e.sort_date < ?")
            params.append(_as_utc(filters.before))
        sql = (
            "SELECT e.id, e.mailbox, e.folder, json_extract(e.doc, '$.date'), e.sender,"
            " json_extract(e.doc, '$.subject'),"
            f" snippet(search, -1, '{SNIPPET_OPEN}', '{SNIPPET_CLOSE}', '…', {_SNIPPET_WORDS}), rank"
            " FROM search JOIN elements AS e ON e.row = search.rowid"
            f" WHERE {' AND '.join(clauses)} ORDER BY rank LIMIT ?"
        )
        try:
            rows = self._connection.execute(sql, (*params, limit)).fetchall()
        except sqlite3.OperationalError as exc:
            if "fts5" in str(exc) or "syntax" in str(exc):
                raise BadSearchQuery(f"cannot read the search query {query!r}: {exc}") from None
            raise
        return [SearchHit(id=row[0], mailbox=row[1], folder=row[2], date=row[3], sender=row[4], subject=row[5],
                          snippet=readable_snippet(row[6] or ""), rank=round(float(row[7]), 4)) for row in rows]

    # -- change feed ---------------------------------------------------------------------------

    def oldest_served(self) -> int:
        """The cursor below which changes were removed (by a purge); 0 while nothing was."""
        return int(self._connection.execute("SELECT value FROM meta WHERE key = 'oldest_served'").fetchone()[0])

    def last_seq(self) -> int:
        """The number of the latest change ever made (0 for a new store)."""
        row = self._connection.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
        return 0 if row is None else int(row[0])

    def changes(self, since: int | None = None, *, mailbox: str | None = None,
                limit: int | None = None) -> list[Change]:
        """Changes after ``since`` in order (from the oldest still served when None).

        Raises :class:`CursorExpired` when changes after ``since`` were removed by a purge.
        """
        self._connection.execute("BEGIN")  # one snapshot for the cursor check and the read
        try:
            oldest = self.oldest_served()
            if since is not None and since < oldest:
                raise CursorExpired(since, oldest)
            sql = ("SELECT c.seq, c.op, c.mailbox, c.id, e.doc FROM changes AS c"
                   " LEFT JOIN elements AS e ON e.id = c.id WHERE c.seq > ?")
            params: list[Any] = [since or 0]
            if mailbox is not None:
                sql += " AND c.mailbox = ?"
                params.append(mailbox)
            sql += " ORDER BY c.seq LIMIT ?"
            params.append(-1 if limit is None else limit)
            rows = self._connection.execute(sql, params).fetchall()
        finally:
            self._connection.execute("COMMIT")
        return [Change(seq=row[0], op=row[1], mailbox=row[2], id=row[3], document=row[4]) for row in rows]

    def wait_for_changes(self, after: int, timeout: float) -> bool:
        """Block until a change after ``after`` is committed (True) or ``timeout`` passes (False).

        Woken by the writer's :class:`~..change_bell.ChangeBell`, not by polling; the store is
        looked at again once in a while all the same, in case a writer without a bell committed.
        """
        if self._listener is None:
            self._listener = ChangeBell(self._listeners).listen()
        deadline = time.monotonic() + timeout
        while True:
            if self.last_seq() > after:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._listener.wait(min(left, 5.0))

    # -- consumers -----------------------------------------------------------------------------

    def consumer_cursor(self, name: str) -> int | None:
        row = self._connection.execute("SELECT cursor FROM consumers WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def save_consumer_cursor(self, name: str, seq: int) -> None:
        """Store where ``name`` has read up to (durably: it is what the next read starts from)."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._connection.execute(
            "INSERT INTO consumers (name, cursor, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
            (name, seq, now))

    def consumers(self) -> list[ConsumerCursor]:
        last = self.last_seq()
        rows = self._connection.execute("SELECT name, cursor, updated_at FROM consumers ORDER BY name")
        return [ConsumerCursor(name=name, cursor=cursor, lag=max(last - cursor, 0), updated_at=updated)
                for name, cursor, updated in rows]

    def remove_consumer(self, name: str) -> bool:
        return self._connection.execute("DELETE FROM consumers WHERE name = ?", (name,)).rowcount > 0

    # -- housekeeping --------------------------------------------------------------------------

    def integrity_problems(self) -> list[str]:
        """What SQLite's integrity check and the search index's own check find (empty: all is well)."""
        problems = [row[0] for row in self._connection.execute("PRAGMA integrity_check") if row[0] != "ok"]
        try:
            self._connection.execute("INSERT INTO search (search, rank) VALUES ('integrity-check', 1)")
        except sqlite3.DatabaseError as exc:
            problems.append(f"search index: {exc}")
        return problems

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._connection.close()

    def __enter__(self) -> SqliteElementReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _element_filter(mailbox: str | None, folder: str | None, include_deleted: bool) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if mailbox is not None:
        clauses.append("mailbox = ?")
        params.append(mailbox)
    if folder is not None:
        clauses.append("folder = ?")
        params.append(folder)
    if not include_deleted:
        clauses.append("deleted = 0")
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _as_utc(value: str) -> str:
    """A date or ISO time as the store's sortable UTC text; a bad one is a clear error."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadSearchQuery(f"{value!r} is not a date: use YYYY-MM-DD or an ISO time") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")
