"""The mailbox registry: which mailboxes exist and how to reach them (never their secrets)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tinydb import Query, TinyDB

from .shared import DocumentChanged, SharedDocument, tinydb_storage

__all__ = ["MailboxRecord", "MailboxRegistry", "UnknownMailbox", "default_mailbox_id", "validate_mailbox_id"]

_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_TEXT_FIELDS = ("email", "host", "username", "security", "auth", "priority")
_FOLDER_LISTS = ("folders", "exclude", "watch")


class UnknownMailbox(LookupError):
    """No mailbox with that id or e-mail address is registered."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no mailbox {key!r} is registered (see `imap list`)")


@dataclass(frozen=True, slots=True)
class MailboxRecord:
    """How to reach one mailbox. Secrets live in the keyring, keyed by ``id``."""

    id: str
    email: str
    host: str
    port: int
    username: str
    security: str = "tls"
    cafile: str | None = None
    #: Folders to sync: exact names, globs (``Archive/*``) or special-use (``\\Sent``); see ``imap add --help``.
    folders: tuple[str, ...] = ("INBOX",)
    exclude: tuple[str, ...] = ()
    auth: str = "password"
    sync_interval_seconds: int = 300
    #: ``@interval <seconds>``, a cron expression, or ``@manual``; None means every ``sync_interval_seconds``.
    schedule: str | None = None
    #: ``low``, ``normal`` or ``high``: who goes first when the concurrent-sync limit is reached.
    priority: str = "normal"
    #: Folders watched in real time (IDLE, else polling), within the mailbox's connection budget.
    watch: tuple[str, ...] = ("INBOX",)
    #: Megabytes (10**6 bytes) the mailbox may download in a rolling 24 hours; None: no budget.
    daily_download_mb: int | None = None
    created_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_document(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["folders"] = list(self.folders)
        doc["exclude"] = list(self.exclude)
        doc["watch"] = list(self.watch)
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> MailboxRecord:
        known = {name: doc[name] for name in cls.__dataclass_fields__ if name in doc}
        for name, default in (("folders", ("INBOX",)), ("exclude", ()), ("watch", ("INBOX",))):
            value = known.get(name, default)
            if not isinstance(value, list | tuple):  # tuple("INBOX") would be five folders
                raise ValueError(f"mailbox {name} must be a list of folder names, not {value!r}")
            known[name] = tuple(value)
        return cls(**known)

    def validate(self) -> MailboxRecord:
        """Raise ValueError naming the first field of the wrong type or out of range: a record
        also arrives as JSON (the admin console's ``add``), and a bad one must not be stored."""
        validate_mailbox_id(self.id)
        checks = [
            *((name, _text(getattr(self, name)), "a non-empty string") for name in _TEXT_FIELDS),
            ("port", _whole(self.port) and 0 < self.port < 65536, "a TCP port (1-65535)"),
            ("sync_interval_seconds", _whole(self.sync_interval_seconds) and self.sync_interval_seconds >= 1,
             "a whole number of seconds, at least 1"),
            ("cafile", self.cafile is None or _text(self.cafile), "a file name or null"),
            ("daily_download_mb", self.daily_download_mb is None
             or (_whole(self.daily_download_mb) and self.daily_download_mb >= 1), "a whole number of MB, or null"),
            ("schedule", self.schedule is None or _text(self.schedule), "a schedule or null"),
            ("created_at", isinstance(self.created_at, str), "a string"),
            *((name, all(_text(f) for f in getattr(self, name)), "a list of folder names") for name in _FOLDER_LISTS),
            ("extra", isinstance(self.extra, dict), "a JSON object"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"mailbox {name} must be {expected}, not {getattr(self, name)!r}")
        return self

    def with_changes(self, **changes: Any) -> MailboxRecord:
        return replace(self, **changes)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: object) -> bool:
    return isinstance(value, str) and value.strip() != ""


def validate_mailbox_id(mailbox_id: str) -> str:
    """Ids name files and keyring entries, so they are kept to a small, path-safe alphabet
    (matched whole: a trailing newline is not let through)."""
    if not isinstance(mailbox_id, str) or not _ID_PATTERN.fullmatch(mailbox_id):
        raise ValueError(
            f"invalid mailbox id {mailbox_id!r}: use 1-64 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return mailbox_id


def default_mailbox_id(email: str) -> str:
    """``Alice.Smith@Example.com`` -> ``alice.smith-example.com``."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", email.strip().lower().replace("@", "-")).strip("-._")
    return validate_mailbox_id(slug[:64] or "mailbox")


class MailboxRegistry:
    """The registered mailboxes, in a TinyDB file written atomically (one owner per file), or in
    a shared database's document (see :meth:`~storage.data_dir.DataDir.registry`)."""

    def __init__(self, source: Path | SharedDocument, *, read_only: bool = False) -> None:
        self._db = TinyDB(source, storage=tinydb_storage(source), read_only=read_only)
        self._table = self._db.table("mailboxes")

    def add(self, record: MailboxRecord) -> None:
        record.validate()
        self.refuse_taken(record)
        try:
            self._table.insert(record.to_document())
        except ValueError as exc:  # TinyDB: the id it chose was taken by a write from elsewhere meanwhile
            if "already exists" not in str(exc):
                raise
            raise DocumentChanged("the mailbox registry") from None

    def refuse_taken(self, record: MailboxRecord) -> None:
        """``ValueError`` when ``record``'s address or id is registered already, as :meth:`add` refuses
        it. The address first: an address is registered once, under any id, so a new id cannot help."""
        address = record.email.lower()
        if taken := self._table.search(Query().email.test(lambda email: email.lower() == address)):
            raise ValueError(f"{record.email} is already registered as {taken[0]['id']}; "
                             "an address is registered once")
        if self._table.contains(Query().id == record.id):
            raise ValueError(f"a mailbox with id {record.id!r} is already registered; use --id to choose another")

    def update(self, record: MailboxRecord) -> None:
        record.validate()
        self._table.update(record.to_document(), Query().id == record.id)

    def remove(self, mailbox_id: str) -> None:
        self._table.remove(Query().id == mailbox_id)

    def all(self) -> list[MailboxRecord]:
        return sorted((MailboxRecord.from_document(doc) for doc in self._table.all()), key=lambda r: r.id)

    def get(self, key: str) -> MailboxRecord:
        """Look a mailbox up by id or by e-mail address."""
        for record in self.all():
            if key in (record.id, record.email) or key.lower() == record.email.lower():
                return record
        raise UnknownMailbox(key)

    def __enter__(self) -> MailboxRegistry:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()
