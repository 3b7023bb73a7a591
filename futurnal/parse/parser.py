"""Turn the raw bytes of one e-mail into the content fields of an element.

This module is pure: standard library only, no IMAP, no actors, no I/O. Mail
in the wild is frequently broken (wrong charsets, 8-bit headers, missing
boundaries, truncated downloads), and one bad message must never stop a
folder sync, so :func:`parse_message` does not raise for any input bytes.
Everything wrong with a message is recorded as a short, stable string in
``ParsedMessage.defects`` instead, so problems stay visible and countable.

Header values are decoded by this module first (8-bit bytes read as UTF-8 per
RFC 6532, else Latin-1) and then handed to the modern ``email.policy.default``
header classes, which understand RFC 2047 and RFC 2231. When those classes
choke, the code falls back to ``email.header.decode_header`` / ``compat32``
and records ``header-decode:<name>``. Every call into the stdlib header
machinery goes through :func:`_guarded`, because it recurses once per nested
comment, quote or group and raises on shapes nobody foresaw: a header it
cannot read becomes a defect, never an exception.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy as email_policy
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.utils import collapse_rfc2231_value, getaddresses, parsedate_to_datetime
from typing import Any, TypeVar

from .body_runs import restore, shrink
from .clean_mime import LinearMessage, parse_clean
from .html_text import html_to_text
from .simple_headers import simple_addresses, simple_params

__all__ = [
    "FORWARD_MARKER",
    "Address",
    "ParsedAttachment",
    "ParsedMessage",
    "html_to_text",
    "parse_message",
    "sanitise_filename",
    "thread_id_for",
]

#: Line that introduces the text of a forwarded (message/rfc822) message.
FORWARD_MARKER = "---------- Forwarded message ----------"

_POLICY = email_policy.default
# The MIME structure is parsed with compat32: the modern policy re-parses Content-Type through the
# header registry every time the feed parser asks for it, which made parsing 2-3x slower. Headers
# the element needs are decoded explicitly below, with the modern classes where they help.
_PARSE_POLICY = email_policy.compat32
_BYTES_PARSER = BytesParser(LinearMessage, policy=_PARSE_POLICY)  # holds no state between messages
_MAX_DEPTH = 40  # deeper MIME nesting is an attack or a bug, not a real message
_MAX_FILENAME = 200
_MAX_STRUCTURED = 8192  # longer header values skip the (quadratic) modern header parser
_MAX_HEADER_TEXT = 65536  # characters of one header value read; the longest real ones are To lists
_MAX_REPEATS = 64  # occurrences of one address header read; a message has one From, one To...
_MIN_YEAR = 1900  # RFC 5322 3.3: "the year is any numeric year 1900 or later"
_BODY_TYPES = ("text/plain", "text/html")
_PKCS7_MIME = ("application/pkcs7-mime", "application/x-pkcs7-mime")
_ALWAYS_ATTACH = ("text/calendar",)  # invitations ride inside multipart/alternative but are content

_SURROGATES = re.compile("[\ud800-\udfff]")
_ESCAPED_BYTES = "".join(map(chr, range(0xDC80, 0xDD00)))  # 8-bit bytes as surrogateescape keeps them
_LINE_CONTROLS = re.compile("[\x00-\x1f\x7f]")
_TEXT_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_TEXT_CONTROL_BYTES = bytes(range(0x00, 0x09)) + bytes(range(0x0B, 0x20)) + b"\x7f"
_ENCODED_WORD_CHARSET = re.compile(r"=\?([^?*\s]+)(?:\*[^?]*)?\?[bBqQ]\?")
_RFC2231_CHARSET = re.compile(r"\*\s*=\s*\"?([A-Za-z0-9_.:+-]+)'")
_MSG_ID = re.compile(r"<([^<>]*)>")
_HEADER_LINE = re.compile(rb"(From |[\x21-\x39\x3b-\x7e]*:|[\t ])")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
#: A line break (as ``bytes.splitlines`` cuts lines) before a line ``_HEADER_LINE`` does not match.
_NOT_HEADER_LINE = re.compile(rb"(?:\n|\r(?!\n))(?=[\s\S])(?!From |[\x21-\x39\x3b-\x7e]*:|[\t ])")
_ISO_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:[Zz]|[+-]\d{2}:?\d{2})?)?"
)

_T = TypeVar("_T")
_INDEX_ATTRIBUTE = "_futurnal_header_index"  # where a part keeps its header index (_header_index)

#: MIME charset names Python does not know, or knows a narrower version of.
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "iso-8859-8-i": "iso-8859-8",
    "unicode-1-1-utf-7": "utf-7",
    "x-unknown": "",
}


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox from an address header; group members are flattened into the list."""

    name: str | None
    address: str | None  # the domain part is lower-cased, the local part kept as is


