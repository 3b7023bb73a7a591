"""Which folder first stored each Gmail message, so label folders do not ingest it again."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .atomic import atomic_write_bytes
from .element_store import ElementKey

__all__ = ["GmailMessageIndex"]


class GmailMessageIndex:
    """X-GM-MSGID -> the element key it was stored under, one small file per message.

    Files rather than TinyDB because it grows per message. The index is only consulted when a
    mailbox syncs label folders besides All Mail (the Gmail default syncs All Mail alone, where
    every message appears once), and it is written without fsync: after a crash the worst case
    is one duplicate element, never a lost one.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, msgid: str) -> Path:
        digest = hashlib.sha256(msgid.encode()).hexdigest()
        return self.root / digest[:2] / digest

    def owner(self, msgid: str) -> ElementKey | None:
        try:
            mailbox, folder, uidvalidity, uid = self._path(msgid).read_text(encoding="utf-8").split("\x00")
            return ElementKey(mailbox, folder, int(uidvalidity), int(uid))
        except (FileNotFoundError, ValueError):
            return None

    def claim(self, msgid: str, key: ElementKey) -> None:
        data = f"{key.mailbox}\x00{key.folder}\x00{key.uidvalidity}\x00{key.uid}".encode()
        atomic_write_bytes(self._path(msgid), data, fsync=False, sync_dir=False)

    def release(self, msgid: str, key: ElementKey) -> None:
        """Forget the claim if ``key`` holds it (its element was tombstoned)."""
        if self.owner(msgid) == key:
            self._path(msgid).unlink(missing_ok=True)
