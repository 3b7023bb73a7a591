"""The default element store: one SQLite database in the data directory (see ``docs/store.md``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from loguru import logger

from ..data_dir import DataDir
from ..errors import DataDirLocked
from ..lock import DataDirLock
from .file_tree_import import Progress, TreeImport, import_file_tree
from .reader import SqliteElementReader
from .schema import BadStoreFile
from .store import SqliteElementStore

__all__ = ["BadStoreFile", "Progress", "SqliteElementReader", "SqliteElementStore", "TreeImport", "open_element_reader",
           "open_element_store"]

ImportReport = Callable[[str], None]


def open_element_store(data_dir: DataDir, *, report: ImportReport | None = None,
                       progress: Progress | None = None) -> SqliteElementStore:
    """The writer, for the process that owns ``data_dir`` (it holds the lock); imports an old
    file tree first, saying so through ``report`` (default: the log) and ``progress``."""
    data_dir.ensure()
    store = SqliteElementStore(data_dir.element_db_path, data_dir.feed_listeners_root)
    try:
        _import_old_tree(store, data_dir, report, progress)
    except BaseException:
        store.close()
        raise
    return store


def open_element_reader(data_dir: DataDir | Path | str, *, report: ImportReport | None = None,
                        progress: Progress | None = None) -> SqliteElementReader:
    """A reader of the store in ``data_dir``, safe beside a running process (no actor system is
    started): ``get``, ``iter_elements``, ``changes``, ``wait_for_changes``, ``search``, ``thread``.

    When an old file tree is still there and no process owns the directory, it is imported first
    (a running process imported it at its start).
    """
    if not isinstance(data_dir, DataDir):
        data_dir = DataDir(Path(data_dir).expanduser())
    data_dir.ensure()
    if data_dir.legacy_elements_root.is_dir():
        lock = DataDirLock(data_dir.root)
        try:
            lock.acquire()
        except DataDirLocked:
            pass
        else:
            try:
                open_element_store(data_dir, report=report, progress=progress).close()
            finally:
                lock.release()
    return SqliteElementReader(data_dir.element_db_path, data_dir.feed_listeners_root)


def _import_old_tree(store: SqliteElementStore, data_dir: DataDir, report: ImportReport | None,
                     progress: Progress | None) -> None:
    tree = data_dir.legacy_elements_root
    if not tree.is_dir():
        return
    say = report or logger.warning
    say(f"importing the old file tree {tree} into {data_dir.element_db_path} (done once)")
    done = import_file_tree(store, tree, progress)
    if done is not None:
        say(done.describe(data_dir.element_db_path))
