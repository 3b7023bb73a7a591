"""Fast paths for the plainest address lists and MIME parameter headers.

The modern ``email.headerregistry`` parser understands every corner of RFC 5322 and RFC 2231,
but it builds a token tree per header and costs about a third of the time spent parsing a
typical message. Most headers are nothing like a corner: ``Alice <alice@example.org>, bob@x.org``
or ``text/plain; charset="utf-8"``. For exactly those shapes (ASCII, no encoded words, no
comments, no quoted local parts, no RFC 2231 parameters) this module gives the same answer with
one regular expression; for anything else it returns None and the caller uses the registry.

That "same answer" is checked by a differential test against the registry over generated
headers (tests/unit/test_simple_headers.py).
"""

from __future__ import annotations

import re

__all__ = ["simple_addresses", "simple_params"]

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*"
_ADDR_SPEC = rf"{_DOT_ATOM}@{_DOT_ATOM}"
_PHRASE = rf"{_ATOM}(?: {_ATOM})*"
_QUOTED = r'"[ !#-\[\]-~]*"'  # printable ASCII without '"' and '\'
_MAILBOX = rf"(?:(?:{_PHRASE}|{_QUOTED}) ?<{_ADDR_SPEC}>|{_ADDR_SPEC})"
_ADDRESS_LIST = re.compile(rf" ?{_MAILBOX}(?: ?, ?{_MAILBOX})* ?")
_ONE_MAILBOX = re.compile(
    rf"(?:(?P<phrase>{_PHRASE})|\"(?P<quoted>[^\"]*)\")? ?<(?P<local>{_DOT_ATOM})@(?P<domain>{_DOT_ATOM})>"
    rf"|(?P<bare_local>{_DOT_ATOM})@(?P<bare_domain>{_DOT_ATOM})"
)

# RFC 2045 tokens, without '*', "'" and '%' so that RFC 2231 parameters never take this path.
_TOKEN = r"[A-Za-z0-9!#$&+.^_`{|}~-]+"
_PARAM = rf"(?P<name>{_TOKEN})=(?:(?P<token>{_TOKEN})|\"(?P<quoted>[ !#-\[\]-~]*)\")"
_PARAMS = rf"((?: ?; ?{_PARAM})*)"
_CONTENT_TYPE = re.compile(rf"(?P<value>{_TOKEN}/{_TOKEN}){_PARAMS}")
_DISPOSITION = re.compile(rf"(?P<value>{_TOKEN}){_PARAMS}")
_ONE_PARAM = re.compile(rf"; ?{_PARAM}")


def simple_addresses(text: str) -> list[tuple[str, str, str]] | None:
    """(display name, local part, domain) of each mailbox in a plain address list; else None."""
    if "=?" in text or not _ADDRESS_LIST.fullmatch(text):
        return None
    found = []
    for match in _ONE_MAILBOX.finditer(text):
        if match["bare_local"] is not None:
            found.append(("", match["bare_local"], match["bare_domain"]))
        else:
            display = match["phrase"] if match["phrase"] is not None else match["quoted"] or ""
            found.append((display, match["local"], match["domain"]))
    return found


def simple_params(name: str, text: str) -> tuple[str, dict[str, str]] | None:
    """(lower-case value, parameters by lower-case name) of a plain ``content-type`` or
    ``content-disposition`` value (``name``); else None."""
    if "=?" in text:
        return None
    shape = _CONTENT_TYPE if name == "content-type" else _DISPOSITION
    match = shape.fullmatch(text.strip(" "))
    if match is None:
        return None
    params: dict[str, str] = {}
    for one in _ONE_PARAM.finditer(match.group(2)):
        key = one["name"].lower()
        if key in params:  # the registry keeps the first and records a defect: its call
            return None
        params[key] = one["token"] if one["token"] is not None else one["quoted"]
    return match["value"].lower(), params
