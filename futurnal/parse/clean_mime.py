"""The MIME structure of a well-formed message, found by searching for its boundaries.

``email.feedparser`` reads a message line by line in Python, checks every line against every
open boundary, and compiles a regular expression for each boundary it meets. For the well-formed
messages that make up nearly all of a mailbox, the structure can be had for far less: the header
blocks are short, and a multipart's parts are where its boundary lines are, which ``str.find``
locates without looking at the lines in between.

:func:`parse_clean` builds exactly the ``Message`` tree the stdlib parser builds with the
``compat32`` policy: the same raw headers, payload strings, preambles, epilogues and defects.
It only does so for messages it can be sure about, and returns None for everything else (bare
CRs, header lines that are not headers, a missing separator, boundaries that never start or
never close, repeated boundary lines, ``message/*`` parts, digests). Those go to the stdlib
parser, whose recovery from broken input the rest of the parser was built around.

Both build their trees from :class:`LinearMessage`, whose parameter parsing gives the stdlib's
answers in linear time.
"""

from __future__ import annotations

import re
from email import errors, utils
from email.message import Message
from email.policy import compat32

__all__ = ["BARE_CR", "LinearMessage", "parse_clean"]

#: What the stdlib parser accepts as a header line (``email.feedparser.headerRE``).
_HEADER_LINE = re.compile(r"(From |[\041-\071\073-\176]*:|[\t ])")
#: A CR that is not part of a CRLF: the stdlib parser ends a line there, this module does not.
BARE_CR = re.compile(rb"\r(?!\n)")
_MAX_DEPTH = 40
_MAX_PARAMS = 256  # MIME parameters read per header; real ones have a handful, each costs a decode
_BOUNDARY_LINE_ENDS = ("", "\n", "\r\n")


class LinearMessage(Message):
    """A ``compat32`` message whose MIME parameters are parsed in linear time.

    The stdlib splits ``Content-Type: multipart/mixed; boundary=b;;;;...`` by slicing the rest of
    the value once per ``;``: a 256 kB value took 4 s, ten megabytes would take hours, and the
    parser asks for the boundary of every multipart. This class gives the same parameters, the
    first :data:`_MAX_PARAMS` of them (megabytes of ``;`` would still take a minute to decode).
    """

    def _get_params_preserve(self, failobj, header):  # type: ignore[no-untyped-def]
        """``Message._get_params_preserve`` with :func:`split_params` in place of the quadratic
        ``email.message._parseparam``."""
        missing = object()
        value = self.get(header, missing)
        if value is missing:
            return failobj
        params = []
        for param in split_params(str(value), _MAX_PARAMS):
            name, equals, val = param.partition("=")
            params.append((name.strip(), val.strip()) if equals else (param.strip(), ""))
        return utils.decode_params(params)


def split_params(value: str, limit: int | None = None) -> list[str]:
    """``email.message._parseparam(value)``: the ``;``-separated parts of a header value (a ``;``
    inside an open quote does not count), names lower-cased, in one pass instead of one per part;
    only the first ``limit`` parts when given."""
    text = ";" + value
    found: list[str] = []
    position = 0
    while text.startswith(";", position) and (limit is None or len(found) < limit):
        start = position + 1
        end = text.find(";", start)
        counted, parity = start, 0
        while end > start:  # the quotes (less escaped ones) before this ';' must pair up
            parity += text.count('"', counted, end) - text.count('\\"', counted, end)
            counted = end
            if parity % 2 == 0:
                break
            end = text.find(";", end + 1)
        if end < 0:
            end = len(text)
        part = text[start:end]
        if "=" in part:
            name, _, val = part.partition("=")
            part = name.strip().lower() + "=" + val.strip()
        found.append(part.strip())
        position = end
    return found


class _NotClean(Exception):
    """Something the fast path does not reproduce; the stdlib parser takes the message."""


def parse_clean(data: bytes) -> Message | None:
    """The message's ``compat32`` tree, or None when it is not plainly well-formed."""
    # Checked on the bytes: a regular expression over the decoded text is ten times slower.
    if BARE_CR.search(data) is not None:
        return None
    text = data.decode("ascii", "surrogateescape")
    try:
        return _part(text, 0, len(text), 0)
    except _NotClean:
        return None
    except Exception:  # the stdlib's header helpers fail on some hostile parameters: its path records that
        return None


