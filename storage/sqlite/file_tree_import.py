"""Moving the elements of the old store (one JSON file per element) into the database, once.

Elements are read in batches and upserted (an element already imported is left as it is, so a
second run after a crash adds nothing), and files are deleted only after the database holds every
element read from them. A file that cannot be read is kept, under ``<tree>.unreadable``, and counted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .store import SqliteElementStore

__all__ = ["TreeImport", "import_file_tree"]

_BATCH = 1000


@dataclass(frozen=True, slots=True)
class TreeImport:
    """What an import did: ``moved`` elements, and ``unreadable`` files it kept under ``kept``."""

    tree: Path
    moved: int
    unreadable: int
    kept: Path

    def describe(self, database: Path) -> str:
        line = f"moved {self.moved} element(s) from the old file tree {self.tree} into {database}"
        if self.unreadable:
            line += f"; {self.unreadable} file(s) that could not be read were kept in {self.kept}"
        return line


Progress = Callable[[int, int], None]


def import_file_tree(store: SqliteElementStore, tree: Path, progress: Progress | None = None) -> TreeImport | None:
    """Import and remove ``tree`` (``<uid>.json`` files under mailbox/folder/uidvalidity folders);
    None when there is no tree. ``progress(files done, files in all)`` is called after each batch."""
    if not tree.is_dir():
        return None
    total = sum(1 for _ in _element_files(tree))
    moved = unreadable = 0
    batch: list[tuple[Path, dict[str, Any]]] = []
    for path in _element_files(tree):
        if progress is not None and len(batch) == 0:
            progress(moved + unreadable, total)
        try:
            batch.append((path, json.loads(path.read_bytes())))
        except (OSError, ValueError):
            unreadable += 1
            continue
        if len(batch) >= _BATCH:
            moved += _commit(store, batch)
            batch = []
    moved += _commit(store, batch)
    if progress is not None:
        progress(moved + unreadable, total)
    kept = tree.with_name(tree.name + ".unreadable")
    if kept.exists():
        kept = kept.with_name(f"{kept.name}.{os.getpid()}")
    _remove_empty(tree)
    if tree.exists():  # what is left could not be read: kept aside, so the import is not tried again
        tree.rename(kept)
    return TreeImport(tree, moved, unreadable, kept)


def _element_files(tree: Path) -> Iterator[Path]:
    """The tree's element files, folder by folder in name order, never all listed at once (a
    mailbox of 500,000 messages was 500,000 files); temp files of unfinished writes left out."""
    for directory, folders, files in os.walk(tree):
        folders.sort()
        for name in sorted(files):
            if name.endswith(".json") and not name.startswith("."):
                yield Path(directory, name)


def _commit(store: SqliteElementStore, batch: list[tuple[Path, dict[str, Any]]]) -> int:
    if not batch:
        return 0
    store.upsert_many(element for _, element in batch)  # durable before any file goes
    for path, _ in batch:
        path.unlink(missing_ok=True)
    return len(batch)


def _remove_empty(tree: Path) -> None:
    """Remove the tree's folders bottom-up, and its leftover temp files; unreadable files stay."""
    for directory, _, files in os.walk(tree, topdown=False):
        for name in files:
            if name.startswith(".") and name.endswith(".tmp"):
                Path(directory, name).unlink(missing_ok=True)
        try:
            os.rmdir(directory)
        except OSError:
            pass  # not empty: it holds a file that could not be read
