"""The element store's interface, whatever keeps the elements (SQLite by default).

The store keeps each element document exactly as the parser built it, keyed by its ``id`` and by
where the message lives on the server (:class:`ElementKey`). Every change to an element takes the
next number of one growing sequence, which is the change feed consumers read by cursor. Nothing
here names a database type, so a second backend implements the same two protocols.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, Self

import orjson

from futurnal.process import stage_cpu

from .clock import utc_iso
from .errors import StorageError
from .json_lines import one_line

__all__ = [
    "BadSearchQuery",
    "Change",
    "ConsumerCursor",
    "CursorExpired",
    "ElementKey",
    "ElementReader",
    "ElementStore",
    "SearchFilters",
    "SearchHit",
    "apply_attachment_results",
    "change_pages",
    "decode_element",
    "encode_element",
    "filter_clauses",
    "search_date",
    "where_clause",
]

ChangeOp = Literal["upsert", "delete", "purge"]


@dataclass(frozen=True, slots=True)
class ElementKey:
    """Where a message lives on the server, which is also what identifies its element."""

    mailbox: str
    folder: str
    uidvalidity: int
    uid: int

    @classmethod
    def of(cls, element: dict[str, Any]) -> ElementKey:
        return cls(element["mailbox"], element["folder"], element["uidvalidity"], element["uid"])


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change feed: what happened to which element, and the element as it is now.

    ``document`` is the element's JSON text as stored (absent for ``purge``, and for an element a
    later purge removed), so a feed can be copied to a consumer without decoding it.
    """

    seq: int
    op: ChangeOp
    mailbox: str
    id: str | None
    document: str | None

    @property
    def element(self) -> dict[str, Any] | None:
        return None if self.document is None else json.loads(self.document)

    def as_dict(self) -> dict[str, Any]:
        """The change as :meth:`json_line` spells it, decoded."""
        doc: dict[str, Any] = {"seq": self.seq, "op": self.op, "mailbox": self.mailbox}
        if self.id is not None:
            doc["id"] = self.id
        if self.document is not None:
            doc["element"] = self.element
        return doc

    def json_line(self) -> str:
        """The change as one JSON object (no newline): ``seq``, ``op``, ``id``, ``mailbox``, ``element``."""
        head = f'{{"seq": {self.seq}, "op": "{self.op}", "mailbox": {json.dumps(self.mailbox, ensure_ascii=False)}'
        if self.id is not None:
            head += f', "id": "{self.id}"'
        if self.document is not None:
            head += f', "element": {self.document}'
        return one_line(head + "}")




