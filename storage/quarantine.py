"""Messages that could not be turned into elements, kept with their raw bytes for a later retry."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes

__all__ = ["QuarantineRecord", "QuarantineStore"]


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
    """``root/<id>.json`` (the record) beside ``root/<id>.eml`` (the raw bytes, private to the user)."""

    def __init__(self, root: Path) -> None:
        self.root = root

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
        atomic_write_bytes(self.root / f"{record_id}.eml", raw)
        atomic_write_bytes(self.root / f"{record_id}.json", json.dumps(asdict(record)).encode())
        return record

    def get(self, record_id: str) -> QuarantineRecord | None:
        try:
            data: dict[str, Any] = json.loads((self.root / f"{record_id}.json").read_bytes())
        except FileNotFoundError:
            return None
        data["flags"] = tuple(data.get("flags", ()))
        return QuarantineRecord(**data)

    def raw(self, record_id: str) -> bytes:
        return (self.root / f"{record_id}.eml").read_bytes()

    def touch(self, record: QuarantineRecord, reason: str, now: str) -> QuarantineRecord:
        """One more failed attempt (a retry that failed again)."""
        return self.add(
            mailbox=record.mailbox, folder=record.folder, uidvalidity=record.uidvalidity, uid=record.uid,
            reason=reason, raw=self.raw(record.id), now=now, flags=record.flags, internal_date=record.internal_date,
            complete=record.complete,
        )

    def drop(self, record_id: str) -> bool:
        existed = (self.root / f"{record_id}.json").exists()
        for suffix in (".json", ".eml"):
            (self.root / f"{record_id}{suffix}").unlink(missing_ok=True)
        return existed

    def list(self, mailbox: str | None = None) -> list[QuarantineRecord]:
        records = [self.get(p.stem) for p in sorted(self.root.glob("*.json"))]
        return [r for r in records if r is not None and (mailbox is None or r.mailbox == mailbox)]

    def remove_mailbox(self, mailbox: str) -> int:
        return sum(self.drop(record.id) for record in self.list(mailbox))
