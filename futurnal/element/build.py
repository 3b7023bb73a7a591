"""From a fetched message to an element: the JSON document the store keeps per message."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from futurnal.attachments.plan import initial_status
from futurnal.imap.fetched import FetchedMessage
from futurnal.parse.headers import Address
from futurnal.parse.mime_walk import ParsedAttachment
from futurnal.parse.parser import ParsedMessage
from futurnal.storage.clock import utc_iso
from futurnal.storage.consent import SCOPES

__all__ = ["SCHEMA_VERSION", "build_element", "element_id", "gmail_thread_id", "stored_flags"]

#: Bumped whenever a field changes meaning or shape; documented in README.md.
SCHEMA_VERSION = 2  # 2: attachments gained `blob` and the statuses pending, timeout, too-large, failed


def element_id(mailbox: str, folder: str, uidvalidity: int, uid: int) -> str:
    """Stable id: the same message in the same folder incarnation always gets the same id."""
    key = f"{mailbox}\x00{folder}\x00{uidvalidity}\x00{uid}".encode()
    return hashlib.sha256(key).hexdigest()[:32]


def stored_flags(flags: tuple[str, ...] | list[str]) -> list[str]:
    """Flags as elements keep them: sorted, and without ``\\Recent``, which says which session saw
    the message first rather than anything about the message (and is gone from IMAP4rev2)."""
    return sorted(f for f in flags if f.lower() != "\\recent")


def gmail_thread_id(thrid: str) -> str:
    """Gmail's own thread id, in the same opaque form as header-derived thread ids."""
    return hashlib.sha256(f"gmail-thread\x00{thrid}".encode()).hexdigest()[:32]


def _attachment(attachment: ParsedAttachment, scopes: tuple[str, ...]) -> dict[str, Any]:
    """The stored form of an attachment before its extraction. Without consent to attachment
    content (or to content at all), only its metadata: status ``not-consented``, never extracted."""
    consented = "attachments" in scopes and "content" in scopes
    return {
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "sha256": attachment.sha256,
        "status": initial_status(attachment, consented),
        "text": None,
        "blob": None,
    }


def _iso(moment: datetime | None) -> str | None:
    return utc_iso(moment) if moment is not None else None


def _addresses(addresses: tuple[Address, ...]) -> list[dict[str, str | None]]:
    return [{"name": a.name, "address": a.address} for a in addresses]


ALL_SCOPES = SCOPES  # every scope: what a consent without limits covers


def build_element(
    parsed: ParsedMessage,
    fetched: FetchedMessage,
    *,
    mailbox: str,
    folder: str,
    uidvalidity: int,
    scopes: tuple[str, ...] = ALL_SCOPES,
) -> dict[str, Any]:
    """Combine what the server said about a message with what its bytes say.

    On Gmail, the thread comes from X-GM-THRID (Gmail's own threading) and the labels from
    X-GM-LABELS.
    """
    gmail = fetched.gmail
    thread_id = gmail_thread_id(gmail.thrid) if gmail is not None and gmail.thrid else parsed.thread_id
    return {
        "schema_version": SCHEMA_VERSION,
        "id": element_id(mailbox, folder, uidvalidity, fetched.uid),
        "mailbox": mailbox,
        "folder": folder,
        "uidvalidity": uidvalidity,
        "uid": fetched.uid,
        "message_id": parsed.message_id,
        "thread_id": thread_id,
        "in_reply_to": parsed.in_reply_to,
        "references": list(parsed.references),
        "subject": parsed.subject,
        "from": _addresses(parsed.from_),
        "to": _addresses(parsed.to),
        "cc": _addresses(parsed.cc),
        "bcc": _addresses(parsed.bcc),
        "reply_to": _addresses(parsed.reply_to),
        "date": parsed.date,
        "date_raw": parsed.date_raw,
        "internal_date": _iso(fetched.internal_date),
        "flags": stored_flags(fetched.flags),
        "labels": list(gmail.labels) if gmail is not None else [],
        "gmail_msgid": gmail.msgid if gmail is not None else None,
        "gmail_thrid": gmail.thrid if gmail is not None else None,
        "size": fetched.size,
        "text": parsed.text if "content" in scopes else "",
        "attachments": [_attachment(a, scopes) for a in parsed.attachments],
        "security": list(parsed.security),
        "defects": list(parsed.defects),
        "deleted": False,
    }
