"""Fast paths for the plainest address lists and MIME parameter headers.

The modern ``email.headerregistry`` parser understands every corner of RFC 5322 and RFC 2231,
but it builds a token tree per header and costs about a third of the time spent parsing a
typical message. Most headers are nothing like a corner: ``Alice <alice@example.org>, bob@x.org``
or ``text/plain; charset="utf-8"``. For exactly those shapes (ASCII, encoded words only as whole
words of a display name, no comments, no quoted local parts, no RFC 2231 parameters) this module
gives the same answer with one regular expression; for anything else it returns None and the
caller uses the registry.

That "same answer" is checked by a differential test against the registry over generated
headers (tests/unit/test_simple_headers.py).
"""

from __future__ import annotations

import re
from email import _encoded_words  # type: ignore[attr-defined]  # the decoder the header registry uses: same answers by design

__all__ = ["simple_addresses", "simple_params"]

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*"
_ADDR_SPEC = rf"{_DOT_ATOM}@{_DOT_ATOM}"
_PHRASE = rf"{_ATOM}(?: {_ATOM})*"
_QUOTED = r'"[ !#-\[\]-~]*"'  # printable ASCII without '"' and '\'
_MAILBOX = rf"(?:(?:{_PHRASE}|{_QUOTED}) ?<{_ADDR_SPEC}>|{_ADDR_SPEC})"
_ADDRESS_LIST = re.compile(rf" ?{_MAILBOX}(?: ?, ?{_MAILBOX})* ?")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[QqBb]\?[^?\s]*\?=")
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
    """(display name, local part, domain) of each mailbox in a plain address list; else None.

    Display names may hold RFC 2047 encoded words (``=?utf-8?q?J=C3=BCrgen?= Meyer``), decoded
    the way the registry decodes them; a word that does not decode cleanly sends the whole list
    to the registry.
    """
    if not _ADDRESS_LIST.fullmatch(text):
        return None
    found = []
    display: str | None
    for match in _ONE_MAILBOX.finditer(text):
        if match["bare_local"] is not None:
            local, domain, display = match["bare_local"], match["bare_domain"], ""
        else:
            local, domain = match["local"], match["domain"]
            if match["phrase"] is not None:
                # An encoded word right against the "<" is a defect the registry records.
                tight = "=?" in match["phrase"] and text[match.end("phrase")] != " "
                display = None if tight else _decoded_phrase(match["phrase"])
            else:
                display = match["quoted"] or ""
                if "=?" in display:
                    return None
            if display is None:
                return None
        if "=?" in local or "=?" in domain:
            return None
        found.append((display, local, domain))
    return found


def _decoded_phrase(phrase: str) -> str | None:
    """The words of a display name, encoded words decoded; None if one of them is not clean."""
    if "=?" not in phrase:
        return phrase
    words = phrase.split(" ")
    for index, word in enumerate(words):
        if "=?" not in word:
            continue
        if not _ENCODED_WORD.fullmatch(word):
            return None
        try:
            decoded, _charset, _lang, defects = _encoded_words.decode(word)
        except Exception:  # unknown charsets and the like: the registry records what is wrong
            return None
        if defects:
            return None
        words[index] = decoded
    return " ".join(words)


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
