"""Turning a quarantined message into an element again, with today's parser."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from futurnal.attachments.plan import AttachmentWork, plan_attachments
from futurnal.attachments.settings import AttachmentSettings
from futurnal.element.build import ALL_SCOPES, build_element
from futurnal.imap.fetched import FetchedMessage
from futurnal.parse.parse_pool import DEFAULT_MEMORY_MB, ParseFailure, ParsePool
from futurnal.parse.parser import ParsedMessage, parse_message
from futurnal.storage.audit_log import AuditEvent, AuditTrail
from futurnal.storage.clock import utc_now
from futurnal.storage.consent import ConsentRegistry
from futurnal.storage.quarantine import InvalidRecordId, Quarantine, QuarantineRecord

__all__ = ["RetryOutcome", "drop_quarantined", "element_from_quarantine", "retry_quarantined"]


@dataclass(frozen=True, slots=True)
class RetryOutcome:
    """One quarantined message after a retry: stored as ``element_id``, or still out with ``error``."""

    record_id: str
    element_id: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.element_id is not None


class StillUnparsable(Exception):
    """The parser process gave up on the message again (it died, ran out of time or memory)."""


def element_from_quarantine(
    record: QuarantineRecord, raw: bytes, scopes: tuple[str, ...] = ALL_SCOPES,
    attachments: AttachmentSettings = AttachmentSettings(),
    parse: Callable[[bytes], ParsedMessage] = parse_message,
) -> tuple[dict[str, Any], AttachmentWork | None]:
    """Parse the kept bytes and build the element the sync would have stored, with the attachment
    work the sync would have handed to the processor; raises if it still fails."""
    internal = datetime.fromisoformat(record.internal_date) if record.internal_date else None
    fetched = FetchedMessage(record.uid, raw, record.flags, internal, len(raw))
    parsed = parse(raw)
    element = build_element(
        parsed, fetched, mailbox=record.mailbox, folder=record.folder, uidvalidity=record.uidvalidity,
        scopes=scopes,
    )
    return element, plan_attachments(element, parsed.attachments, attachments)


def retry_quarantined(
    records: list[QuarantineRecord],
    store: Quarantine,
    consent: ConsentRegistry,
    audit: AuditTrail,
    write: Callable[[list[dict[str, Any]]], Any],
    submit: Callable[[list[AttachmentWork]], Any],
    attachments: AttachmentSettings = AttachmentSettings(),
    parse_timeout: float = 60.0,
    parse_memory_mb: int = DEFAULT_MEMORY_MB,
) -> list[RetryOutcome]:
    """Parse each record again; store what now parses with ``write`` (durably), hand its attachment
    work to ``submit`` (as a sync would), and take it out of quarantine, audited. A message whose
    mailbox has no consent stays where it is.

    Parsing happens in a parser process, under the same time and memory caps as a sync: a
    quarantined message is the likeliest of all to be hostile.
    """
    pool = ParsePool(workers=1, timeout=parse_timeout, memory_mb=parse_memory_mb)
    try:
        return _retry_each(records, store, consent, audit, write, submit, attachments, _bounded(pool))
    finally:
        pool.close()


def _bounded(pool: ParsePool) -> Callable[[bytes], ParsedMessage]:
    def parse(raw: bytes) -> ParsedMessage:
        outcome = next(iter(pool.submit([raw]).outcomes()))
        if isinstance(outcome, ParseFailure):
            raise StillUnparsable(outcome.reason)
        return outcome

    return parse


def _retry_each(
    records: list[QuarantineRecord], store: Quarantine, consent: ConsentRegistry, audit: AuditTrail,
    write: Callable[[list[dict[str, Any]]], Any], submit: Callable[[list[AttachmentWork]], Any],
    attachments: AttachmentSettings, parse: Callable[[bytes], ParsedMessage],
) -> list[RetryOutcome]:
    outcomes = []
    for record in records:
        granted = consent.get(record.mailbox)
        if granted is None:
            outcomes.append(RetryOutcome(record.id, error=f"{record.mailbox} has no consent recorded; left in quarantine"))
            continue
        if not record.complete:
            outcomes.append(RetryOutcome(record.id, error=(
                f"only part of it ever arrived ({record.reason}); it cannot be rebuilt from what is kept"
            )))
            continue
        try:
            raw = store.raw(record.id)
        except (OSError, InvalidRecordId) as exc:  # gone meanwhile, or a link planted in the directory
            outcomes.append(RetryOutcome(record.id, error=f"its bytes cannot be read: {exc}"))
            continue
        try:
            element, work = element_from_quarantine(record, raw, granted.scopes, attachments, parse)
        except Exception as exc:
            store.touch(record, f"retry failed: {exc.__class__.__name__}: {exc}", utc_now())
            outcomes.append(RetryOutcome(record.id, error=f"still fails ({exc.__class__.__name__}: {exc})"))
            continue
        write([element])
        if work is not None:  # extracted by the processor: now in a running process, else at the next start
            submit([work])
        store.drop(record.id)
        audit.append(AuditEvent.QUARANTINE_RETRIED, mailbox=record.mailbox, folder=record.folder, uid=record.uid)
        outcomes.append(RetryOutcome(record.id, element_id=element["id"]))
    return outcomes


def drop_quarantined(record: QuarantineRecord, store: Quarantine, audit: AuditTrail) -> None:
    """Delete a quarantined message and its bytes for good, audited."""
    store.drop(record.id)
    audit.append(AuditEvent.QUARANTINE_DROPPED, mailbox=record.mailbox, folder=record.folder, uid=record.uid)
