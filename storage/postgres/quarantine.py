"""Quarantined messages in the database several processes share (table ``quarantine``), so a
process that takes a mailbox over sees what another one set aside, and ``quarantine list/show/
retry/drop`` on any host reach every record.

Each row holds a record (as the JSON of the file store) and the message's raw bytes, written
together in one transaction. Not fenced by the mailbox's lease: a record is additive and moves no
watermark, so a late one from a stale owner is one more message to look at, never one lost.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import asdict
from typing import Any, Protocol

import psycopg
from psycopg.types.json import Jsonb

from ..quarantine import Quarantine, QuarantineRecord, new_record, record_from_json, validate_record_id
from ..store_url import display_store

__all__ = ["PostgresQuarantine"]


class Transactions(Protocol):
    """What the quarantine uses of a :class:`~.control.SharedControl` (which imports this module)."""

    url: str

    def transaction(self) -> AbstractContextManager[psycopg.Connection[tuple[Any, ...]]]: ...


class PostgresQuarantine(Quarantine):
    """The :class:`~storage.quarantine.Quarantine` of a :class:`~.control.SharedControl`: one row
    per record in table ``quarantine``, its raw bytes in column ``raw``."""

    def __init__(self, control: Transactions) -> None:
        self._control = control

    @property
    def location(self) -> str:
        return f"table quarantine in {display_store(self._control.url)}"

    def add(
        self, *, mailbox: str, folder: str, uidvalidity: int, uid: int, reason: str, raw: bytes, now: str,
        flags: list[str] | tuple[str, ...] = (), internal_date: str | None = None, complete: bool = True,
    ) -> QuarantineRecord:
        record_id = validate_record_id(self.record_id(mailbox, folder, uidvalidity, uid))
        with self._control.transaction() as db:
            row = db.execute("SELECT record FROM quarantine WHERE id = %s FOR UPDATE", (record_id,)).fetchone()
            if row is None:
                # No row to lock: two first adds of one message take turns, the second counting one more.
                db.execute("SELECT pg_advisory_xact_lock(hashtext('quarantine/' || %s))", (record_id,))
                row = db.execute("SELECT record FROM quarantine WHERE id = %s FOR UPDATE", (record_id,)).fetchone()
            record = new_record(
                None if row is None else record_from_json(record_id, row[0]), mailbox=mailbox, folder=folder,
                uidvalidity=uidvalidity, uid=uid, reason=reason, now=now, flags=flags, internal_date=internal_date,
                complete=complete,
            )
            db.execute("INSERT INTO quarantine (id, mailbox, record, raw) VALUES (%s, %s, %s, %s)"
                       " ON CONFLICT (id) DO UPDATE SET mailbox = excluded.mailbox, record = excluded.record,"
                       " raw = excluded.raw", (record_id, mailbox, Jsonb(asdict(record)), raw))
        return record

    def get(self, record_id: str) -> QuarantineRecord | None:
        """The record, or None when there is none; raises :class:`InvalidRecordId` for a bad id."""
        record_id = validate_record_id(record_id)
        with self._control.transaction() as db:
            row = db.execute("SELECT record FROM quarantine WHERE id = %s", (record_id,)).fetchone()
        return None if row is None else record_from_json(record_id, row[0])

    def raw(self, record_id: str) -> bytes:
        record_id = validate_record_id(record_id)
        with self._control.transaction() as db:
            row = db.execute("SELECT raw FROM quarantine WHERE id = %s", (record_id,)).fetchone()
        if row is None:
            raise FileNotFoundError(f"no quarantined message {record_id!r} in {self.location}")
        return bytes(row[0])

    def drop(self, record_id: str) -> bool:
        record_id = validate_record_id(record_id)
        with self._control.transaction() as db:
            gone = db.execute("DELETE FROM quarantine WHERE id = %s RETURNING 1", (record_id,)).fetchone()
        return gone is not None

    def list(self, mailbox: str | None = None) -> list[QuarantineRecord]:
        """Every record, or a mailbox's, in the order of their ids."""
        with self._control.transaction() as db:
            if mailbox is None:
                rows = db.execute("SELECT id, record FROM quarantine ORDER BY id").fetchall()
            else:
                rows = db.execute("SELECT id, record FROM quarantine WHERE mailbox = %s ORDER BY id", (mailbox,)).fetchall()
        return [record_from_json(str(record_id), data) for record_id, data in rows]

    def remove_mailbox(self, mailbox: str) -> int:
        with self._control.transaction() as db:
            return len(db.execute("DELETE FROM quarantine WHERE mailbox = %s RETURNING id", (mailbox,)).fetchall())
