"""Where everything of one installation lives, in one place so no path is spelled twice."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from loguru import logger

from .atomic import make_private_dir
from .audit_log import AuditLog, AuditTrail
from .consent import ConsentRegistry
from .quarantine import Quarantine, QuarantineStore
from .registry import MailboxRegistry
from .shared import SharedControlPlane, SharedDocument
from .sync_state import FolderStateStore

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

    With ``shared`` (several processes sharing one database), the mailbox registry, the folder
    states, consent, the audit log and the quarantine are kept there instead of in files: open
    them with :meth:`registry`, :meth:`folder_states`, :meth:`consent`, :meth:`audit_log` and
    :meth:`quarantine`, never from the paths here, which stay for what is about files (locks,
    messages).
    """

    root: Path
    shared: SharedControlPlane | None = field(default=None, compare=False, repr=False)

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
        """Quarantined messages on one machine; open them with :meth:`quarantine`."""
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

    # -- the control plane: files here, or documents of the shared database -----------------------

    def registry(self, *, read_only: bool = False) -> MailboxRegistry:
        """The mailbox registry: ``mailboxes.json``, or the shared document ``registry``."""
        source = self.registry_path if self.shared is None else self.shared.document("registry")
        return MailboxRegistry(source, read_only=read_only)

    def folder_states(self, mailbox_id: str, *, read_only: bool = False) -> FolderStateStore:
        """A mailbox's folder states: ``state/<id>.json``, or the shared document ``state/<id>``,
        written only under the mailbox's lease."""
        return FolderStateStore(self._state_source(mailbox_id), read_only=read_only)

    def has_state(self, mailbox_id: str) -> bool:
        """Whether the mailbox has folder states stored (it has synced, or tried to)."""
        if self.shared is None:
            return self.state_path(mailbox_id).exists()
        return self.shared.document(f"state/{mailbox_id}", mailbox_id).read() is not None

    def remove_state(self, mailbox_id: str) -> None:
        """Delete a mailbox's folder states (nothing when there are none)."""
        if self.shared is None:
            self.state_path(mailbox_id).unlink(missing_ok=True)
        else:
            self.shared.document(f"state/{mailbox_id}", mailbox_id).delete()

    def consent(self) -> ConsentRegistry:
        """Consent per mailbox: ``consent.json``, or the shared document ``consent``."""
        return ConsentRegistry(self.consent_path if self.shared is None else self.shared.document("consent"))

    def audit_log(self) -> AuditTrail:
        """The audit log: ``audit.jsonl``, or the shared database's table."""
        return AuditLog(self.audit_path) if self.shared is None else self.shared.audit_log()

    def quarantine(self) -> Quarantine:
        """Quarantined messages: files in ``quarantine/``, or the shared database's table, where a
        process that takes a mailbox over sees what another one set aside."""
        return QuarantineStore(self.quarantine_root) if self.shared is None else self.shared.quarantine()

    def _state_source(self, mailbox_id: str) -> Path | SharedDocument:
        if self.shared is None:
            return self.state_path(mailbox_id)
        return self.shared.document(f"state/{mailbox_id}", mailbox_id)

    def gmail_index_root(self, mailbox_id: str) -> Path:
        return self.root / "state" / f"{mailbox_id}.gmail-index"

    def ensure(self) -> DataDir:
        """Create the directory private to the user (it holds people's mail), or make it so: one
        of the user's own that others may enter is tightened to 0700, and a warning says so."""
        make_private_dir(self.root)
        for line in _tightened(self.root, [self.root]):
            logger.warning(line)
        return self

    def unusable(self) -> str | None:
        """Why this data directory cannot be used, as one line saying what to do: it is a file, it
        is read-only, or it cannot be made where it should be; None when it can be used."""
        root, where = self.root, self.root
        while not os.path.lexists(where) and where.parent != where:
            where = where.parent
        if not where.is_dir():
            what = "a file" if where.is_file() else "not a directory"
            if where == root:
                return f"data directory {root} is {what}: move it away, or choose another one (--data-dir)"
            return f"data directory {root} cannot be made: {where} is {what}; choose another one (--data-dir)"
        if os.access(where, os.R_OK | os.W_OK | os.X_OK):
            return None
        info = where.stat()
        mode = stat.S_IMODE(info.st_mode)
        if _read_only_file_system(where):
            reason, fix = "on a read-only file system", "mount it read-write"
        elif info.st_uid != os.getuid():
            reason, fix = f"another user's (uid {info.st_uid}, mode {mode:04o})", "run as that user"
        else:
            reason, fix = f"read-only (mode {mode:04o})", f"chmod 700 {where}"
        if where == root:
            return f"data directory {root} is {reason}: {fix}, or choose another one (--data-dir)"
        return f"data directory {root} cannot be made: {where} is {reason}; choose another one (--data-dir)"

    def make_private(self) -> list[str]:
        """Tighten the data directory and every directory in it that other users may enter to 0700,
        a line each saying so; one of another user's, which cannot be, is named with the fix."""
        if not self.root.is_dir():
            return []
        inside = [Path(parent, name) for parent, names, _files in os.walk(self.root) for name in names]
        return _tightened(self.root, [self.root, *sorted(inside)])


def _tightened(root: Path, directories: list[Path]) -> list[str]:
    """``directories`` (``root`` and ones in it) that other users may enter, made 0700 where they
    are the user's own, a line each; the root is followed if it is a link, no other link is."""
    lines = []
    for directory in directories:
        try:
            info = directory.stat() if directory == root else directory.lstat()
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(info.st_mode)
        if not stat.S_ISDIR(info.st_mode) or not mode & 0o077:
            continue
        name = f"data directory {directory}" if directory == root else f"directory {directory}"
        if info.st_uid != os.getuid():
            lines.append(f"{name} is open to other users (mode {mode:04o}) and is not yours to change: "
                         f"chmod 700 {directory}")
            continue
        directory.chmod(0o700)
        lines.append(f"{name} was open to other users (mode {mode:04o}); made it 0700")
    return lines


def _read_only_file_system(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
