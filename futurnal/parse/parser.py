"""Turn the raw bytes of one e-mail into the content fields of an element.

This module is pure: standard library only, no IMAP, no actors, no I/O. Mail
in the wild is frequently broken (wrong charsets, 8-bit headers, missing
boundaries, truncated downloads), and one bad message must never stop a
folder sync, so :func:`parse_message` does not raise for any input bytes.
Everything wrong with a message is recorded as a short, stable string in
``ParsedMessage.defects`` instead, so problems stay visible and countable.

It finds the MIME structure of the bytes here, then composes the parts that
read it: :mod:`.headers` decodes the headers, :mod:`.mime_walk` collects the
body text and attachments.
"""

from __future__ import annotations

from dataclasses import dataclass
from email import policy as email_policy
from email.message import Message
from email.parser import BytesParser

from .body_runs import restore, shrink
from .clean_mime import LinearMessage, parse_clean
from .headers import (
    Address,
    addresses_of,
    date_of,
    in_reply_to_of,
    message_id_of,
    references_of,
    repair_header_block,
    subject_of,
    thread_id_for,
)
from .mime_walk import ParsedAttachment, walk_mime_tree

__all__ = ["ParsedMessage", "parse_message"]

# The MIME structure is parsed with compat32: the modern policy re-parses Content-Type through the
# header registry every time the feed parser asks for it, which made parsing 2-3x slower. Headers
# the element needs are decoded explicitly (.headers), with the modern classes where they help.
_PARSE_POLICY = email_policy.compat32
_BYTES_PARSER = BytesParser(LinearMessage, policy=_PARSE_POLICY)  # holds no state between messages


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """The content fields of an element, everything the message's bytes say."""

    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    thread_id: str
    subject: str | None
    from_: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    date: str | None
    date_raw: str | None
    text: str
    attachments: tuple[ParsedAttachment, ...]
    defects: tuple[str, ...]
    security: tuple[str, ...] = ()  # "signed" and/or "encrypted"


# --------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse one message's raw bytes into the content fields of an element.

    Never raises for bad input: unparseable parts yield empty fields and a
    defect string, because a sync must be able to store *something* for every
    message it fetched.

    Which parts are body text and which are attachments is said in
    :mod:`.mime_walk`.

    Args:
        raw: The message exactly as fetched (RFC822 / BODY[]).

    Returns:
        The parsed message; ``defects`` lists everything that was wrong.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    raw = bytes(raw)
    defects: set[str] = set()
    data, malformed = repair_header_block(raw)
    if malformed:
        defects.add("malformed-header")
    msg = _parse_bytes(data, defects)

    message_id = message_id_of(msg, defects)
    in_reply_to = in_reply_to_of(msg, defects)
    references = references_of(msg, defects)
    date, date_raw = date_of(msg, defects)
    content = walk_mime_tree(msg, defects)

    return ParsedMessage(
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        thread_id=thread_id_for(message_id, in_reply_to, references, raw),
        subject=subject_of(msg, defects),
        from_=addresses_of(msg, "from", defects),
        to=addresses_of(msg, "to", defects),
        cc=addresses_of(msg, "cc", defects),
        bcc=addresses_of(msg, "bcc", defects),
        reply_to=addresses_of(msg, "reply-to", defects),
        date=date,
        date_raw=date_raw,
        text=content.text,
        attachments=content.attachments,
        defects=tuple(sorted(defects)),
        security=content.security,
    )


# --------------------------------------------------------------------------
# Parsing the byte stream
# --------------------------------------------------------------------------


def _parse_bytes(data: bytes, defects: set[str]) -> Message:
    """Parse the MIME structure, degrading to headers-only, then to an empty message."""
    msg = parse_clean(data)
    if msg is not None:  # a well-formed message: its structure found by boundary search (clean_mime)
        return msg
    shrunk, runs = shrink(data)
    if runs:  # long base64 bodies stand aside while the structure is parsed (see body_runs)
        try:
            msg = _BYTES_PARSER.parsebytes(shrunk)
            if restore(msg, runs):
                return msg
        except Exception:
            pass  # whatever went wrong, the plain parse below decides what to record
    try:
        return _BYTES_PARSER.parsebytes(data)
    except Exception:  # RecursionError on absurd nesting, parser bugs on hostile input
        defects.add("parse-error")
    try:
        return _BYTES_PARSER.parsebytes(data, headersonly=True)
    except Exception:
        return LinearMessage(policy=_PARSE_POLICY)
