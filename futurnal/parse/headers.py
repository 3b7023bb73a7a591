"""Header decoding: the header block, addresses, dates, subject, message ids and MIME parameters.

Header values are decoded by this module first (8-bit bytes read as UTF-8 per RFC 6532, else
Latin-1) and then handed to the modern ``email.policy.default`` header classes, which understand
RFC 2047 and RFC 2231. When those classes choke, the code falls back to
``email.header.decode_header`` / ``compat32`` and records ``header-decode:<name>``. Every call
into the stdlib header machinery goes through :func:`_guarded`, because it recurses once per
nested comment, quote or group and raises on shapes nobody foresaw: a header it cannot read
becomes a defect, never an exception.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy as email_policy
from email.header import decode_header
from email.message import Message
from email.utils import collapse_rfc2231_value, getaddresses, parsedate_to_datetime
from typing import Any, TypeVar

from .clean_mime import LinearMessage
from .simple_headers import simple_addresses, simple_params
from .text_decoding import SURROGATES, codec_for, decode_bytes, fix_surrogates, one_line

__all__ = [
    "Address",
    "addresses_of",
    "date_of",
    "decode_words",
    "in_reply_to_of",
    "message_id_of",
    "parameters_of",
    "references_of",
    "repair_header_block",
    "subject_of",
    "thread_id_for",
]

_POLICY = email_policy.default
_MAX_STRUCTURED = 8192  # longer header values skip the (quadratic) modern header parser
_MAX_HEADER_TEXT = 65536  # characters of one header value read; the longest real ones are To lists
_MAX_REPEATS = 64  # occurrences of one address header read; a message has one From, one To...
_MIN_YEAR = 1900  # RFC 5322 3.3: "the year is any numeric year 1900 or later"
_ESCAPED_BYTES = "".join(map(chr, range(0xDC80, 0xDD00)))  # 8-bit bytes as surrogateescape keeps them
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


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox from an address header; group members are flattened into the list."""

    name: str | None
    address: str | None  # the domain part is lower-cased, the local part kept as is


# --------------------------------------------------------------------------
# The header block
# --------------------------------------------------------------------------


def repair_header_block(raw: bytes) -> tuple[bytes, bool]:
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


# --------------------------------------------------------------------------
# Reading header values
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
    if SURROGATES.search(value):
        try:
            data = value.encode("utf-8", "surrogateescape")
            try:
                value = data.decode("utf-8")
            except UnicodeDecodeError:
                defects.add(f"8bit-header:{name}")
                value = data.decode("latin-1")
        except UnicodeEncodeError:
            value = fix_surrogates(value)
    for match in _ENCODED_WORD_CHARSET.finditer(value):
        codec_for(match.group(1), defects)
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


def decode_words(value: str, name: str, defects: set[str]) -> str:
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
            out.append(decode_bytes(chunk, charset, defects))
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
        return one_line(decoded)
    return one_line(decode_words(text, name, defects) if "=?" in text else text)


# --------------------------------------------------------------------------
# Subject, message ids and threads
# --------------------------------------------------------------------------


def subject_of(msg: Message, defects: set[str]) -> str | None:
    """The Subject decoded to one line of text; None if absent."""
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


def message_id_of(msg: Message, defects: set[str]) -> str | None:
    """The Message-ID without brackets; None, and ``missing-message-id``, when there is none."""
    value = _header_line(msg, "message-id", defects) or ""
    ids = _msg_ids(value) or [t.strip("<>") for t in value.split()]
    found = next((i for i in ids if i), "")
    if not found:
        defects.add("missing-message-id")
    return found or None


def _bare_id(value: str | None) -> str:
    return "".join((value or "").split()).strip("<>") if value else ""


def in_reply_to_of(msg: Message, defects: set[str]) -> str | None:
    """The first msg-id of In-Reply-To, without brackets; None if there is none."""
    return next(iter(_msg_ids(_header_line(msg, "in-reply-to", defects) or "")), None)


def references_of(msg: Message, defects: set[str]) -> tuple[str, ...]:
    """The msg-ids of References, oldest first, without brackets and without repeats."""
    return tuple(dict.fromkeys(_msg_ids(_header_line(msg, "references", defects) or "")))


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
# Addresses
# --------------------------------------------------------------------------


def _make_address(display: str | None, local: str | None, domain: str | None) -> Address | None:
    name = one_line(display) or None
    local, domain = one_line(local), one_line(domain).lower()
    address = f"{local}@{domain}" if domain else (local or None)
    return Address(name, address) if (name or address) else None


def addresses_of(msg: Message, name: str, defects: set[str]) -> tuple[Address, ...]:
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
        display = decode_words(display, name, defects)
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


# --------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------


def date_of(msg: Message, defects: set[str]) -> tuple[str | None, str | None]:
    """(UTC ISO 8601 date, raw Date value); a missing or unparseable date is a defect."""
    values = _raw_values(msg, "date")
    if not values:
        defects.add("missing-date")
        return None, None
    raw = one_line(_header_text(values[0], "date", defects))
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


# --------------------------------------------------------------------------
# Content-Type and Content-Disposition
# --------------------------------------------------------------------------


def parameters_of(part: Message, name: str, defects: set[str]) -> tuple[str | None, dict[str, str]]:
    """(lower-case value, parameters) of Content-Type or Content-Disposition."""
    values = _raw_values(part, name)
    if not values:
        return None, {}
    text = _header_text(values[0], name, defects)
    for match in _RFC2231_CHARSET.finditer(text):
        codec_for(match.group(1), defects)
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
    return kind, {str(k).lower(): fix_surrogates(str(v)) for k, v in header.params.items()}


def _compat_params(text: str, name: str) -> tuple[str | None, dict[str, str]]:
    """(value, parameters) of a Content-Type or Content-Disposition value, read by compat32."""
    compat = LinearMessage()
    compat[name] = text
    params = compat.get_params(header=name) or []
    found = {str(k).lower(): fix_surrogates(collapse_rfc2231_value(v)) for k, v in params[1:]}
    return (str(params[0][0]).lower() if params else None), found
