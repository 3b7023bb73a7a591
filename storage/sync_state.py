"""Per-folder sync state: where the last sync stopped, so the next one fetches only what is new."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, get_type_hints

from tinydb import Query, TinyDB
from tinydb.table import Document

from .shared import SharedDocument, tinydb_storage

__all__ = ["FolderState", "FolderStateStore"]


@dataclass(frozen=True, slots=True)
class FolderState:
    """The watermark and counters of one folder of one mailbox.

    ``last_uid`` only ever covers messages the sink has durably written, so resuming from it after
    any crash loses nothing.
    """

    folder: str
    uidvalidity: int | None = None
    last_uid: int = 0
    uidnext: int | None = None
    highestmodseq: int | None = None
    #: UIDs stored under ``uidvalidity``, as an IMAP sequence set (``1:500,502``): compact however big.
    known_uids: str = ""
    #: Above 1 while a first sync, newest mail first, is still filling in older mail: every UID from
    #: here to ``last_uid`` is stored, quarantined or gone, and the UIDs below it are still to come.
    #: 0 (or 1): nothing below ``last_uid`` is missing, as when the folder was synced oldest first.
    backfill_floor: int = 0
    #: When the backfill began, and the messages and bytes it has stored since: its rate and ETA.
    backfill_started: str | None = None
    backfill_fetched: int = 0
    backfill_bytes: int = 0
    #: UIDs that were in flight each time the fetcher crashed: quarantined with their raw bytes, never parsed.
    poisoned_uids: str = ""
    messages: int = 0
    deleted: int = 0
    parse_failures: int = 0
    #: Without CONDSTORE: a digest of every (UID, flags) pair, so an unchanged folder is not rewritten.
    flags_digest: str | None = None
    extensions: tuple[str, ...] = ()
    last_success: str | None = None
    #: When the server last showed the folder changing: a watcher's notification, or a sync that
    #: found new, changed or deleted messages. Written by the fetcher only, like everything here.
    last_server_event: str | None = None
    #: How the folder was last watched: ``idle``, ``notify`` or ``polling`` (None: never watched).
    watch_mode: str | None = None
    last_error: str | None = None
    last_attempt: str | None = None
    #: Syncs in a row that found a new UIDVALIDITY with as many messages as before: a server that
    #: numbers the folder afresh at every read-only open (Courier-IMAP saves UIDs only when a
    #: session opens the folder read-write).
    uidvalidity_flips: int = 0
    #: The folder is opened with SELECT, not EXAMINE, because its server keeps UIDs only then (set
    #: when the flips above are found). Bodies are still fetched with BODY.PEEK: no flag changes.
    open_read_write: bool = False

    def to_document(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["extensions"] = list(self.extensions)
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> FolderState:
        """Back from ``to_document``; a value of the wrong type raises ValueError rather than
        becoming a watermark that the next sync would trust."""
        known = {name: doc[name] for name in cls.__dataclass_fields__ if name in doc}
        for name, value in known.items():
            if not _FIELD_CHECKS[name](value):
                raise ValueError(f"{name} is {value!r}")
        known["extensions"] = tuple(known.get("extensions", ()))
        return cls(**known)

    def with_changes(self, **changes: Any) -> FolderState:
        return replace(self, **changes)


def _field_check(hint: Any) -> Callable[[Any], bool]:
    """A test of a JSON value against one field's type (``int | None``, ``str``, ``tuple[str, ...]``)."""
    if hint == tuple[str, ...]:
        return lambda value: isinstance(value, list | tuple) and all(isinstance(item, str) for item in value)
    if hint is bool:
        return lambda value: isinstance(value, bool)
    return lambda value: isinstance(value, hint) and not isinstance(value, bool)


_FIELD_CHECKS = {f.name: _field_check(get_type_hints(FolderState)[f.name]) for f in fields(FolderState)}


def _states_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with a folder entry of a state file, checked on every read: a watermark of
    the wrong type must stop the mailbox's syncs with the file named, never be trusted or reset."""
    for doc_id, doc in data.get("folders", {}).items():
        try:
            FolderState.from_document(doc)
        except (TypeError, ValueError) as exc:
            return f"folder entry {doc_id}: {exc}"
    return None