@dataclass(frozen=True, slots=True)
class SearchFilters:
    """What narrows a search besides the query: all optional, dates as ``YYYY-MM-DD`` or ISO UTC."""

    mailbox: str | None = None
    folder: str | None = None
    sender: str | None = None
    after: str | None = None
    before: str | None = None


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One element that matched, best first: enough to show a result line and fetch the rest."""

    id: str
    mailbox: str
    folder: str
    date: str | None
    sender: str
    subject: str | None
    snippet: str
    rank: float

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "mailbox": self.mailbox, "folder": self.folder, "date": self.date,
                "from": self.sender, "subject": self.subject, "snippet": self.snippet, "rank": self.rank}


@dataclass(frozen=True, slots=True)
class ConsumerCursor:
    """A named consumer of the change feed and where it has read up to."""

    name: str
    cursor: int
    lag: int
    updated_at: str


class CursorExpired(StorageError):
    """A cursor older than what a purge (or compaction) removed from the feed: changes are missing
    after it, so the consumer must start over from a full export."""

    def __init__(self, since: int, oldest: int) -> None:
        super().__init__(
            f"cursor {since} can no longer be served: changes up to {oldest} were removed (a purge); "
            "start over from a full export ('elements export'), then read changes from "
            f"'elements changes --since {oldest}' onwards"
        )
        self.since = since
        self.oldest = oldest


class BadSearchQuery(StorageError):
    """A search query the syntax cannot read; the message says where."""


class ElementReader(Protocol):
    """Reading the store: safe beside the writer, from any thread or process of its own."""

    def get(self, element_id: str) -> dict[str, Any] | None: ...

    def iter_elements(self, mailbox: str | None = None, folder: str | None = None, *,
                      include_deleted: bool = True) -> Iterator[dict[str, Any]]: ...

    def iter_documents(self, mailbox: str | None = None, folder: str | None = None, *,
                       include_deleted: bool = True) -> Iterator[str]: ...

    def count(self, mailbox: str | None = None, folder: str | None = None) -> int: ...

    def folders(self, mailbox: str) -> list[str]: ...

    def thread(self, thread_id: str) -> list[dict[str, Any]]: ...

    def search(self, query: str, filters: SearchFilters = ..., limit: int = 20) -> list[SearchHit]: ...

    def changes(self, since: int | None = None, *, mailbox: str | None = None,
                limit: int | None = None) -> list[Change]: ...

    def change_pages(self, since: int | None = None, *, mailbox: str | None = None, page: int = 1000,
                     follow: bool = False, wake: float = 60.0) -> Iterator[list[Change]]: ...

    def last_seq(self) -> int: ...

    def wait_for_changes(self, after: int, timeout: float) -> bool: ...

    def consumers(self) -> list[ConsumerCursor]: ...

    def consumer_cursor(self, name: str) -> int | None: ...

    def save_consumer_cursor(self, name: str, seq: int) -> None: ...

    def remove_consumer(self, name: str) -> bool: ...

    @property
    def location(self) -> str:
        """Where the store is, for messages: a file's path, a database's URL without its password."""

    def integrity_problems(self) -> list[str]:
        """What is damaged in the store, a line each (empty: all is well)."""

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


class ElementStore(ElementReader, Protocol):
    """The writer: each method commits its whole change durably, as one transaction, before it
    returns (the fetcher moves a folder's watermark on that return), and gives every element it
    changed the next number of the change feed. Repeating a call changes nothing more."""

    def upsert_many(self, elements: Iterable[dict[str, Any]]) -> int: ...

    def update_flags(self, updates: Iterable[tuple[ElementKey, list[str]]]) -> int: ...

    def mark_deleted(self, keys: Iterable[ElementKey], when: str) -> int: ...

    def update_attachments(self, updates: Iterable[tuple[ElementKey, list[dict[str, Any]]]]) -> int: ...

    def remove_mailbox(self, mailbox: str) -> int: ...


def encode_element(element: dict[str, Any]) -> str:
    """The one JSON text of an element: what the store keeps and ``elements export`` prints.

    orjson writes it in half the time of the standard library (benchmarks/store.py). What it
    refuses (a lone surrogate, which elements from the parser never hold) the standard library
    writes instead, and :func:`decode_element` reads either.
    """
    started = stage_cpu.clock()
    try:
        return orjson.dumps(element, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return json.dumps(element, ensure_ascii=False, sort_keys=True)
    finally:
        stage_cpu.add("store.json", started)


def decode_element(text: str | bytes) -> Any:
    """The JSON value of an element's text (see :func:`encode_element`); ValueError when it is not JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # what the fallback above wrote, e.g. an escaped lone surrogate


def apply_attachment_results(element: dict[str, Any], results: Iterable[dict[str, Any]]) -> bool:
    """Put extraction results into a stored element (what ``update_attachments`` does to each);
    returns whether anything changed. Shared so that other sinks apply them the same way."""
    attachments = element.get("attachments") or []
    changed = False
    for result in results:
        index = result["index"]
        if not 0 <= index < len(attachments):
            continue
        attachment = attachments[index]
        if attachment.get("sha256") != result["sha256"] or attachment.get("status") != "pending":
            continue
        attachment["status"] = result["status"]
        attachment["text"] = result.get("text")
        changed = True
    return changed


def change_pages(reader: ElementReader, since: int | None = None, *, mailbox: str | None = None, page: int = 1000,
                 follow: bool = False, wake: float = 60.0) -> Iterator[list[Change]]:
    """What every reader's ``change_pages`` does, on its ``changes``, ``last_seq`` and
    ``wait_for_changes``: pages of at most ``page`` changes after ``since``, in order, until none
    is left; with ``follow``, then each commit's changes as they land, and an empty page whenever
    ``wake`` seconds pass without one (the caller's moment to decide whether to stop)."""
    while True:
        horizon = reader.last_seq()  # read before the page: a commit after it ends the wait below
        batch = reader.changes(since, mailbox=mailbox, limit=page)
        if batch:
            since = batch[-1].seq
            yield batch
            if len(batch) == page:
                continue
        if not follow:
            return
        if not reader.wait_for_changes(max(horizon, since or 0), wake):
            yield []


def search_date(value: str) -> str:
    """A search filter's date or ISO time as the stores' sortable UTC text; a bad one is a clear error."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadSearchQuery(f"{value!r} is not a date: use YYYY-MM-DD or an ISO time") from None
    return utc_iso(parsed)


@dataclass(frozen=True, slots=True)
class FilterSql:
    """How one backend's SQL spells the search filters on ``elements AS e``: its parameter mark,
    a sender match given an escaped ``%...%`` pattern (backslash escapes), a live element."""

    param: str
    sender_match: str
    live: str


def filter_clauses(filters: SearchFilters, sql: FilterSql) -> list[tuple[str, str]]:
    """``(condition on elements AS e, its value)`` for each filter given."""
    clauses = []
    if filters.mailbox is not None:
        clauses.append((f"e.mailbox = {sql.param}", filters.mailbox))
    if filters.folder is not None:
        clauses.append((f"e.folder = {sql.param}", filters.folder))
    if filters.sender:
        escaped = filters.sender.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append((sql.sender_match, f"%{escaped}%"))
    if filters.after:
        clauses.append((f"e.sort_date >= {sql.param}", search_date(filters.after)))
    if filters.before:
        clauses.append((f"e.sort_date < {sql.param}", search_date(filters.before)))
    return clauses


def where_clause(filters: SearchFilters, sql: FilterSql, *, include_deleted: bool = True) -> tuple[str, list[str]]:
    """A WHERE clause on ``elements AS e`` for ``filters`` (empty when there are none), and its values."""
    clauses = filter_clauses(filters, sql)
    conditions = [condition for condition, _ in clauses] + ([] if include_deleted else [sql.live])
    return ("WHERE " + " AND ".join(conditions) if conditions else ""), [value for _, value in clauses]
