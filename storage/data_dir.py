"""Where everything of one installation lives, in one place so no path is spelled twice."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DataDir", "default_data_dir"]


def default_data_dir() -> Path:
    """``$FUTURNAL_HOME``, else ``$XDG_DATA_HOME/futurnal-actors``, else ``~/.local/share/futurnal-actors``."""
    if home := os.environ.get("FUTURNAL_HOME"):
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg).expanduser() / "futurnal-actors"


@dataclass(frozen=True, slots=True)
class DataDir:
    """The layout of a data directory."""

    root: Path

    @property
    def registry_path(self) -> Path:
        return self.root / "mailboxes.json"

    @property
    def element_db_path(self) -> Path:
        """The element store: elements, their change feed and search index (SQLite)."""
        return self.root / "elements.sqlite"

    @property
    def feed_listeners_root(self) -> Path:
        """Where followers of the change feed leave the names of their wake-up sockets."""
        return self.root / "feed-listeners"

    @property
    def legacy_elements_root(self) -> Path:
        """The old element store (one JSON file per element), imported into the database once."""
        return self.root / "elements"

    @property
    def quarantine_root(self) -> Path:
        return self.root / "quarantine"

    @property
    def audit_path(self) -> Path:
        return self.root / "audit.jsonl"

    @property
    def consent_path(self) -> Path:
        return self.root / "consent.json"

    @property
    def log_key_path(self) -> Path:
        """The key of the tokens that stand for addresses, subjects and paths in logs."""
        return self.root / "log.key"

    @property
    def blobs_root(self) -> Path:
        return self.root / "blobs"

    @property
    def attachment_queue_root(self) -> Path:
        return self.root / "attachment-queue"

    def state_path(self, mailbox_id: str) -> Path:
        return self.root / "state" / f"{mailbox_id}.json"

    def gmail_index_root(self, mailbox_id: str) -> Path:
        return self.root / "state" / f"{mailbox_id}.gmail-index"

    def ensure(self) -> DataDir:
        """Create the directory private to the user: it holds people's mail."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self