class FolderStateStore:
    """The folder states of one mailbox, in that mailbox's own TinyDB file (one owner per file), or
    in its document of a shared database (see :meth:`~storage.data_dir.DataDir.folder_states`)."""

    def __init__(self, source: Path | SharedDocument, *, read_only: bool = False) -> None:
        self._db = TinyDB(source, storage=tinydb_storage(source), read_only=read_only, check=_states_problem)
        self._table = self._db.table("folders")
        self._mailbox = self._db.table("mailbox")
        self._downloads = self._db.table("downloads")

    # Mailbox-level conditions, one document each in the "mailbox" table.
    _NEEDS_REAUTH, _PARKED, _THROTTLED, _LAST_ALERT = 1, 2, 3, 4

    def needs_reauth(self) -> dict[str, str] | None:
        """``{"reason", "since"}`` while the server rejects the credentials, else None."""
        return self._condition(self._NEEDS_REAUTH)

    def set_needs_reauth(self, reason: str | None, since: str | None = None) -> None:
        self._set_condition(self._NEEDS_REAUTH, reason, since)

    def parked(self) -> dict[str, str] | None:
        """``{"reason", "since"}`` when the mailbox's actors kept failing and were stopped."""
        return self._condition(self._PARKED)

    def set_parked(self, reason: str | None, since: str | None = None) -> None:
        self._set_condition(self._PARKED, reason, since)

    def throttled(self) -> dict[str, Any] | None:
        """The provider's last hold on the mailbox: ``{"reason", "since", "until", "repeats",
        "kind"}``, kept until a sync gets through (``until`` may be past: the repeats still count)."""
        doc = self._mailbox.get(doc_id=self._THROTTLED)
        return dict(doc) if doc and doc.get("reason") and isinstance(doc.get("until"), str) else None

    def set_throttled(self, hold: dict[str, Any] | None) -> None:
        if hold is None:
            self._set_condition(self._THROTTLED, None, None)
            return
        self._mailbox.upsert(Document(dict(hold), doc_id=self._THROTTLED))

    def last_alert(self) -> dict[str, str] | None:
        """``{"reason": the server's [ALERT] text as written, "since": when}``: the latest one."""
        return self._condition(self._LAST_ALERT)

    def set_last_alert(self, text: str, since: str) -> None:
        self._set_condition(self._LAST_ALERT, text, since)

    def _condition(self, doc_id: int) -> dict[str, str] | None:
        doc = self._mailbox.get(doc_id=doc_id)
        return dict(doc) if doc and doc.get("reason") else None

    def _set_condition(self, doc_id: int, reason: str | None, since: str | None) -> None:
        """Set the condition with its reason, or clear it with None (no write when already clear)."""
        if reason is None:
            if self._mailbox.get(doc_id=doc_id):
                self._mailbox.remove(doc_ids=[doc_id])
            return
        self._mailbox.upsert(Document({"reason": reason, "since": since or ""}, doc_id=doc_id))

    def downloads(self) -> dict[str, int]:
        """Bytes fetched by hour (hours since the epoch, as strings): the mailbox's download budget."""
        doc = self._downloads.get(doc_id=1)
        if not doc:
            return {}
        return {str(hour): count for hour, count in doc.items() if isinstance(count, int) and not isinstance(count, bool)}

    def set_downloads(self, hours: dict[str, int]) -> None:
        """Replace the counts (hours that left the window go with them)."""
        if not self._downloads.contains(doc_id=1):
            self._downloads.insert(Document(dict(hours), doc_id=1))
            return

        def replace_all(doc: MutableMapping[str, Any]) -> None:
            doc.clear()
            doc.update(hours)

        self._downloads.update(replace_all, doc_ids=[1])

    def get(self, folder: str) -> FolderState:
        doc = self._table.get(Query().folder == folder)
        return FolderState.from_document(dict(doc)) if doc else FolderState(folder=folder)

    def put(self, state: FolderState) -> None:
        self._table.upsert(state.to_document(), Query().folder == state.folder)

    def remove(self, folder: str) -> None:
        self._table.remove(Query().folder == folder)

    def all(self) -> list[FolderState]:
        return sorted((FolderState.from_document(dict(doc)) for doc in self._table.all()), key=lambda s: s.folder)

    def close(self) -> None:
        self._db.close()

