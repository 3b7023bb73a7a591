"""The default element store: one JSON file per message, written atomically."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from .atomic import atomic_write_bytes, fsync_directory

__all__ = ["ElementKey", "ElementStore", "apply_attachment_results", "folder_dirname"]

_WRITERS = 8  # files written (and fsynced) at once by one store


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
        self._pool: ThreadPoolExecutor | None = None

    def path_for(self, key: ElementKey) -> Path:
        return self.root / key.mailbox / folder_dirname(key.folder) / str(key.uidvalidity) / f"{key.uid:010d}.json"

    def upsert_many(self, elements: Iterable[dict[str, Any]]) -> int:
        """Write every element durably; returns how many were written."""
        return self._write_all((ElementKey.of(element), element) for element in elements)

    def update_flags(self, updates: Iterable[tuple[ElementKey, list[str]]]) -> int:
        """Set the flags of stored elements; returns how many changed (unknown or unchanged ones are skipped)."""
        changed = []
        for key, flags in updates:
            element = self._read(key)
            if element is not None and element.get("flags") != sorted(flags):
                element["flags"] = sorted(flags)
                changed.append((key, element))
        return self._write_all(changed)

    def mark_deleted(self, keys: Iterable[ElementKey], when: str) -> int:
        """Turn elements into tombstones (``deleted: true``); returns how many were live before."""
        changed = []
        for key in keys:
            element = self._read(key)
            if element is not None and not element.get("deleted"):
                element["deleted"] = True
                element["deleted_at"] = when
                changed.append((key, element))
        return self._write_all(changed)

    def update_attachments(self, updates: Iterable[tuple[ElementKey, list[dict[str, Any]]]]) -> int:
        """Record extraction results; returns how many elements changed.

        Each result names the attachment by ``index`` and ``sha256`` and carries ``status`` and
        ``text``; it is applied only to an attachment still ``pending`` with that hash, so a
        repeated or late update changes nothing (idempotent) and an unknown element is skipped.
        """
        changed = []
        for key, results in updates:
            element = self._read(key)
            if element is not None and apply_attachment_results(element, results):
                changed.append((key, element))
        return self._write_all(changed)

    def _read(self, key: ElementKey) -> dict[str, Any] | None:
        try:
            with open(self.path_for(key), "rb") as handle:
                element: dict[str, Any] = json.load(handle)
                return element
        except FileNotFoundError:
            return None

    def _write_all(self, items: Iterable[tuple[ElementKey, dict[str, Any]]]) -> int:
        """Write every item durably before returning: each file fsynced, then each directory.

        Files are written by a few threads at once. Each fsync waits for the disk, and the file
        system commits concurrent fsyncs together, so a batch is durable several times sooner
        than one file after another; encoding stays in the caller's thread.
        """
        directories: set[Path] = set()
        pending: list[Future[None]] = []
        latest: dict[Path, Future[None]] = {}
        try:
            for key, element in items:
                path = self.path_for(key)
                payload = json.dumps(element, ensure_ascii=False, sort_keys=True).encode()
                if path in latest:  # the same element twice: the later one must land last
                    latest[path].exception()
                if path.parent not in directories:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    directories.add(path.parent)
                latest[path] = self._writers().submit(
                    atomic_write_bytes, path, payload, sync_dir=False, make_parent=False
                )
                pending.append(latest[path])
        finally:
            for written in pending:
                written.exception()  # wait for every write, even after a failure: none outlives the call
        for written in pending:
            written.result()  # the first failure, if any, is the caller's
        for directory in directories:
            fsync_directory(directory)
        return len(pending)

    def _writers(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=_WRITERS, thread_name_prefix="element-store")
        return self._pool

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
