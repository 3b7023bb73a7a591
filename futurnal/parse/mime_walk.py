"""Walking a message's MIME tree: its body text, its attachments and its security markers.

Body text is the inline text/plain and text/html leaves in document order (HTML reduced to text);
inside multipart/alternative only the best rendering counts, text/plain preferred. Forwarded
messages follow under :data:`FORWARD_MARKER`. A leaf is an attachment when its disposition says
so, when it has a file name (except a message that is a single named text part), or when it is
not text/plain or text/html and not an alternative rendering inside multipart/alternative.
Signed and encrypted parts (S/MIME, PGP/MIME, inline PGP) are marked ``signed``/``encrypted``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from email.message import Message

from .headers import addresses_of, date_of, decode_words, parameters_of, subject_of
from .html_text import html_to_text
from .text_decoding import clean_text, decode_bytes, fix_surrogates, one_line

__all__ = ["FORWARD_MARKER", "MimeContent", "ParsedAttachment", "sanitise_filename", "walk_mime_tree"]

#: Line that introduces the text of a forwarded (message/rfc822) message.
FORWARD_MARKER = "---------- Forwarded message ----------"

_MAX_DEPTH = 40  # deeper MIME nesting is an attack or a bug, not a real message
_MAX_FILENAME = 200
_BODY_TYPES = ("text/plain", "text/html")
_PKCS7_MIME = ("application/pkcs7-mime", "application/x-pkcs7-mime")
_ALWAYS_ATTACH = ("text/calendar",)  # invitations ride inside multipart/alternative but are content


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
class MimeContent:
    """What the MIME tree of a message holds besides its top-level headers."""

    text: str
    attachments: tuple[ParsedAttachment, ...]
    security: tuple[str, ...]  # "signed" and/or "encrypted"


def walk_mime_tree(msg: Message, defects: set[str]) -> MimeContent:
    """Body text, attachments and security markers of a parsed message; never raises.

    A part that the walk cannot get past costs what follows it, not what was collected so far:
    nesting too deep for the stack records ``nesting-too-deep``, any other surprise of the stdlib
    ``parse-error``.
    """
    acc = _Acc(defects)
    try:
        _walk(msg, acc, body=True, in_alt=False, depth=0, root=True)
    except RecursionError:
        defects.add("nesting-too-deep")
    except Exception:  # a stdlib surprise in one part: what was collected so far is kept
        defects.add("parse-error")
    return MimeContent(text=_compose(acc), attachments=tuple(acc.attachments), security=tuple(sorted(acc.security)))


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
    text = unicodedata.normalize("NFC", fix_surrogates(str(name)))
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


def _part_info(part: Message, defects: set[str]) -> _PartInfo:
    ctype, params = parameters_of(part, "content-type", defects)
    disposition, dparams = parameters_of(part, "content-disposition", defects)
    if not ctype or "/" not in ctype:
        ctype = "text/plain" if ctype else part.get_default_type()
    name = dparams.get("filename") or params.get("name")
    if name and "=?" in name:
        name = decode_words(name, "content-disposition", defects)
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


def _lazy_text_of(data: bytes, info: _PartInfo, defects: set[str]) -> str | _Html:
    """Readable text of a text/* payload: decoded, flowed text unwrapped; HTML reduced when used."""
    text = clean_text(decode_bytes(data, info.params.get("charset"), defects))
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
        charset=one_line(charset)[:40] or None if charset else None,
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
        for a in addresses_of(inner, "from", acc.defects)
    )
    date_raw = date_of(inner, set())[1]  # a forwarded message's missing date is not this message's defect
    subject = subject_of(inner, acc.defects)
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
