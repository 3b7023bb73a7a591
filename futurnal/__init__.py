"""futurnal-actors: privacy-first IMAP ingestion into a local element store.

The public API is re-exported lazily, so importing the mail domain (``futurnal.imap``,
``futurnal.parse``, ...) never starts to load the actor system.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ActorSystem", "ElementSink", "MailboxSyncReport", "SearchFilters", "ServiceSettings", "open_element_reader"]

if TYPE_CHECKING:
    from futurnal.actors.sink import ElementSink
    from futurnal.config import ServiceSettings
    from futurnal.storage.element_store import SearchFilters
    from futurnal.storage.sqlite import open_element_reader
    from futurnal.sync.sync_runs import MailboxSyncReport
    from futurnal.system import ActorSystem

_LAZY = {
    "ActorSystem": "futurnal.system",
    "ElementSink": "futurnal.actors.sink",
    "MailboxSyncReport": "futurnal.sync.sync_runs",
    "ServiceSettings": "futurnal.config",
    "SearchFilters": "futurnal.storage.element_store",
    "open_element_reader": "futurnal.storage.sqlite",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'futurnal' has no attribute {name!r}")
