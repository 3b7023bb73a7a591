"""The default element store: one JSON file per message, written atomically."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from .atomic import atomic_write_bytes, fsync_directory

__all__ = ["ElementStore", "folder_dirname"]


def folder_dirname(folder: str) -> str:
    """A reversible, path-safe directory name for an IMAP folder (``Archive/2024`` -> ``Archive%2F2024``)."""
    name = quote(folder, safe=" -_@+,")
    return "%2E" + name[1:] if name.startswith(".") else name


class ElementStore:
    """Elements under ``root/<mailbox>/<folder>/<uidvalidity>/<uid>.json``.

    Each file is replaced atomically, so readers never see half an element and writing the same
    element twice is harmless (the upsert that makes re-fetching after a crash safe).
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, element: dict[str, Any]) -> Path:
        return (
            self.root
            / element["mailbox"]
            / folder_dirname(element["folder"])
            / str(element["uidvalidity"])
            / f"{element['uid']:010d}.json"
        )

    def upsert_many(self, elements: Iterable[dict[str, Any]]) -> int:
        """Write every element durably; returns how many were written."""
        directories: set[Path] = set()
        written = 0
        for element in elements:
            path = self.path_for(element)
            payload = json.dumps(element, ensure_ascii=False, sort_keys=True).encode()
            atomic_write_bytes(path, payload, sync_dir=False)
            directories.add(path.parent)
            written += 1
        for directory in directories:
            fsync_directory(directory)
        return written

    def iter_elements(self, mailbox: str | None = None, folder: str | None = None) -> Iterator[dict[str, Any]]:
        """Every stored element, ordered by mailbox, folder, UIDVALIDITY and UID."""
        for mailbox_dir in self._children(self.root, mailbox):
            wanted_folder = folder_dirname(folder) if folder is not None else None
            for folder_dir in self._children(mailbox_dir, wanted_folder):
                for validity_dir in sorted(self._children(folder_dir, None), key=lambda p: int(p.name)):
                    for path in sorted(validity_dir.glob("*.json")):
                        with open(path, "rb") as handle:
                            yield json.load(handle)

    def folders(self, mailbox: str) -> list[str]:
        return [unquote(p.name) for p in self._children(self.root / mailbox, None)]

    def count(self, mailbox: str, folder: str | None = None) -> int:
        """How many elements are stored, by counting files (no JSON is read)."""
        wanted = folder_dirname(folder) if folder is not None else None
        return sum(
            sum(1 for entry in os.scandir(validity_dir) if entry.name.endswith(".json"))
            for folder_dir in self._children(self.root / mailbox, wanted)
            for validity_dir in self._children(folder_dir, None)
        )

    def remove_mailbox(self, mailbox: str) -> int:
        """Delete every element of a mailbox; returns how many files went."""
        target = self.root / mailbox
        if not target.exists():
            return 0
        removed = sum(1 for _ in target.rglob("*.json"))
        shutil.rmtree(target)
        return removed

    @staticmethod
    def _children(directory: Path, only: str | None) -> list[Path]:
        if only is not None:
            candidate = directory / only
            return [candidate] if candidate.is_dir() else []
        try:
            return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
        except FileNotFoundError:
            return []


