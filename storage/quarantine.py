"""Messages that could not be turned into elements, kept with their raw bytes for a later retry."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

from .atomic import atomic_write_bytes

__all__ = [
    "InvalidRecordId", "Quarantine", "QuarantineRecord", "QuarantineStore", "new_record", "record_from_json",
    "validate_record_id",
]

_RECORD_ID = re.compile(r"[0-9a-f]{16}")


class InvalidRecordId(ValueError):
    """Not a quarantine record id: refused before it can name a file."""

    def __init__(self, record_id: object, why: str = "16 hex digits, see `quarantine list`") -> None:
        super().__init__(f"{record_id!r} is not a quarantine record id ({why})")


def validate_record_id(record_id: object) -> str:
    """The one check of every id that reaches a store (CLI, admin console, retries): ids name
    files (and rows), so only what :meth:`Quarantine.record_id` makes is let through."""
    if not isinstance(record_id, str) or not _RECORD_ID.fullmatch(record_id):
        raise InvalidRecordId(record_id)
    return record_id


@dataclass(frozen=True, slots=True)
class QuarantineRecord:
    """Why one message was set aside. Never holds message content, only where it came from."""

    id: str
    mailbox: str
    folder: str
    uidvalidity: int
    uid: int
    reason: str
    attempts: int
    first_seen: str
    last_seen: str
    #: What the server said besides the bytes, so a retry can build the element in full.
    flags: tuple[str, ...] = ()
    internal_date: str | None = None
    #: False when the server never delivered the message whole (too large, refused, not sent):
    #: the kept bytes are its headers at most, so a retry cannot rebuild it.
    complete: bool = True


def new_record(
    previous: QuarantineRecord | None, *, mailbox: str, folder: str, uidvalidity: int, uid: int, reason: str,
    now: str, flags: list[str] | tuple[str, ...] = (), internal_date: str | None = None, complete: bool = True,
) -> QuarantineRecord:
    """The record of a message quarantined at ``now``: one more attempt than ``previous`` (the
    record already kept of it, if any), and first seen when that one was."""
    return QuarantineRecord(
        id=Quarantine.record_id(mailbox, folder, uidvalidity, uid),
        mailbox=mailbox,
        folder=folder,
        uidvalidity=uidvalidity,
        uid=uid,
        reason=reason,
        attempts=(previous.attempts + 1) if previous else 1,
        first_seen=previous.first_seen if previous else now,
        last_seen=now,
        flags=tuple(flags),
        internal_date=internal_date,
        complete=complete,
    )


def record_from_json(record_id: str, data: dict[str, Any]) -> QuarantineRecord:
    """The record kept as ``data`` (``asdict`` of one) under ``record_id``: fields it does not know
    are left out, and its own ``id`` field is never trusted (the id it is kept under is)."""
    known = {f.name: data[f.name] for f in fields(QuarantineRecord) if f.name in data}
    return QuarantineRecord(**{**known, "id": record_id, "flags": tuple(known.get("flags", ()))})


class Quarantine(Protocol):
    """Where quarantined messages are kept: files in the data directory (:class:`QuarantineStore`),
    or the database several processes share (``storage.postgres.quarantine``). Every method that
    takes an id raises :class:`InvalidRecordId` for one :meth:`record_id` cannot have made."""

    @staticmethod
    def record_id(mailbox: str, folder: str, uidvalidity: int, uid: int) -> str:
        return hashlib.sha256(f"{mailbox}\x00{folder}\x00{uidvalidity}\x00{uid}".encode()).hexdigest()[:16]

    def add(
        self, *, mailbox: str, folder: str, uidvalidity: int, uid: int, reason: str, raw: bytes, now: str,
        flags: list[str] | tuple[str, ...] = (), internal_date: str | None = None, complete: bool = True,
    ) -> QuarantineRecord:
        """Quarantine a message, or count one more attempt if it is there already."""
        ...

    def get(self, record_id: str) -> QuarantineRecord | None:
        """The record, or None when there is none."""
        ...

    def raw(self, record_id: str) -> bytes:
        """The message's kept bytes; :class:`FileNotFoundError` when the record is gone."""
        ...

    def touch(self, record: QuarantineRecord, reason: str, now: str) -> QuarantineRecord:
        """One more failed attempt (a retry that failed again)."""
        return self.add(
            mailbox=record.mailbox, folder=record.folder, uidvalidity=record.uidvalidity, uid=record.uid,
            reason=reason, raw=self.raw(record.id), now=now, flags=record.flags, internal_date=record.internal_date,
            complete=record.complete,
        )

    def drop(self, record_id: str) -> bool:
        """Delete a record and its bytes; False when there was none."""
        ...

    def list(self, mailbox: str | None = None) -> list[QuarantineRecord]:
        """Every record, or a mailbox's, in the order of their ids."""
        ...

    def remove_mailbox(self, mailbox: str) -> int:
        """Delete a mailbox's records; how many there were."""
        ...


class QuarantineStore(Quarantine):
    """``root/<id>.json`` (the record) beside ``root/<id>.eml`` (the raw bytes, private to the user).

    Every path is made by :meth:`_path` from a checked id and must resolve inside ``root``, so
    neither a crafted id nor a symbolic link planted in the directory reaches another file. A
    record's own ``id`` field is never used to name a file: the file's name is its id.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, record_id: str, suffix: str) -> Path:
        path = self.root / f"{validate_record_id(record_id)}{suffix}"
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise InvalidRecordId(record_id, "its file leads out of the quarantine directory")
        return path

    def add(
        self, *, mailbox: str, folder: str, uidvalidity: int, uid: int, reason: str, raw: bytes, now: str,
        flags: list[str] | tuple[str, ...] = (), internal_date: str | None = None, complete: bool = True,
    ) -> QuarantineRecord:
        record = new_record(
            self.get(self.record_id(mailbox, folder, uidvalidity, uid)), mailbox=mailbox, folder=folder,
            uidvalidity=uidvalidity, uid=uid, reason=reason, now=now, flags=flags, internal_date=internal_date,
            complete=complete,
        )
        atomic_write_bytes(self._path(record.id, ".eml"), raw)
        atomic_write_bytes(self._path(record.id, ".json"), json.dumps(asdict(record)).encode())
        return record

    def get(self, record_id: str) -> QuarantineRecord | None:
        """The record, or None when there is none; raises :class:`InvalidRecordId` for a bad id."""
        try:
            data: dict[str, Any] = json.loads(self._path(record_id, ".json").read_bytes())
        except FileNotFoundError:
            return None
        return record_from_json(record_id, data)

    def raw(self, record_id: str) -> bytes:
        return self._path(record_id, ".eml").read_bytes()

    def drop(self, record_id: str) -> bool:
        paths = [self._path(record_id, suffix) for suffix in (".json", ".eml")]
        existed = paths[0].exists()
        for path in paths:
            path.unlink(missing_ok=True)
        return existed

    def list(self, mailbox: str | None = None) -> list[QuarantineRecord]:
        """Every record, or a mailbox's; files not named like a record are no record."""
        names = sorted(p.stem for p in self.root.glob("*.json") if _RECORD_ID.fullmatch(p.stem))
        records = [self.get(name) for name in names]
        return [r for r in records if r is not None and (mailbox is None or r.mailbox == mailbox)]

    def remove_mailbox(self, mailbox: str) -> int:
        return sum(self.drop(record.id) for record in self.list(mailbox))
