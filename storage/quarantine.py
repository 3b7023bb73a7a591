"""Messages that could not be turned into elements, kept with their raw bytes for a later retry."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes

__all__ = ["InvalidRecordId", "QuarantineRecord", "QuarantineStore", "validate_record_id"]

_RECORD_ID = re.compile(r"[0-9a-f]{16}")


class InvalidRecordId(ValueError):
    """Not a quarantine record id: refused before it can name a file."""

    def __init__(self, record_id: object, why: str = "16 hex digits, see `quarantine list`") -> None:
        super().__init__(f"{record_id!r} is not a quarantine record id ({why})")


def validate_record_id(record_id: object) -> str:
    """The one check of every id that reaches the store (CLI, admin console, retries): ids name
    files, so only what :meth:`QuarantineStore.record_id` makes is let through."""
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


class QuarantineStore:
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

    @staticmethod
    def record_id(mailbox: str, folder: str, uidvalidity: int, uid: int) -> str:
        return hashlib.sha256(f"{mailbox}\x00{folder}\x00{uidvalidity}\x00{uid}".encode()).hexdigest()[:16]

    def add(
        self, *, mailbox: str, folder: str, uidvalidity: int, uid: int, reason: str, raw: bytes, now: str,
        flags: list[str] | tuple[str, ...] = (), internal_date: str | None = None, complete: bool = True,
    ) -> QuarantineRecord:
        """Quarantine a message, or count one more attempt if it is there already."""
        record_id = self.record_id(mailbox, folder, uidvalidity, uid)
        previous = self.get(record_id)
        record = QuarantineRecord(
            id=record_id,
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
        atomic_write_bytes(self._path(record_id, ".eml"), raw)
        atomic_write_bytes(self._path(record_id, ".json"), json.dumps(asdict(record)).encode())
        return record

    def get(self, record_id: str) -> QuarantineRecord | None:
        """The record, or None when there is none; raises :class:`InvalidRecordId` for a bad id."""
        try:
            data: dict[str, Any] = json.loads(self._path(record_id, ".json").read_bytes())
        except FileNotFoundError:
            return None
        known = {f.name: data[f.name] for f in fields(QuarantineRecord) if f.name in data}
        return QuarantineRecord(**{**known, "id": record_id, "flags": tuple(known.get("flags", ()))})

    def raw(self, record_id: str) -> bytes:
        return self._path(record_id, ".eml").read_bytes()

    def touch(self, record: QuarantineRecord, reason: str, now: str) -> QuarantineRecord:
        """One more failed attempt (a retry that failed again)."""
        return self.add(
            mailbox=record.mailbox, folder=record.folder, uidvalidity=record.uidvalidity, uid=record.uid,
            reason=reason, raw=self.raw(record.id), now=now, flags=record.flags, internal_date=record.internal_date,
            complete=record.complete,
        )

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
