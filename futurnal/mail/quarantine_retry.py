"""Turning a quarantined message into an element again, with today's parser."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from futurnal.storage.audit_log import AuditLog
from futurnal.storage.clock import utc_now
from futurnal.storage.consent import ConsentRegistry
from futurnal.storage.quarantine import QuarantineRecord, QuarantineStore

from .element import ALL_SCOPES, build_element
from .fetched import FetchedMessage
from .parser import parse_message

__all__ = ["RetryOutcome", "element_from_quarantine", "retry_quarantined"]


@dataclass(frozen=True, slots=True)
class RetryOutcome:
    """One quarantined message after a retry: stored as ``element_id``, or still out with ``error``."""

    record_id: str
    element_id: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.element_id is not None


def element_from_quarantine(
    record: QuarantineRecord, raw: bytes, scopes: tuple[str, ...] = ALL_SCOPES
) -> dict[str, Any]:
    """Parse the kept bytes and build the element the sync would have stored; raises if it still fails."""
    internal = datetime.fromisoformat(record.internal_date) if record.internal_date else None
    fetched = FetchedMessage(record.uid, raw, record.flags, internal, len(raw))
    return build_element(
        parse_message(raw), fetched, mailbox=record.mailbox, folder=record.folder, uidvalidity=record.uidvalidity,
        scopes=scopes,
    )


def retry_quarantined(
    records: list[QuarantineRecord],
    store: QuarantineStore,
    consent: ConsentRegistry,
    audit: AuditLog,
    write: Callable[[list[dict[str, Any]]], Any],
) -> list[RetryOutcome]:
    """Parse each record again; store what now parses with ``write`` (durably) and take it out of
    quarantine, audited. A message whose mailbox has no consent stays where it is."""
    outcomes = []
    for record in records:
        granted = consent.get(record.mailbox)
        if granted is None:
            outcomes.append(RetryOutcome(record.id, error=f"{record.mailbox} has no consent recorded; left in quarantine"))
            continue
        try:
            element = element_from_quarantine(record, store.raw(record.id), granted.scopes)
        except Exception as exc:
            store.touch(record, f"retry failed: {exc.__class__.__name__}: {exc}", utc_now())
            outcomes.append(RetryOutcome(record.id, error=f"still fails ({exc.__class__.__name__}: {exc})"))
            continue
        write([element])
        store.drop(record.id)
        audit.append("quarantine-retried", mailbox=record.mailbox, folder=record.folder, uid=record.uid)
        outcomes.append(RetryOutcome(record.id, element_id=element["id"]))
    return outcomes
