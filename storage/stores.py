"""Opening the element store a configuration names: SQLite in the data directory (the default), or
PostgreSQL at ``[store] url`` shared by several processes (imported only then: psycopg is an extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .data_dir import DataDir
from .element_store import ElementReader, ElementStore
from .sqlite import ImportReport, Progress, open_element_reader, open_element_store

if TYPE_CHECKING:
    from .postgres.fencing import Fence

__all__ = ["open_reader", "open_store"]


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
