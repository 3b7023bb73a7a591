"""Attachment bytes, content-addressed by sha256, with a reference list per mailbox.

Layout under the root: ``objects/<first two hex>/<sha256>`` holds the bytes (0600), and
``refs/<mailbox>/<sha256>`` (an empty file) says that mailbox holds an attachment with that
content. The same file attached in two mailboxes is stored once; purging one mailbox deletes its
references and every object no other mailbox still references.

No path here is ever made from a name a message chose: objects are named by a hash this code
computed (checked to be 64 hex digits), so a hostile attachment file name (``../../x``,
separators, control characters) cannot write outside the store.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from .atomic import atomic_write_bytes, fsync_directory
from .registry import validate_mailbox_id

__all__ = ["BlobStore"]

_SHA256 = re.compile(r"[0-9a-f]{64}")


class BlobStore:
    """Write-once objects plus per-mailbox references; one writer at a time (the processor, or
    a command holding the data directory's lock)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / "objects" / sha256[:2] / sha256

    def put(self, mailbox: str, data: bytes, *, sync: bool = True) -> str:
        """Keep ``data`` for ``mailbox``; returns its sha256. Writing the same bytes again is free."""
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path_for(sha256)
        if not target.exists():
            atomic_write_bytes(target, data, sync_dir=sync)
        ref = self._refs(mailbox) / sha256
        if not ref.exists():
            atomic_write_bytes(ref, b"", sync_dir=sync)
        return sha256

    def get(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def has(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()

    def referenced_by(self, mailbox: str) -> set[str]:
        directory = self._refs(mailbox)
        try:
            return {p.name for p in directory.iterdir() if _SHA256.fullmatch(p.name)}
        except FileNotFoundError:
            return set()

    def remove_mailbox(self, mailbox: str) -> int:
        """Drop the mailbox's references and the objects nobody else references; returns objects deleted."""
        mine = self.referenced_by(mailbox)
        shutil.rmtree(self._refs(mailbox), ignore_errors=True)
        others: set[str] = set()
        for directory in self._mailbox_dirs():
            others |= {p.name for p in directory.iterdir()}
        deleted = 0
        for sha256 in sorted(mine - others):
            try:
                self.path_for(sha256).unlink()
                deleted += 1
            except FileNotFoundError:
                pass
        if deleted:
            fsync_directory(self.root / "objects")
        return deleted

    def _refs(self, mailbox: str) -> Path:
        return self.root / "refs" / validate_mailbox_id(mailbox)

    def _mailbox_dirs(self) -> list[Path]:
        try:
            return [p for p in (self.root / "refs").iterdir() if p.is_dir()]
        except FileNotFoundError:
            return []
