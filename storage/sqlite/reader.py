"""Reading the SQLite element store: elements, the change feed, search and consumers' cursors.

A reader has its own connection and may live in any process beside the writer: WAL gives it a
consistent snapshot per query while the writer commits.
"""

from __future__ import annotations

import heapq
import sqlite3
import time
from collections.abc import Callable, Iterator
from operator import itemgetter
from pathlib import Path
from typing import Any, Self

from loguru import logger

from ..change_bell import BellListener, ChangeBell
from ..clock import utc_now
from ..element_store import (
    BadSearchQuery,
    Change,
    ConsumerCursor,
    CursorExpired,
    FilterSql,
    SearchFilters,
    SearchHit,
    change_pages,
    decode_element,
    filter_clauses,
    where_clause,
)
from ..errors import StorageError
from .schema import connect
from .search_text import SNIPPET_CLOSE, SNIPPET_OPEN, fts_query, readable_snippet

__all__ = ["DamagedElement", "SqliteElementReader", "decode_document"]

# The search filters in this backend's SQL.
_SQL = FilterSql(param="?", sender_match="e.sender LIKE ? ESCAPE '\\'", live="e.deleted = 0")

DamagedReport = Callable[[str, str], None]
"""``report(element id, what was done about it)``: told of each damaged document met."""

_SNIPPET_WORDS = 16
# Subject and people weigh more than body and attachment text (bm25's column weights). Spelled out
# in each query: FTS5's configured ``rank`` column computes the same thing half again as slowly.
_RELEVANCE = "bm25(search, 8.0, 4.0, 1.0, 1.0)"
# bm25 costs a few microseconds per matching element, all of them before LIMIT applies: a query
# matching more than this many ranks only the most recently stored ones (see docs/store.md).
RANKED_MATCHES = 5_000


class DamagedElement(StorageError):
    """An element whose stored document cannot be read (not JSON): damaged on disk, not by a message."""

    def __init__(self, path: Path, element_id: str) -> None:
        super().__init__(f"element {element_id} in {path} is damaged: its stored document is not valid JSON "
                         "(`futurnal-actors elements check` lists every damaged element)")


def decode_document(doc: str) -> dict[str, Any] | None:
    """A stored document as an element, or None when it is damaged (not a JSON object)."""
    try:
        element = decode_element(doc)
    except ValueError:
        return None
    return element if isinstance(element, dict) else None


