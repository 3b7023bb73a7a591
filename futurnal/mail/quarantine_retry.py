"""Turning a quarantined message into an element again, with today's parser."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from futurnal.attachments.plan import AttachmentWork, plan_attachments
from futurnal.attachments.settings import AttachmentSettings
from futurnal.storage.quarantine import QuarantineRecord

from .element import ALL_SCOPES, build_element
from .fetched import FetchedMessage
from .parser import parse_message

__all__ = ["element_from_quarantine"]


def element_from_quarantine(
    record: QuarantineRecord, raw: bytes, scopes: tuple[str, ...] = ALL_SCOPES,
    attachments: AttachmentSettings = AttachmentSettings(),
) -> tuple[dict[str, Any], AttachmentWork | None]:
    """Parse the kept bytes and build the element the sync would have stored, with the attachment
    work the sync would have handed to the processor; raises if it still fails."""
    internal = datetime.fromisoformat(record.internal_date) if record.internal_date else None
    fetched = FetchedMessage(record.uid, raw, record.flags, internal, len(raw))
    parsed = parse_message(raw)
    element = build_element(
        parsed, fetched, mailbox=record.mailbox, folder=record.folder, uidvalidity=record.uidvalidity,
        scopes=scopes,
    )
    return element, plan_attachments(element, parsed.attachments, attachments)
