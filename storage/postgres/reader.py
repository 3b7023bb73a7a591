"""Reading the PostgreSQL element store: elements, the change feed, search and consumers' cursors.

A reader has its own connection (autocommit: each query sees what was committed when it began)
and may live in any process on any host beside the writers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, Self

import psycopg
from loguru import logger

from ..clock import utc_now
from ..element_store import (
    BadSearchQuery,
    Change,
    ChangeOp,
    ConsumerCursor,
    CursorExpired,
    FilterSql,
    SearchFilters,
    SearchHit,
    change_pages,
    filter_clauses,
    where_clause,
)
from ..errors import StorageError
from ..sqlite.reader import decode_document
from ..store_url import display_store
from .schema import connect
from .search_text import WEIGHTS, snippet, ts_query

__all__ = ["CHANNEL", "DamagedElement", "PostgresElementReader"]

# The search filters in this backend's SQL.
_SQL = FilterSql(param="%s", sender_match="e.sender ILIKE %s", live="NOT e.deleted")

CHANNEL = "futurnal_changes"  # NOTIFY'd by every commit that adds to the feed
DamagedReport = Callable[[str, str], None]
_Connection = psycopg.Connection[tuple[Any, ...]]


class DamagedElement(StorageError):
    """An element whose stored document cannot be read (not JSON)."""

    def __init__(self, url: str, element_id: str) -> None:
        super().__init__(f"element {element_id} in {display_store(url)} is damaged: its stored document is not valid JSON")


class PostgresElementReader:
    """The read side of the store at ``url`` (``postgresql://user@host/db``). One connection: use
    a reader from one thread at a time, and open one per thread otherwise."""

    #: A reader's transaction (an export's server-side cursor) waits on whoever consumes it.
    _idle_in_transaction = 600.0

    def __init__(self, url: str) -> None:
        self.url = url
        self._live: _Connection = connect(url, idle_in_transaction=self._idle_in_transaction)
        self._listener: _Connection | None = None
        self.on_damaged: DamagedReport = self._log_damaged

    @property
    def _connection(self) -> _Connection:
        """The connection, made again when the last one broke (a database restart, a network cut):
        the call that found it broken failed; the next one goes on, on a new connection."""
        if self._live.broken:
            self._live.close()
            self._live = connect(self.url, idle_in_transaction=self._idle_in_transaction)
        return self._live

    def _log_damaged(self, element_id: str, outcome: str) -> None:
        logger.warning("element {id} in {url} is damaged (its stored document is not valid JSON); {outcome}",
                       id=element_id, url=display_store(self.url), outcome=outcome)

    # -- elements ------------------------------------------------------------------------------

    def get(self, element_id: str) -> dict[str, Any] | None:
        row = self._connection.execute("SELECT doc FROM elements WHERE id = %s", (element_id,)).fetchone()
        if row is None:
            return None
        element = decode_document(row[0])
        if element is None:
            raise DamagedElement(self.url, element_id)
        return element

    def iter_documents(self, mailbox: str | None = None, folder: str | None = None, *,
                       include_deleted: bool = True) -> Iterator[str]:
        """Each element's JSON text, ordered by mailbox, folder, UIDVALIDITY and UID (read in
        pages on a server-side cursor); damaged ones are named to ``on_damaged`` and left out."""
        where, params = where_clause(SearchFilters(mailbox=mailbox, folder=folder), _SQL, include_deleted=include_deleted)
        with self._connection.transaction(), self._connection.cursor(name="documents") as cursor:
            cursor.itersize = 512
            cursor.execute(f"SELECT e.id, e.doc FROM elements AS e {where}"
                           " ORDER BY e.mailbox, e.folder, e.uidvalidity, e.uid", params)
            for element_id, doc in cursor:
                if decode_document(doc) is None:
                    self.on_damaged(element_id, "left out")
                else:
                    yield doc

    def iter_elements(self, mailbox: str | None = None, folder: str | None = None, *,
                      include_deleted: bool = True) -> Iterator[dict[str, Any]]:
        for doc in self.iter_documents(mailbox, folder, include_deleted=include_deleted):
            element = decode_document(doc)
            if element is not None:
                yield element

    def count(self, mailbox: str | None = None, folder: str | None = None) -> int:
        where, params = where_clause(SearchFilters(mailbox=mailbox, folder=folder), _SQL)
        return int(self._one(f"SELECT count(*) FROM elements AS e {where}", params))

    def folders(self, mailbox: str) -> list[str]:
        rows = self._connection.execute("SELECT DISTINCT folder FROM elements WHERE mailbox = %s ORDER BY folder",
                                        (mailbox,))
        return [folder for (folder,) in rows]

    def thread(self, thread_id: str) -> list[dict[str, Any]]:
        rows = self._connection.execute(
            "SELECT id, doc FROM elements WHERE thread_id = %s AND NOT deleted ORDER BY sort_date, id", (thread_id,))
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
        """The live elements matching ``query`` and the filters, best first (``ts_rank``, the
        subject weighing most, then people, then body and attachments alike). See docs/postgres.md
        for how the query syntax maps to a ``tsquery``."""
        tsquery = ts_query(query)
        clauses = ["e.search @@ q.query", "NOT e.deleted"]
        params: list[object] = [tsquery]
        for clause, value in filter_clauses(filters or SearchFilters(), _SQL):
            clauses.append(clause)
            params.append(value)
        params.append(limit)
        try:
            rows = self._connection.execute(
                f"SELECT e.id, e.mailbox, e.folder, e.sender, e.doc, ts_rank('{WEIGHTS}', e.search, q.query) AS rank"
                " FROM elements AS e, to_tsquery('simple', %s) AS q(query)"
                f" WHERE {' AND '.join(clauses)} ORDER BY rank DESC, e.row DESC LIMIT %s", params).fetchall()
        except psycopg.errors.SyntaxError as exc:
            raise BadSearchQuery(f"cannot read the search query {query!r}: {exc}") from None
        hits = []
        for element_id, mailbox, folder, sender, doc, rank in rows:
            element = decode_document(doc) or {}
            texts = [element.get("text") or "", element.get("subject") or ""]
            texts += [attachment.get("text") or "" for attachment in element.get("attachments") or []]
            hits.append(SearchHit(id=element_id, mailbox=mailbox, folder=folder, date=element.get("date"),
                                  sender=sender, subject=element.get("subject"), snippet=snippet(texts, query),
                                  rank=round(-float(rank), 4)))  # lower is better, as bm25 in SQLite
        return hits

    # -- change feed ---------------------------------------------------------------------------

    def oldest_served(self) -> int:
        return int(self._one("SELECT oldest_served FROM feed"))

    def last_seq(self) -> int:
        """The number of the latest committed change (0 for a new store)."""
        return int(self._one("SELECT last_seq FROM feed"))

    def changes(self, since: int | None = None, *, mailbox: str | None = None,
                limit: int | None = None) -> list[Change]:
        """Committed changes after ``since`` in order; :class:`CursorExpired` when a purge removed
        changes after ``since``. Numbers are given out in commit order (see the ``feed`` table),
        so a change committed later never takes a number below one already read."""
        sql = ("SELECT c.seq, c.op, c.mailbox, c.id, e.doc FROM changes AS c"
               " LEFT JOIN elements AS e ON e.id = c.id WHERE c.seq > %s")
        params: list[Any] = [since or 0]
        if mailbox is not None:
            sql += " AND c.mailbox = %s"
            params.append(mailbox)
        sql += " ORDER BY c.seq"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(limit)
        with self._connection.transaction():  # one snapshot for the cursor check and the read
            self._connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            oldest = self.oldest_served()
            if since is not None and since < oldest:
                raise CursorExpired(since, oldest)
            rows = self._connection.execute(sql, params).fetchall()
        changes = []
        for seq, op, mailbox_id, element_id, doc in rows:
            if doc is not None and decode_document(doc) is None:
                self.on_damaged(element_id, f"change {seq} is given without it")
                doc = None
            changes.append(Change(seq=int(seq), op=_op(op), mailbox=mailbox_id, id=element_id, document=doc))
        return changes

    def change_pages(self, since: int | None = None, *, mailbox: str | None = None, page: int = 1000,
                     follow: bool = False, wake: float = 60.0) -> Iterator[list[Change]]:
        return change_pages(self, since, mailbox=mailbox, page=page, follow=follow, wake=wake)

    def wait_for_changes(self, after: int, timeout: float) -> bool:
        """Block until a change after ``after`` is committed (True) or ``timeout`` passes (False);
        woken by the writers' NOTIFY on their commit, looking again every 5 s all the same."""
        if self._listener is not None and self._listener.broken:
            self._listener.close()
            self._listener = None
        if self._listener is None:
            self._listener = connect(self.url)
            self._listener.execute(f"LISTEN {CHANNEL}")
        deadline = time.monotonic() + timeout
        while True:
            if self.last_seq() > after:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            for _ in self._listener.notifies(timeout=min(left, 5.0), stop_after=1):
                pass

    # -- consumers -----------------------------------------------------------------------------

    def consumer_cursor(self, name: str) -> int | None:
        row = self._connection.execute("SELECT cursor FROM consumers WHERE name = %s", (name,)).fetchone()
        return None if row is None else int(row[0])

    def save_consumer_cursor(self, name: str, seq: int) -> None:
        now = utc_now()
        self._connection.execute(
            "INSERT INTO consumers (name, cursor, updated_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
            (name, seq, now))

    def consumers(self) -> list[ConsumerCursor]:
        last = self.last_seq()
        rows = self._connection.execute("SELECT name, cursor, updated_at FROM consumers ORDER BY name")
        return [ConsumerCursor(name=name, cursor=int(cursor), lag=max(last - int(cursor), 0), updated_at=updated)
                for name, cursor, updated in rows]

    def remove_consumer(self, name: str) -> bool:
        return self._connection.execute("DELETE FROM consumers WHERE name = %s", (name,)).rowcount > 0

    # -- housekeeping --------------------------------------------------------------------------

    @property
    def location(self) -> str:
        return display_store(self.url)

    def integrity_problems(self) -> list[str]:
        """Elements whose document is not JSON, and a change feed out of step with its counter
        (PostgreSQL checks its own pages; ``amcheck`` is the tool for those)."""
        problems = []
        for element_id, doc in self._connection.execute("SELECT id, doc FROM elements ORDER BY id"):
            if decode_document(doc) is None:
                problems.append(f"element {element_id}: its stored document is not valid JSON (damaged); it is left "
                                "out of exports, conversations and the change feed")
        row = self._connection.execute("SELECT f.last_seq, (SELECT max(seq) FROM changes) FROM feed AS f").fetchone()
        if row is not None and row[1] is not None and int(row[1]) > int(row[0]):
            problems.append(f"change feed: change {row[1]} is past the feed's counter ({row[0]})")
        return problems

    def _one(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> Any:
        row = self._connection.execute(sql.encode(), params).fetchone()
        assert row is not None
        return row[0]

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._live.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _op(op: str) -> ChangeOp:
    if op == "delete":
        return "delete"
    return "purge" if op == "purge" else "upsert"