@dataclass(frozen=True, slots=True)
class ParsedAttachment:
    """One attached file, identified by content hash so duplicates are recognisable.

    Its text is not extracted here: that is the attachment processor's job, in a child process
    under time and memory limits (``futurnal.attachments``). ``data`` is the transfer-decoded
    content it needs, ``charset`` the declared one (for text types).
    """

    filename: str | None
    content_type: str
    size: int
    sha256: str
    charset: str | None = None
    data: bytes = field(default=b"", repr=False, compare=False)


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
# Public entry points
# --------------------------------------------------------------------------


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse one message's raw bytes into the content fields of an element.

    Never raises for bad input: unparseable parts yield empty fields and a
    defect string, because a sync must be able to store *something* for every
    message it fetched.

    Body text is the inline text/plain and text/html leaves in document order
    (HTML reduced to text); inside multipart/alternative only the best
    rendering counts, text/plain preferred. Forwarded messages follow under
    :data:`FORWARD_MARKER`. A leaf is an attachment when its disposition says
    so, when it has a file name (except a message that is a single named text
    part), or when it is not text/plain or text/html and not an alternative
    rendering inside multipart/alternative.

    Args:
        raw: The message exactly as fetched (RFC822 / BODY[]).

    Returns:
        The parsed message; ``defects`` lists everything that was wrong.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    raw = bytes(raw)
    defects: set[str] = set()
    data, malformed = _repair_header_block(raw)
    if malformed:
        defects.add("malformed-header")
    msg = _parse_bytes(data, defects)

    message_id = _message_id(msg, defects)
    in_reply_to = next(iter(_msg_ids(_header_line(msg, "in-reply-to", defects) or "")), None)
    references = tuple(dict.fromkeys(_msg_ids(_header_line(msg, "references", defects) or "")))
    date, date_raw = _date(msg, defects)

    acc = _Acc(defects)
    try:
        _walk(msg, acc, body=True, in_alt=False, depth=0, root=True)
    except RecursionError:
        defects.add("nesting-too-deep")
    except Exception:  # a stdlib surprise in one part: what was collected so far is kept
        defects.add("parse-error")

    return ParsedMessage(
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        thread_id=thread_id_for(message_id, in_reply_to, references, raw),
        subject=_subject(msg, defects),
        from_=_addresses(msg, "from", defects),
        to=_addresses(msg, "to", defects),
        cc=_addresses(msg, "cc", defects),
        bcc=_addresses(msg, "bcc", defects),
        reply_to=_addresses(msg, "reply-to", defects),
        date=date,
        date_raw=date_raw,
        text=_compose(acc),
        attachments=tuple(acc.attachments),
        defects=tuple(sorted(defects)),
        security=tuple(sorted(acc.security)),
    )


def thread_id_for(
    message_id: str | None, in_reply_to: str | None, references: Sequence[str], raw: bytes
) -> str:
    """Stable opaque id of the conversation a message belongs to.

    The id is derived from the thread *root* (first References entry, else
    In-Reply-To, else the message's own Message-ID), which every message of a
    properly threaded conversation agrees on, so the result does not depend
    on the order messages are parsed in. Messages without any id get a hash
    of their From/Date/Subject headers so re-fetching the same bytes gives
    the same id.

    Args:
        message_id: The message's own Message-ID, brackets optional.
        in_reply_to: First In-Reply-To msg-id, brackets optional.
        references: References msg-ids, oldest first.
        raw: The raw message, used only when no id is available.

    Returns:
        32 lower-case hex characters.
    """
    root = next((bare for bare in map(_bare_id, references) if bare), "")
    root = root or _bare_id(in_reply_to) or _bare_id(message_id)
    if root:
        key = "msgid:" + root
    else:
        fingerprint = _header_fingerprint(bytes(raw))
        key = "headers:" + fingerprint if fingerprint else "raw:" + hashlib.sha256(raw).hexdigest()
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def sanitise_filename(name: str) -> str | None:
    """Make an attachment file name safe to show and to write to disk.

    Mail is untrusted input; a name like ``../../etc/passwd`` or one with a
    right-to-left override must not reach a file system or a UI unchanged.
    Path components are joined with ``_`` (``..`` and empty ones dropped),
    control and format characters removed, and the length capped at 200
    characters keeping the extension.

    Args:
        name: The decoded file name from the message.

    Returns:
        The sanitised name, or ``None`` if nothing usable remains.
    """
    if not name:
        return None
    text = unicodedata.normalize("NFC", _fix_surrogates(str(name)))
    text = re.sub(r"[\t\r\n\f\v]+", " ", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))
    parts = [p.strip() for p in re.split(r"[/\\]", text)]
    text = "_".join(p for p in parts if p not in ("", ".", ".."))
    text = re.sub(r"\.{2,}", ".", re.sub(r'[<>:"|?*]', "_", text))
    text = re.sub(r"\s+", " ", text).strip().lstrip(".").rstrip(". ").strip()
    if len(text) > _MAX_FILENAME:
        stem, dot, ext = text.rpartition(".")
        if dot and stem and 0 < len(ext) <= 16:
            text = stem[: _MAX_FILENAME - len(ext) - 1].rstrip() + "." + ext
        else:
            text = text[:_MAX_FILENAME].rstrip()
    return text or None


