"""SinkActor: the only writer of the element store."""

from __future__ import annotations

from typing import Any, Protocol

from loguru import logger

from futurnal.process import stage_cpu
from futurnal.storage.element_store import ElementKey
from futurnal.storage.errors import local_fault

from . import actor_names
from .messages import ForgetMailbox, MarkDeleted, UpdateAttachments, UpdateFlags, WriteElements
from .service_actor import ServiceActor

__all__ = ["ElementSink", "SinkActor"]


class ElementSink(Protocol):
    """What a sink must do. Every method returns only once its change is durable: the fetcher
    advances its watermark on that return, so a sink that buffers must flush first.

    ``upsert_many`` is idempotent (same ``id``, same slot: a re-fetch after a crash replaces).
    ``update_flags`` and ``mark_deleted`` address elements by :class:`ElementKey` (whose
    element ``id`` is ``element_id(key.mailbox, key.folder, key.uidvalidity, key.uid)``) and skip unknown ones;
    ``mark_deleted`` keeps a tombstone (``deleted: true``) rather than forgetting the element.
    ``update_attachments`` records extraction results (each ``index``, ``sha256``, ``status``,
    ``text``) into attachments still ``pending`` with that hash, and skips unknown elements, so
    it is idempotent; ``futurnal.storage.element_store.apply_attachment_results`` does it to one
    element. A sink without it keeps ``pending`` attachments (the results are dropped).
    The default sink, :class:`futurnal.storage.sqlite.SqliteElementStore`, also gives each change
    the next number of its change feed and keeps the search index.
    """

    def upsert_many(self, elements: list[dict[str, Any]]) -> int: ...

    def update_flags(self, updates: list[tuple[ElementKey, list[str]]]) -> int: ...

    def mark_deleted(self, keys: list[ElementKey], when: str) -> int: ...

    def update_attachments(self, updates: list[tuple[ElementKey, list[dict[str, Any]]]]) -> int: ...


class SinkActor(ServiceActor):
    """Serialises every write through one thread, so the store needs no locking of its own.

    A write that fails for a reason of this machine's (a full disk, an I/O error) goes back to
    whoever asked as a :class:`~futurnal.storage.errors.LocalFault` naming the store and what to
    do; nothing of it was acknowledged, so no watermark moves past it, and the asker retries later.
    """

    def __init__(self, *, sink: ElementSink, child_id: str = actor_names.SINK, supervisor: Any = None) -> None:
        super().__init__(child_id=child_id, supervisor=supervisor)
        self._sink = sink

    def handle(self, message: Any) -> Any:
        try:
            with stage_cpu.timed("store.sink"):
                return self._apply(message)
        except Exception as exc:
            fault = local_fault(exc, path=getattr(self._sink, "path", None))
            if fault is None or fault is exc:
                raise
            raise fault from exc

    def _apply(self, message: Any) -> Any:
        if isinstance(message, WriteElements):
            written = self._sink.upsert_many(list(message.elements))
            for element in message.elements:
                _log_stored(element)
            return written
        if isinstance(message, UpdateFlags):
            return self._sink.update_flags([(key, list(flags)) for key, flags in message.updates])
        if isinstance(message, MarkDeleted):
            return self._sink.mark_deleted(list(message.keys), message.when)
        if isinstance(message, ForgetMailbox):
            remove = getattr(self._sink, "remove_mailbox", None)  # optional: a purge of the default store
            return remove(message.mailbox) if remove is not None else 0
        if isinstance(message, UpdateAttachments):
            update = getattr(self._sink, "update_attachments", None)  # optional for sinks older than it
            if update is None:
                return 0
            return update([(key, [dict(r) for r in results]) for key, results in message.updates])
        return super().handle(message)


def _log_stored(element: dict[str, Any]) -> None:
    """A debugging trail of what was stored; the personal parts go as fields, which logs mask."""
    logger.debug(
        "stored {folder} UID {uid}: {subject}, from {addresses}, attachments {filenames}",
        mailbox=element.get("mailbox"), folder=element.get("folder"), uid=element.get("uid"),
        subject=element.get("subject") or "",
        addresses=[a.get("address") or "" for a in element.get("from") or []],
        filenames=[a.get("filename") or "" for a in element.get("attachments") or []],
    )