def _part(text: str, start: int, end: int, depth: int) -> Message:
    """The part in ``text[start:end]``: its header block, then its body."""
    if depth > _MAX_DEPTH:
        raise _NotClean
    msg = LinearMessage(policy=compat32)
    body = _headers(text, start, end, msg)
    content_type = msg.get_content_type()
    maintype = content_type.partition("/")[0]
    if maintype == "message" or content_type == "multipart/digest":
        raise _NotClean  # nested messages and digests' default types: the stdlib parser's job
    if maintype == "multipart":
        _multipart(text, body, end, msg, depth)
    else:
        msg.set_payload(text[body:end])
    return msg


def _headers(text: str, start: int, end: int, msg: Message) -> int:
    """Set ``msg``'s raw headers from the block at ``start``; returns where the body starts."""
    lines: list[str] = []
    position = start
    while True:
        if position >= end:
            raise _NotClean  # no empty line after the headers (or an empty part: two boundaries in a row)
        newline = text.find("\n", position, end)
        line_end = end if newline < 0 else newline + 1
        line = text[position:line_end]
        position = line_end
        if line in ("\r\n", "\n"):
            break
        if not _HEADER_LINE.match(line):
            raise _NotClean  # a body line where a header should be
        lines.append(line)
    current: list[str] | None = None
    for line in lines:
        if line[0] in " \t":
            if current is None:
                raise _NotClean  # the block starts with a continuation line
            current.append(line)
            continue
        if current is not None:
            msg.set_raw(*compat32.header_source_parse(current))
        if line.startswith("From ") or line.find(":") <= 0:
            raise _NotClean  # an mbox envelope line, or a header without a name
        current = [line]
    if current is not None:
        msg.set_raw(*compat32.header_source_parse(current))
    return position


def _multipart(text: str, start: int, end: int, msg: Message, depth: int) -> None:
    """Split ``text[start:end]`` at ``msg``'s boundary lines into preamble, parts and epilogue."""
    boundary = msg.get_boundary()
    if not boundary or "\n" in boundary or "\r" in boundary:
        raise _NotClean  # a boundary with a line break (folded, or RFC 2231 %0A) never matches a line
    if str(msg.get("content-transfer-encoding", "8bit")).lower() not in ("7bit", "8bit", "binary"):
        compat32.handle_defect(msg, errors.InvalidMultipartContentTransferEncodingDefect())
    separator = "--" + boundary
    found = _boundary_line(text, separator, start, end)
    if found is None or found[2]:
        raise _NotClean  # no opening boundary (or only the closing one)
    line_start, line_end, _ = found
    if line_start > start:  # RFC 2046: the line break before a boundary belongs to the boundary
        msg.preamble = _without_line_break(text[start:line_start])
    while True:
        following = _boundary_line(text, separator, line_end, end)
        if following is None:
            raise _NotClean  # the closing boundary never comes
        part = _part(text, line_end, following[0], depth + 1)
        # The line break before the next boundary belongs to the boundary, not to the part.
        if part.get_content_maintype() == "multipart":
            part.epilogue = None if not part.epilogue else _without_line_break(part.epilogue)
        else:
            part._payload = _without_line_break(part._payload)  # type: ignore[attr-defined]  # the raw string, as the stdlib parser trims it
        msg.attach(part)
        line_start, line_end, closing = following
        if closing:
            msg.epilogue = text[line_end:end]
            return


def _boundary_line(text: str, separator: str, start: int, end: int) -> tuple[int, int, bool] | None:
    """The first line in ``text[start:end]`` that is ``separator``, possibly closing (``--``) and
    followed by blanks: (line start, line end, closing). ``start`` is a line start."""
    position = start
    while position < end:
        if text.startswith(separator, position, end):
            line_start = position
        else:
            found = text.find("\n" + separator, position, end)
            if found < 0:
                return None
            line_start = found + 1
        after = line_start + len(separator)
        newline = text.find("\n", after, end)
        line_end = end if newline < 0 else newline + 1
        rest = text[after:line_end]
        closing = rest.startswith("--")
        if closing:
            rest = rest[2:]
        if rest.lstrip(" \t") in _BOUNDARY_LINE_ENDS:
            return line_start, line_end, closing
        position = line_end
    return None


def _without_line_break(value: str) -> str:
    if value.endswith("\r\n"):
        return value[:-2]
    if value.endswith("\n"):
        return value[:-1]
    return value