class SqliteElementReader:
    """The read side of the store at ``path``; ``listeners`` is where change-feed followers register.

    One connection: use a reader from one thread at a time, and open one per thread otherwise.

    A damaged document (one that is not valid JSON, as a disk fault or a hand edit leaves it) is
    left out of what is read, and named to ``on_damaged`` (by default a warning in the log, on
    stderr for the CLI), so one bad row never stops an export, a feed or a search.
    """

    def __init__(self, path: Path, listeners: Path) -> None:
        self.path = path
        self._connection = connect(path)
        self._listeners = listeners
        self._listener: BellListener | None = None
        self.on_damaged: DamagedReport = self._log_damaged

    def _log_damaged(self, element_id: str, outcome: str) -> None:
        logger.warning("element {id} in {path} is damaged (its stored document is not valid JSON); {outcome}",
                       id=element_id, path=str(self.path), outcome=outcome)

    # -- elements ------------------------------------------------------------------------------

    def get(self, element_id: str) -> dict[str, Any] | None:
        """The element, None when there is none; :class:`DamagedElement` when it cannot be read."""
        row = self._connection.execute("SELECT doc FROM elements JOIN documents USING (row) WHERE id = ?",
                                       (element_id,)).fetchone()
        if row is None:
            return None
        element = decode_document(row[0])
        if element is None:
            raise DamagedElement(self.path, element_id)
        return element

    def iter_documents(self, mailbox: str | None = None, folder: str | None = None, *,
                       include_deleted: bool = True) -> Iterator[str]:
        """Each element's JSON text, ordered by mailbox, folder, UIDVALIDITY and UID; damaged ones
        are named to ``on_damaged`` and left out (``json_valid`` costs well under a microsecond)."""
        where, params = where_clause(SearchFilters(mailbox=mailbox, folder=folder), _SQL, include_deleted=include_deleted)
        cursor = self._connection.execute(
            f"SELECT e.id, doc, json_valid(doc) FROM elements AS e JOIN documents USING (row) {where}"
            " ORDER BY e.mailbox, e.folder, e.uidvalidity, e.uid", params)
        cursor.arraysize = 512
        while rows := cursor.fetchmany():
            for element_id, doc, valid in rows:
                if valid:
                    yield doc
                else:
                    self.on_damaged(element_id, "left out")

    def iter_elements(self, mailbox: str | None = None, folder: str | None = None, *,
                      include_deleted: bool = True) -> Iterator[dict[str, Any]]:
        for doc in self.iter_documents(mailbox, folder, include_deleted=include_deleted):
            element = decode_document(doc)
            if element is not None:  # valid JSON, yet not an object: damaged all the same
                yield element

    def count(self, mailbox: str | None = None, folder: str | None = None) -> int:
        """How many elements (of ``mailbox``, of ``folder``; tombstones included) are stored."""
        where, params = where_clause(SearchFilters(mailbox=mailbox, folder=folder), _SQL)
        return int(self._connection.execute(f"SELECT count(*) FROM elements AS e {where}", params).fetchone()[0])

    def folders(self, mailbox: str) -> list[str]:
        rows = self._connection.execute("SELECT DISTINCT folder FROM elements WHERE mailbox = ? ORDER BY folder",
                                        (mailbox,))
        return [folder for (folder,) in rows]

    def thread(self, thread_id: str) -> list[dict[str, Any]]:
        """The live elements of one conversation, oldest first."""
        rows = self._connection.execute(
            "SELECT id, doc FROM elements JOIN documents USING (row) WHERE thread_id = ? AND deleted = 0"
            " ORDER BY sort_date, id", (thread_id,))
        elements = []
        for element_id, doc in rows:
            element = decode_document(doc)
            if element is None:
                self.on_damaged(element_id, "left out of its conversation")
            else:
                elements.append(element)
        return elements

    # -- search --------------------------------------------------------------------------------

    def search(self, query: str, filters: SearchFilters | None = None, limit: int = 20) -> list[SearchHit]:
        """The live elements matching ``query`` (see :func:`~.search_text.fts_query`) and the
        filters, best first. Of more than :data:`RANKED_MATCHES` such elements, the most recently
        stored ones are ranked: one pass over the index, newest first, scoring as it goes."""
        match = fts_query(query)
        clauses: list[str] = ["search MATCH ?"]  # the index holds live elements only
        params: list[object] = [match]
        filtered = filter_clauses(filters or SearchFilters(), _SQL)
        for clause, value in filtered:
            clauses.append(clause)
            params.append(value)
        join = " JOIN elements AS e ON e.row = search.rowid" if filtered else ""
        try:
            scored = self._connection.execute(
                f"SELECT search.rowid, {_RELEVANCE} FROM search{join} WHERE {' AND '.join(clauses)}"
                " ORDER BY search.rowid DESC LIMIT ?", (*params, RANKED_MATCHES)).fetchall()
            return self._described(match, heapq.nsmallest(limit, scored, key=itemgetter(1)))
        except sqlite3.OperationalError as exc:
            if "fts5" in str(exc) or "syntax" in str(exc):
                raise BadSearchQuery(f"cannot read the search query {query!r}: {exc}") from None
            raise

    def _described(self, match: str, ranked: list[tuple[int, float]]) -> list[SearchHit]:
        if not ranked:
            return []
        rows = [row for row, _ in ranked]
        marks = ",".join("?" * len(rows))
        # One pass over the matches between the first and the last hit, making snippets of the hits
        # only: "rowid IN" alone would make FTS5 run the query once per hit, and a prefix* query
        # expands its words again each time.
        snippets = dict(self._connection.execute(
            f"SELECT rowid, snippet FROM (SELECT rowid, CASE WHEN rowid IN ({marks}) THEN"
            f" snippet(search, -1, '{SNIPPET_OPEN}', '{SNIPPET_CLOSE}', '…', {_SNIPPET_WORDS}) END AS snippet"
            " FROM search WHERE search MATCH ? AND rowid BETWEEN ? AND ?) WHERE snippet IS NOT NULL",
            (*rows, match, min(rows), max(rows))))
        described = {row[0]: row[1:] for row in self._connection.execute(
            "SELECT row, id, mailbox, folder, iif(json_valid(doc), json_extract(doc, '$.date'), NULL), sender,"
            " iif(json_valid(doc), json_extract(doc, '$.subject'), NULL)"  # a damaged document: no date, no subject
            f" FROM elements JOIN documents USING (row) WHERE row IN ({marks})", rows)}
        hits = []
        for row, relevance in ranked:
            element_id, mailbox, folder, date, sender, subject = described[row]
            hits.append(SearchHit(id=element_id, mailbox=mailbox, folder=folder, date=date, sender=sender,
                                  subject=subject, snippet=readable_snippet(snippets.get(row) or ""),
                                  rank=round(float(relevance), 4)))
        return hits

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
            sql = ("SELECT c.seq, c.op, c.mailbox, c.id, d.doc, json_valid(d.doc) FROM changes AS c"
                   " LEFT JOIN elements AS e ON e.id = c.id LEFT JOIN documents AS d ON d.row = e.row WHERE c.seq > ?")
            params: list[Any] = [since or 0]
            if mailbox is not None:
                sql += " AND c.mailbox = ?"
                params.append(mailbox)
            sql += " ORDER BY c.seq LIMIT ?"
            params.append(-1 if limit is None else limit)
            rows = self._connection.execute(sql, params).fetchall()
        finally:
            self._connection.execute("COMMIT")
        changes = []
        for seq, op, mailbox_id, element_id, doc, valid in rows:
            if doc is not None and not valid:
                self.on_damaged(element_id, f"change {seq} is given without it")
                doc = None
            changes.append(Change(seq=seq, op=op, mailbox=mailbox_id, id=element_id, document=doc))
        return changes

    def change_pages(self, since: int | None = None, *, mailbox: str | None = None, page: int = 1000,
                     follow: bool = False, wake: float = 60.0) -> Iterator[list[Change]]:
        return change_pages(self, since, mailbox=mailbox, page=page, follow=follow, wake=wake)

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
        now = utc_now()
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

    @property
    def location(self) -> str:
        return str(self.path)

    def integrity_problems(self) -> list[str]:
        """What SQLite's integrity check and the search index's own check find (empty: all is well)."""
        problems = [row[0] for row in self._connection.execute("PRAGMA integrity_check") if row[0] != "ok"]
        problems += [f"element {element_id}: its stored document is not valid JSON (damaged); it is left out "
                     "of exports, conversations and the change feed"
                     for (element_id,) in self._connection.execute(
                         "SELECT id FROM elements JOIN documents USING (row) WHERE NOT json_valid(doc) ORDER BY id")]
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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
