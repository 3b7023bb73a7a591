"""One message as the server sent it, and how a FETCH answer becomes one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from imapclient.imap_utf7 import decode as decode_utf7

__all__ = [
    "FETCH_ITEMS", "GMAIL_ITEMS", "HEADER_ITEMS", "FetchAnswer", "FetchedMessage", "GmailAttributes", "fetched_message",
]

FETCH_ITEMS = ["BODY.PEEK[]", "FLAGS", "INTERNALDATE", "RFC822.SIZE"]
#: For a message too large to download: what a quarantine record keeps of it.
HEADER_ITEMS = ["BODY.PEEK[HEADER]", "FLAGS", "INTERNALDATE", "RFC822.SIZE"]
#: Gmail's IMAP extensions (X-GM-EXT-1): its stable message and thread ids, and the labels.
GMAIL_ITEMS = ["X-GM-MSGID", "X-GM-THRID", "X-GM-LABELS"]


@dataclass(frozen=True, slots=True)
class GmailAttributes:
    """What Gmail says about a message beyond IMAP: one id across all folders, its thread, its labels."""

    msgid: str
    thrid: str | None
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FetchedMessage:
    """One message as the server sent it."""

    uid: int
    raw: bytes
    flags: tuple[str, ...]
    internal_date: datetime | None
    size: int
    gmail: GmailAttributes | None = None


@dataclass(frozen=True, slots=True)
class FetchAnswer:
    """What one UID FETCH of full messages brought back."""

    messages: list[FetchedMessage]
    #: Asked for and answered without a body, or not at all: expunged meanwhile, or a failing server.
    missing: list[int]
    #: UID -> size the server announced, for bodies over the size limit (drained, never kept).
    too_large: dict[int, int]


def _text(value: bytes | str | int) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _label(value: bytes | str | int) -> str:
    """Labels arrive as modified UTF-7 atoms or strings (``\\\\Important``, ``&AMk-t&AOk-``)."""
    if isinstance(value, bytes):
        try:
            return str(decode_utf7(value))
        except Exception:
            return value.decode("utf-8", "replace")
    return str(value)


def fetched_message(uid: int, data: dict[bytes, Any]) -> FetchedMessage | None:
    """Turn one message's FETCH answer into a :class:`FetchedMessage`; None without a body."""
    raw = data.get(b"BODY[]")
    if raw is None:
        return None
    internal = data.get(b"INTERNALDATE")
    if isinstance(internal, datetime) and internal.tzinfo is not None:
        internal = internal.astimezone(UTC)
    gmail = None
    if data.get(b"X-GM-MSGID") is not None:
        thrid = data.get(b"X-GM-THRID")
        gmail = GmailAttributes(
            msgid=_text(data[b"X-GM-MSGID"]),
            thrid=_text(thrid) if thrid is not None else None,
            labels=tuple(sorted(_label(label) for label in data.get(b"X-GM-LABELS", ()) or ())),
        )
    return FetchedMessage(
        uid=uid,
        raw=bytes(raw),
        flags=tuple(_text(f) for f in data.get(b"FLAGS", ())),
        internal_date=internal if isinstance(internal, datetime) else None,
        size=int(data.get(b"RFC822.SIZE", len(raw))),
        gmail=gmail,
    )