# --------------------------------------------------------------------------
# Parsing the byte stream
# --------------------------------------------------------------------------


def _repair_header_block(raw: bytes) -> tuple[bytes, bool]:
    """Drop header-block lines without a colon when real headers follow them.

    The stdlib parser ends the header block at the first such line and
    treats the remaining headers as body text, losing From/To/Date. Returns
    the (possibly repaired) bytes and whether a malformed line was seen.
    """
    if raw.startswith((b"\n", b"\r\n")):
        return raw, False
    end = _HEADER_END.search(raw)
    cut = len(raw) if end is None else end.start() + (2 if raw[end.start()] == 0x0D else 1)
    if (not raw or _HEADER_LINE.match(raw)) and _NOT_HEADER_LINE.search(raw, 0, cut) is None:
        return raw, False  # the usual, clean block, found so in one pass in C
    lines = raw[:cut].splitlines(keepends=True)
    bad: set[int] = set()
    for index, line in enumerate(lines):
        continuation = line[:1] in (b" ", b"\t")
        if not _HEADER_LINE.match(line) or (continuation and index - 1 in bad):
            bad.add(index)
    if not bad:
        return raw, False
    first_bad = min(bad)
    good = [i for i, line in enumerate(lines) if i not in bad and line[:1] not in (b" ", b"\t")]
    if any(i > first_bad for i in good) and len(good) > len(bad):
        kept = b"".join(line for i, line in enumerate(lines) if i not in bad)
        return kept + raw[cut:], True
    return raw, True


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


# --------------------------------------------------------------------------
# Text and charset helpers
# --------------------------------------------------------------------------


def _fix_surrogates(text: str) -> str:
    """Turn surrogate escapes (undecodable bytes) into real text or U+FFFD; JSON needs valid Unicode."""
    if not _SURROGATES.search(text):
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", text)


def _one_line(text: str | None) -> str:
    """Single-line field: valid Unicode, no control characters, whitespace collapsed."""
    if not text:
        return ""
    return " ".join(_LINE_CONTROLS.sub(" ", _fix_surrogates(text)).split())


