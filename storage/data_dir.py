"""Where everything of one installation lives, in one place so no path is spelled twice."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from .atomic import make_private_dir

__all__ = ["DataDir", "default_data_dir"]


def default_data_dir() -> Path:
    """``$FUTURNAL_HOME``, else ``$XDG_DATA_HOME/futurnal-actors``, else ``~/.local/share/futurnal-actors``."""
    if home := os.environ.get("FUTURNAL_HOME"):
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg).expanduser() / "futurnal-actors"


@dataclass(frozen=True, slots=True)
class DataDir:
    """The layout of a data directory, made absolute once, here.

    Every path handed on is then absolute: the attachment extraction servers run from ``/``,
    and a relative ``--data-dir`` would name other files there.
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(os.path.abspath(Path(self.root).expanduser())))

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
    def secrets_path(self) -> Path:
        """Secrets kept encrypted in a file (``FUTURNAL_SECRETS_STORE=file``) instead of the OS keyring."""
        return self.root / "secrets.enc"

    @property
    def secrets_key_path(self) -> Path:
        """The key of :attr:`secrets_path` when none is given elsewhere (systemd credential, key file)."""
        return self.root / "secrets.key"

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
        """Create the directory private to the user (it holds people's mail), or make it so: one
        of the user's own that others may enter is tightened to 0700, and a warning says so."""
        make_private_dir(self.root)
        info = self.root.stat()
        if info.st_uid == os.getuid() and info.st_mode & 0o077:
            self.root.chmod(0o700)
            logger.warning("data directory {path} was open to other users (mode {mode:04o}); made it 0700",
                           path=str(self.root), mode=stat.S_IMODE(info.st_mode))
        return self
