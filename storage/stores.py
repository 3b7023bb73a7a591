"""Opening the element store a configuration names: SQLite in the data directory (the default), or
PostgreSQL at ``[store] url`` shared by several processes (imported only then: psycopg is an extra)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from .data_dir import DataDir
from .element_store import ElementReader, ElementStore
from .errors import StorageError
from .sqlite import ImportReport, Progress, open_element_reader, open_element_store
from .store_url import display_store

if TYPE_CHECKING:
    from .postgres.fencing import Fence

__all__ = ["display_store", "open_reader", "open_store", "sharing"]


def sharing(data_dir: DataDir, url: str, *, fence: Fence | None = None) -> DataDir:
    """``data_dir`` with its control plane (registry, folder states, consent, audit log) in the
    shared database at ``url`` when one is configured, its writes for a mailbox fenced by
    ``fence`` (a running process's leases); as it is when ``url`` is empty."""
    if not url:
        return data_dir
    try:
        from .postgres.control import SharedControl
    except ImportError as exc:
        raise StorageError(f"the shared store ([store] url) needs psycopg ({exc}): "
                           "pip install 'futurnal-actors[postgres]'") from None
    return dataclasses.replace(data_dir, shared=SharedControl(url, fence=fence))


def open_store(data_dir: DataDir, *, url: str = "", fence: Fence | None = None, report: ImportReport | None = None,
               progress: Progress | None = None) -> ElementStore:
    """The writer: PostgreSQL at ``url`` (its writes fenced by ``fence``), else the data directory's SQLite store."""
    if not url:
        return open_element_store(data_dir, report=report, progress=progress)
    from .postgres import PostgresElementStore

    return PostgresElementStore(url, fence=fence)


def open_reader(data_dir: DataDir, *, url: str = "", report: ImportReport | None = None,
                progress: Progress | None = None) -> ElementReader:
    """A reader, safe beside running processes: PostgreSQL at ``url``, else the data directory's SQLite store."""
    if not url:
        return open_element_reader(data_dir, report=report, progress=progress)
    from .postgres import PostgresElementReader

    return PostgresElementReader(url)