def _clean_text(text: str) -> str:
    """Multi-line text: newlines normalised to ``\\n``, other control characters dropped."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (undecodable bytes): the general, slower way
        text = _fix_surrogates(text).replace("\r\n", "\n").replace("\r", "\n")
        return _TEXT_CONTROLS.sub("", text)
    # The same edits on UTF-8 bytes, several times faster than a regex over the text: ASCII control
    # characters are single bytes in UTF-8, never part of another character's encoding.
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").translate(None, _TEXT_CONTROL_BYTES)
    return data.decode("utf-8")


def _token(value: str) -> str:
    """Short, safe rendering of an untrusted value for use inside a defect string."""
    return re.sub(r"[^a-z0-9_.:+-]", "?", _fix_surrogates(value).strip().lower())[:40]


def _codec(charset: str | None, defects: set[str]) -> str | None:
    """Python codec for a MIME charset, or None (recording a defect) when unusable."""
    if not charset:
        return None
    name = charset.strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
        usable = getattr(info, "_is_text_encoding", True)  # False for base64, rot13, zlib...
    except Exception:  # LookupError, or ValueError/TypeError for names with NULs
        usable = False
    if not usable:
        defects.add(f"unknown-charset:{_token(charset)}")
        return None
    return name


def _decode_bytes(data: bytes, charset: str | None, defects: set[str]) -> str:
    """Decode with the declared charset; fall back to UTF-8 (strict, then with replacement)."""
    codec = _codec(charset, defects)
    if codec:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            defects.add(f"charset-mismatch:{_token(charset or '')}")
        except Exception:
            defects.add(f"unknown-charset:{_token(charset or '')}")
            codec = None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if codec:  # mislabelled but mostly right: keep what the declared charset can read
        try:
            return data.decode(codec, errors="replace")
        except Exception:
            pass
    return data.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------


def _guarded(defects: set[str], defect: str | None, call: Callable[..., _T], *args: object) -> _T | None:
    """``call(*args)``, or None (recording ``defect``) when it raises.

    The one way this module calls the stdlib's header machinery on untrusted values. Its parsers
    recurse once per nested comment, quoted string or group, so a few hundred ``(`` in a To header
    raise RecursionError, and hostile shapes raise IndexError, ValueError and the like. A header it
    cannot read must cost that header, not the message: the caller falls back or leaves it empty.
    """
    try:
        return call(*args)
    except Exception:  # RecursionError included: the stack is unwound to here, so it is safe to go on
        if defect is not None:
            defects.add(defect)
        return None


def _raw_values(msg: Message, name: str) -> list[str]:
    """All raw (undecoded, folded) values of header *name*, without invoking header parsing."""
    return list(_header_index(msg).get(name, ()))


def _header_index(msg: Message) -> dict[str, list[str]]:
    """Raw header values by lower-case name, made once per part and kept on it.

    A dozen headers are looked up per message; scanning the header list each time costs seconds
    on a hostile message with a million header lines, one pass does not.
    """
    index: dict[str, list[str]] | None = msg.__dict__.get(_INDEX_ATTRIBUTE)
    if index is None:
        index = {}
        try:
            for key, value in msg.raw_items():
                index.setdefault(str(key).lower(), []).append(str(value))
        except Exception:
            pass  # a header list that cannot be read has no usable headers
        msg.__dict__[_INDEX_ATTRIBUTE] = index
    return index


def _header_text(value: str, name: str, defects: set[str]) -> str:
    """Raw value to Unicode: 8-bit bytes as UTF-8 (RFC 6532) else Latin-1; unfolded.

    A value longer than :data:`_MAX_HEADER_TEXT` is cut there (``header-too-long``): decoding is
    linear at best, and megabytes of ``@`` in a To header are a minute of address parsing.
    """
    if len(value) > _MAX_HEADER_TEXT:
        defects.add(f"header-too-long:{name}")
        value = value[:_MAX_HEADER_TEXT].rstrip(_ESCAPED_BYTES)  # no 8-bit character cut in two
    if _SURROGATES.search(value):
        try:
            data = value.encode("utf-8", "surrogateescape")
            try:
                value = data.decode("utf-8")
            except UnicodeDecodeError:
                defects.add(f"8bit-header:{name}")
                value = data.decode("latin-1")
        except UnicodeEncodeError:
            value = _fix_surrogates(value)
    for match in _ENCODED_WORD_CHARSET.finditer(value):
        _codec(match.group(1), defects)
    return re.sub(r"\r\n|\r|\n", "", value)


def _structured(name: str, value: str, defects: set[str]) -> object | None:
    """Parse a decoded value with the modern header classes; None when they raise.

    Very long values also get None: the modern parser is quadratic in length
    (a 100 kB To list takes seconds), and the compat fallbacks are linear.
    """
    if len(value) > _MAX_STRUCTURED:
        return None
    header = _guarded(defects, f"header-decode:{name}", _POLICY.header_factory, name, value)
    if header is not None:
        defects.update(type(defect).__name__ for defect in getattr(header, "defects", ()))
    return header


def _decode_words(value: str, name: str, defects: set[str]) -> str:
    """Compat32-style RFC 2047 decoding with per-word charset fallbacks."""
    chunks = _guarded(defects, f"header-decode:{name}", decode_header, value)
    if chunks is None:
        return value
    out: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
        elif charset is None:  # decode_header hands back unencoded text this way
            out.append(chunk.decode("raw-unicode-escape", errors="replace"))
        else:
            out.append(_decode_bytes(chunk, charset, defects))
    return "".join(out)


def _header_line(msg: Message, name: str, defects: set[str]) -> str | None:
    """First value of *name* decoded to one line of text (RFC 2047 applied); None if absent."""
    values = _raw_values(msg, name)
    if not values:
        return None
    text = _header_text(values[0], name, defects)
    header = _structured(name, text, defects) if "=?" in text else None
    decoded = _guarded(defects, f"header-decode:{name}", str, header) if header is not None else None
    if decoded is not None:
        return _one_line(decoded)
    return _one_line(_decode_words(text, name, defects) if "=?" in text else text)


def _subject(msg: Message, defects: set[str]) -> str | None:
    return _header_line(msg, "subject", defects)


def _msg_ids(value: str) -> list[str]:
    """Msg-ids from a header value, without brackets.

    Falls back to bare ``x@y`` tokens only when the whole value is such a
    list, so prose like "your message of ... from bob@example.com" does not
    produce a bogus id (and a bogus thread root).
    """
    ids = ["".join(found.split()) for found in _MSG_ID.findall(value)]
    ids = [i for i in ids if i]
    if not ids:
        tokens = [t.strip("<>") for t in re.split(r"[\s,]+", value) if t.strip("<>")]
        ids = tokens if all("@" in t for t in tokens) else []
    return ids


def _message_id(msg: Message, defects: set[str]) -> str | None:
    value = _header_line(msg, "message-id", defects) or ""
    ids = _msg_ids(value) or [t.strip("<>") for t in value.split()]
    found = next((i for i in ids if i), "")
    if not found:
        defects.add("missing-message-id")
    return found or None


def _bare_id(value: str | None) -> str:
    return "".join((value or "").split()).strip("<>") if value else ""


def _make_address(display: str | None, local: str | None, domain: str | None) -> Address | None:
    name = _one_line(display) or None
    local, domain = _one_line(local), _one_line(domain).lower()
    address = f"{local}@{domain}" if domain else (local or None)
    return Address(name, address) if (name or address) else None


def _addresses(msg: Message, name: str, defects: set[str]) -> tuple[Address, ...]:
    """Every mailbox in every *name* header; group members are flattened into the list.

    Past :data:`_MAX_REPEATS` occurrences of the header the rest is left out (``repeated-header``):
    each costs a parse, and megabytes of ``From:`` lines would take minutes.
    """
    values = _raw_values(msg, name)
    if len(values) > _MAX_REPEATS:
        defects.add(f"repeated-header:{name}")
        del values[_MAX_REPEATS:]
    found: list[Address | None] = []
    for raw in values:
        found.extend(_one_address_header(_header_text(raw, name, defects), name, defects))
    return tuple(a for a in found if a is not None)


def _one_address_header(text: str, name: str, defects: set[str]) -> list[Address | None]:
    """The mailboxes of one address header value: the fast path, the registry, then compat32's
    ``getaddresses``; none of them when all three fail (the header is a defect, not an error)."""
    simple = simple_addresses(text) if len(text) <= _MAX_STRUCTURED else None
    if simple is not None:
        return [_make_address(display, local, domain) for display, local, domain in simple]
    header = _structured(name, text, defects)
    if header is not None:
        parsed = _guarded(defects, f"header-decode:{name}", _registry_addresses, header)
        if parsed is not None:
            return parsed
    pairs = _guarded(defects, f"header-decode:{name}", getaddresses, [text])
    found: list[Address | None] = []
    for display, spec in pairs or ():
        local, at, domain = spec.rpartition("@")
        display = _decode_words(display, name, defects)
        found.append(_make_address(display, local, domain) if at else _make_address(display, spec, None))
    return found


def _registry_addresses(header: Any) -> list[Address | None]:
    """The mailboxes of a header-registry address header, group members flattened."""
    found = []
    for group in header.groups:
        for addr in group.addresses:
            local = addr.addr_spec.rpartition("@")[0] if addr.domain else addr.username
            found.append(_make_address(addr.display_name, local, addr.domain))
    return found


def _date(msg: Message, defects: set[str]) -> tuple[str | None, str | None]:
    """(UTC ISO 8601 date, raw Date value); a missing or unparseable date is a defect."""
    values = _raw_values(msg, "date")
    if not values:
        defects.add("missing-date")
        return None, None
    raw = _one_line(_header_text(values[0], "date", defects))
    moment = _to_utc(raw, defects)
    if moment is None:
        defects.add("bad-date")
        return None, raw or None
    iso = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
    return iso + f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}Z", raw


def _to_utc(value: str, defects: set[str]) -> datetime | None:
    """RFC 5322 date (or, leniently, ISO 8601) as an aware UTC datetime; None if unusable.

    Both readers are lenient beyond what a date can mean (``datetime.fromisoformat`` reads five
    thousand ``1`` as 1111-11-11T11:11:11, ``parsedate`` reads the year ``1`` as 2001), so a
    result counts only when the value has the shape of a date and names the year it gave.
    """
    if _ISO_DATE.fullmatch(value):
        moment = _guarded(defects, None, datetime.fromisoformat, value.upper().replace("Z", "+00:00"))
    else:
        moment = _guarded(defects, None, parsedate_to_datetime, value)
    if moment is None or not _names_year(value, moment.year):
        return None
    if moment.tzinfo is None:  # "-0000": time zone unknown, read as UTC
        moment = moment.replace(tzinfo=UTC)
    return _guarded(defects, None, moment.astimezone, UTC)  # OverflowError near datetime's limits


def _names_year(value: str, year: int) -> bool:
    """Whether ``value`` writes ``year`` (1900 or later): with four digits, or with the two that
    ``parsedate`` reads as 1969-2068 (RFC 5322's obsolete form). Else a parser made it up."""
    if year < _MIN_YEAR:
        return False
    numbers = set(re.findall(r"\d+", value))
    return f"{year:04d}" in numbers or (1969 <= year <= 2068 and f"{year % 100:02d}" in numbers)


def _header_fingerprint(raw: bytes) -> str:
    """Normalised From/Date/Subject of the raw header block; '' when none is present."""
    end = _HEADER_END.search(raw)
    text = raw[: end.start() if end else len(raw)].decode("latin-1")
    text = re.sub(r"\r?\n[ \t]", " ", text)
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key in ("from", "date", "subject") and key not in found:
            found[key] = " ".join(value.split())
            if len(found) == 3:
                break
    if not found:
        return ""
    return "\n".join(f"{key}:{found.get(key, '')}" for key in ("from", "date", "subject"))


# --------------------------------------------------------------------------
# MIME structure
# --------------------------------------------------------------------------


@dataclass(slots=True)
class _Acc:
    """What a walk over (part of) the MIME tree collected."""

    defects: set[str]
    segments: list[tuple[str, str | _Html]] = field(default_factory=list)  # (plain|html, text)
    forwarded: list[str] = field(default_factory=list)
    attachments: list[ParsedAttachment] = field(default_factory=list)
    security: set[str] = field(default_factory=set)

    def has_plain(self) -> bool:
        return any(kind == "plain" and _has_text(str(text)) for kind, text in self.segments)

    def rank(self) -> int:
        """0: has plain text, 1: has only HTML text, 2: no text (multipart/alternative choice)."""
        if self.has_plain():
            return 0
        return 1 if any(_has_text(str(text)) for _, text in self.segments) else 2


def _has_text(text: str) -> bool:
    """``bool(text.strip())`` without copying the text."""
    return bool(text) and not text.isspace()


class _Html:
    """An HTML body part, reduced to text only when asked: inside multipart/alternative the
    text/plain rendering usually wins, and then the (costly) reduction is never needed."""

    __slots__ = ("_source", "_text")

    def __init__(self, source: str) -> None:
        self._source = source
        self._text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            self._text = html_to_text(self._source)
        return self._text


@dataclass(frozen=True, slots=True)
class _PartInfo:
    content_type: str
    params: dict[str, str]
    disposition: str | None
    filename: str | None


def _param_header(part: Message, name: str, defects: set[str]) -> tuple[str | None, dict[str, str]]:
    """(lower-case value, parameters) of Content-Type or Content-Disposition."""
    values = _raw_values(part, name)
    if not values:
        return None, {}
    text = _header_text(values[0], name, defects)
    for match in _RFC2231_CHARSET.finditer(text):
        _codec(match.group(1), defects)
    simple = simple_params(name, text) if len(text) <= _MAX_STRUCTURED else None
    if simple is not None:
        return simple
    header = _structured(name, text, defects)
    found = _guarded(defects, f"header-decode:{name}", _registry_params, header, name) \
        if header is not None else None
    if found is None:  # compat32 parameter parsing copes with different breakage
        found = _guarded(defects, f"header-decode:{name}", _compat_params, text, name)
    return found if found is not None else (None, {})


def _registry_params(header: Any, name: str) -> tuple[str | None, dict[str, str]]:
    """(value, parameters) of a header-registry Content-Type or Content-Disposition header."""
    kind = getattr(header, "content_type" if name == "content-type" else "content_disposition")
    return kind, {str(k).lower(): _fix_surrogates(str(v)) for k, v in header.params.items()}


def _compat_params(text: str, name: str) -> tuple[str | None, dict[str, str]]:
    """(value, parameters) of a Content-Type or Content-Disposition value, read by compat32."""
    compat = LinearMessage()
    compat[name] = text
    params = compat.get_params(header=name) or []
    found = {str(k).lower(): _fix_surrogates(collapse_rfc2231_value(v)) for k, v in params[1:]}
    return (str(params[0][0]).lower() if params else None), found


def _part_info(part: Message, defects: set[str]) -> _PartInfo:
    ctype, params = _param_header(part, "content-type", defects)
    disposition, dparams = _param_header(part, "content-disposition", defects)
    if not ctype or "/" not in ctype:
        ctype = "text/plain" if ctype else part.get_default_type()
    name = dparams.get("filename") or params.get("name")
    if name and "=?" in name:
        name = _decode_words(name, "content-disposition", defects)
    return _PartInfo(ctype, params, disposition, sanitise_filename(name) if name else None)


def _payload_bytes(part: Message, defects: set[str]) -> bytes:
    """Transfer-decoded payload; for containers, the serialised sub-messages."""
    try:
        if part.is_multipart():
            return b"".join(_message_bytes(p) for p in part.get_payload() if isinstance(p, Message))
        data = part.get_payload(decode=True)
        return data if isinstance(data, bytes) else b""
    except Exception as exc:
        defects.add(f"payload-decode:{type(exc).__name__}")
    try:
        payload = part.get_payload()
        return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    except Exception:
        return b""


def _message_bytes(msg: Message) -> bytes:
    try:
        return msg.as_bytes()
    except Exception:
        try:
            return msg.as_string().encode("utf-8", "surrogateescape")
        except Exception:
            return b""


def _unflow(text: str, delsp: bool) -> str:
    """Undo RFC 3676 format=flowed soft line breaks so paragraphs are single lines."""
    out: list[str] = []
    pending = ""
    for line in text.split("\n"):
        if line.startswith(" "):  # space-stuffing
            line = line[1:]
        if line.endswith(" ") and line != "-- ":
            pending += line[:-1] if delsp else line
        else:
            out.append(pending + line)
            pending = ""
    if pending:
        out.append(pending)
    return "\n".join(out)


def _text_of(data: bytes, info: _PartInfo, defects: set[str]) -> str:
    """Readable text of a text/* payload: decoded, HTML reduced, flowed text unwrapped."""
    return str(_lazy_text_of(data, info, defects))


def _lazy_text_of(data: bytes, info: _PartInfo, defects: set[str]) -> str | _Html:
    """:func:`_text_of`, with the HTML reduction left until the text is used."""
    text = _clean_text(_decode_bytes(data, info.params.get("charset"), defects))
    if info.content_type == "text/html":
        return _Html(text)
    if info.params.get("format", "").lower() == "flowed":
        text = _unflow(text, info.params.get("delsp", "").lower() == "yes")
    return text


def _attachment(part: Message, info: _PartInfo, defects: set[str]) -> ParsedAttachment:
    data = _payload_bytes(part, defects)
    charset = info.params.get("charset")
    return ParsedAttachment(
        filename=info.filename,
        content_type=info.content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        charset=_one_line(charset)[:40] or None if charset else None,
        data=data,
    )


def _collect_defects(part: Message, defects: set[str]) -> None:
    for defect in getattr(part, "defects", ()):
        name = type(defect).__name__
        defects.add(name)
        if name == "NoBoundaryInMultipartDefect":
            defects.add("missing-boundary")


def _walk(
    part: Message,
    acc: _Acc,
    *,
    body: bool,
    in_alt: bool,
    depth: int,
    root: bool = False,
    attach: bool = False,
) -> None:
    """Collect body text segments, attachments and security markers of *part*.

    Args:
        part: The MIME part to visit.
        acc: Where results go.
        body: Whether text/plain and text/html leaves here count as body text.
        in_alt: Inside multipart/alternative, where unnamed non-text leaves are
            alternative renderings (inline images), not attachments.
        depth: Nesting depth, to stop hostile recursion.
        root: The part is a message's top level (a lone named text part is its body).
        attach: Record leaves as attachments whatever they are (signatures, ciphertext).
    """
    if depth > _MAX_DEPTH:
        acc.defects.add("nesting-too-deep")
        _flat(part, acc, body=body, attach=attach)
        return
    info = _part_info(part, acc.defects)
    ctype = info.content_type
    children = _children(part)
    if children is not None:
        if ctype in ("message/rfc822", "message/global") and children:
            _forwarded(children[0], acc, body=body, depth=depth)
        elif ctype.startswith("message/"):
            acc.attachments.append(_attachment(part, info, acc.defects))
        elif ctype == "multipart/alternative":
            _alternative(children, acc, body=body, depth=depth)
        elif ctype == "multipart/signed":
            acc.security.add("signed")
            for index, child in enumerate(children):  # signed content first, then signature(s)
                first = index == 0
                _walk(child, acc, body=body and first, in_alt=in_alt and first, depth=depth + 1,
                      attach=not first)
        elif ctype == "multipart/encrypted":
            acc.security.add("encrypted")
            for child in children:
                _walk(child, acc, body=False, in_alt=False, depth=depth + 1, attach=True)
        else:
            for child in children:
                _walk(child, acc, body=body, in_alt=in_alt, depth=depth + 1, attach=attach)
    else:
        _leaf(part, info, acc, body=body, in_alt=in_alt, root=root, attach=attach)
    _collect_defects(part, acc.defects)


def _flat(part: Message, acc: _Acc, *, body: bool, attach: bool) -> None:
    """Visit the leaves under a part nested too deep, without recursion, as if in multipart/mixed.

    Nesting that deep is an attack or a bug, and following it would exhaust the stack; its
    leaves still hold the message's text and files, so they are kept in document order.
    """
    stack = [part]
    while stack:
        node = stack.pop()
        children = _children(node)
        if children is None:
            _leaf(node, _part_info(node, acc.defects), acc, body=body, in_alt=False, root=False, attach=attach)
        else:
            stack.extend(reversed(children))
        _collect_defects(node, acc.defects)


def _children(part: Message) -> list[Message] | None:
    """Sub-parts of a container, or None for a leaf."""
    try:
        if not part.is_multipart():
            return None
        return [child for child in part.get_payload() if isinstance(child, Message)]
    except Exception:
        return None


def _leaf(
    part: Message, info: _PartInfo, acc: _Acc, *, body: bool, in_alt: bool, root: bool, attach: bool
) -> None:
    """Record a leaf part as body text, as an attachment, or (alternative renderings) not at all."""
    if info.content_type.startswith("multipart/"):  # boundary missing or never found
        if not info.params.get("boundary"):
            acc.defects.add("missing-boundary")
        info = _PartInfo("text/plain", info.params, info.disposition, info.filename)
    ctype = info.content_type
    if ctype in _PKCS7_MIME:
        smime = info.params.get("smime-type", "").lower()
        acc.security.add("signed" if smime == "signed-data" else "encrypted")
    is_body_type = ctype in _BODY_TYPES
    if attach or info.disposition == "attachment" or ctype in _ALWAYS_ATTACH:
        is_attachment = True
    elif info.filename is not None:
        is_attachment = not (root and is_body_type)
    else:
        is_attachment = not is_body_type and not in_alt
    if is_attachment:
        acc.attachments.append(_attachment(part, info, acc.defects))
        return
    if not body or not is_body_type:
        return
    text = _lazy_text_of(_payload_bytes(part, acc.defects), info, acc.defects)
    if isinstance(text, str):  # text/plain
        armour = text.lstrip()
        if armour.startswith("-----BEGIN PGP MESSAGE-----"):
            acc.security.add("encrypted")
            text = ""
        elif armour.startswith("-----BEGIN PGP SIGNED MESSAGE-----"):
            acc.security.add("signed")
    acc.segments.append(("plain" if ctype == "text/plain" else "html", text))


def _alternative(children: list[Message], acc: _Acc, *, body: bool, depth: int) -> None:
    """Keep the text of the best alternative: text/plain over HTML, later over earlier."""
    subs: list[_Acc] = []
    for child in children:
        sub = _Acc(acc.defects)
        _walk(child, sub, body=body, in_alt=True, depth=depth + 1)
        subs.append(sub)
        acc.attachments.extend(sub.attachments)
        acc.security.update(sub.security)
    # Ranks of HTML-only alternatives need their text, so they are only asked for when no
    # alternative has plain text (the winner then is the last one that has).
    with_plain = [sub for sub in subs if sub.has_plain()]
    best = with_plain[-1] if with_plain else min(reversed(subs), key=_Acc.rank, default=None)
    if best is not None and best.rank() < 2:
        acc.segments.extend(best.segments)
        acc.forwarded.extend(best.forwarded)


def _forwarded(inner: Message, acc: _Acc, *, body: bool, depth: int) -> None:
    """Append a forwarded message's text (with From/Date/Subject) and its attachments.

    The inner message's security markers stay with it: a forwarded signed
    mail does not make the forwarding mail signed.
    """
    sub = _Acc(acc.defects)
    _walk(inner, sub, body=body, in_alt=False, depth=depth + 1, root=True)
    acc.attachments.extend(sub.attachments)
    if not body:
        return
    lines = [FORWARD_MARKER]
    senders = ", ".join(
        f"{a.name} <{a.address}>" if a.name and a.address else (a.address or a.name or "")
        for a in _addresses(inner, "from", acc.defects)
    )
    date_raw = _date(inner, set())[1]  # a forwarded message's missing date is not this message's defect
    subject = _subject(inner, acc.defects)
    for label, value in (("From", senders), ("Date", date_raw), ("Subject", subject)):
        if value:
            lines.append(f"{label}: {value}")
    text = _compose(sub)
    acc.forwarded.append("\n".join(lines) + ("\n\n" + text if text else ""))


def _compose(acc: _Acc) -> str:
    """Body segments in document order, then forwarded messages."""
    blocks = [str(text).strip("\n").rstrip() for _, text in acc.segments]
    blocks += acc.forwarded
    return "\n\n".join(block for block in blocks if block.strip())
