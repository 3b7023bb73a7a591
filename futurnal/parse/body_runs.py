"""Let the stdlib MIME parser skip over long bodies instead of reading them line by line.

Well-formed messages never get here (:mod:`.clean_mime` finds their structure by boundary
search); this is for the ones it leaves to the stdlib parser.

``email.feedparser`` looks at every line of a message: a 3 MB attachment is 40,000 lines, each
checked against every open multipart boundary, and most of a typical mailbox's parse time went
there. Yet most lines cannot change the MIME structure. Once a part's header block has ended,
the only lines that matter are those starting with ``--`` (a boundary, of any enclosing
multipart). And a header block ends at the first line that is neither a header, a continuation
nor the empty line. So a *run* of lines after an empty line can stand in as one short word while
the structure is parsed, and be put back afterwards, if its first line has no colon and starts
with neither blank, ``--`` nor ``From ``, and none of its lines starts with ``--``.

The one place where empty lines start new header blocks inside a body,
``message/delivery-status``, is left alone: such messages are parsed as they are.

:func:`shrink` replaces each long run with a unique placeholder word; :func:`restore` puts the
original text back into every part of the parsed tree (payloads, preambles, epilogues) and says
whether every placeholder was found, so a caller can fall back to a plain parse if not.
"""

from __future__ import annotations

import re
from email.message import Message

from .clean_mime import BARE_CR

__all__ = ["restore", "shrink"]

#: Characters that end a line for the parser (str.splitlines) besides LF and CRLF. A message with
#: any of them, or with a CR not followed by LF, is parsed as it is: rare, and not worth the care.
_ODD_BREAKS = (b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e")
_MIN_RUN = 512  # bytes; shorter runs save the parser too little to bother
_PLACEHOLDER = "FUTURNALBODYRUN{}Z"
_PLACEHOLDERS = re.compile(r"FUTURNALBODYRUN[0-9]+Z")
#: Where runs may start: after an empty line (the end of a header block, or of a paragraph).
_EMPTY_LINE = re.compile(rb"\n\r?\n")


def shrink(data: bytes) -> tuple[bytes, dict[str, str]]:
    """``data`` with each long run replaced by a placeholder, and placeholder -> original text.

    The last line ending of each run stays in place, so whatever the parser does with a body's
    final line break it does the same way. Returns ``data`` unchanged (and no runs) when there is
    nothing to gain or the message is one of the kinds left alone.
    """
    if (
        b"FUTURNALBODYRUN" in data
        or any(odd in data for odd in _ODD_BREAKS)
        or BARE_CR.search(data) is not None
        or b"delivery-status" in data.lower()
    ):
        return data, {}
    pieces: list[bytes] = []
    originals: dict[str, str] = {}
    done = 0
    last_line_end = data.rfind(b"\n")
    for empty in _EMPTY_LINE.finditer(data):
        start = empty.end()
        if start < done:
            continue
        first_end = data.find(b"\n", start)
        if first_end < 0:
            break
        first = data[start:first_end].rstrip(b"\r")
        if not first or first[:1] in b" \t" or first.startswith((b"--", b"From ")) or b":" in first:
            continue
        boundary = data.find(b"\n--", first_end)
        stop = boundary if boundary >= 0 else last_line_end  # the run's last line ending
        end = stop - 1 if data[stop - 1 : stop] == b"\r" else stop
        if end - start < _MIN_RUN:
            continue
        placeholder = _PLACEHOLDER.format(len(originals))
        originals[placeholder] = data[start:end].decode("ascii", "surrogateescape")
        pieces += (data[done:start], placeholder.encode("ascii"))
        done = end
    if not originals:
        return data, {}
    pieces.append(data[done:])
    return b"".join(pieces), originals


def restore(msg: Message, originals: dict[str, str]) -> bool:
    """Put every run back into the parsed tree; False if some placeholder was not found."""
    found = 0

    def original(match: re.Match[str]) -> str:
        nonlocal found
        found += 1
        return originals.get(match.group(), match.group())

    for part in msg.walk():
        payload = part._payload  # type: ignore[attr-defined]  # the raw payload string; get_payload() would decode it
        if isinstance(payload, str) and "FUTURNALBODYRUN" in payload:
            part._payload = _PLACEHOLDERS.sub(original, payload)  # type: ignore[attr-defined]
        for attribute in ("preamble", "epilogue"):
            text = getattr(part, attribute, None)
            if isinstance(text, str) and "FUTURNALBODYRUN" in text:
                setattr(part, attribute, _PLACEHOLDERS.sub(original, text))
    return found == len(originals)
