"""What the full-text index holds of an element, and the query syntax people type, turned into FTS5's.

FTS5's ``unicode61`` tokenizer splits words at spaces and punctuation, which leaves a run of
Chinese or Japanese (no spaces between words) as one huge token that no word inside it can match.
So every CJK character is indexed as a word of its own, and a CJK word in a query becomes the
phrase of its characters: "東京" finds 東京 (the two characters next to each other) and not
東 ... 京 apart. One index serves every script, and two-character words (the commonest in Japanese
and Chinese) are found, which the ``trigram`` tokenizer cannot do (it needs three characters).
"""

from __future__ import annotations

import re
from typing import Any

from ..element_store import BadSearchQuery

__all__ = ["SNIPPET_CLOSE", "SNIPPET_OPEN", "attachment_column", "fts_query", "index_columns", "readable_snippet",
           "sender_text"]

SNIPPET_OPEN, SNIPPET_CLOSE = "[", "]"  # around each matched word in a snippet

# Han (with extension A and compatibility ideographs), hiragana, katakana, Hangul syllables.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_CHAR = re.compile(f"[{_CJK}]")
_SPACED_CJK = re.compile(rf" ?(\{SNIPPET_OPEN}?)([{_CJK}])(\{SNIPPET_CLOSE}?) ?")
_JOINED_MARKS = re.compile(rf"(?<=[{_CJK}])\{SNIPPET_CLOSE}\{SNIPPET_OPEN}(?=[{_CJK}])")
_COLUMNS = ("subject", "people", "body", "attachments")
_QUERY_TOKEN = re.compile(r'\s*(?:(\()|(\))|"([^"]*)"(\*?)|([^\s()"]+))')
_OPERATORS = {"AND", "OR", "NOT"}
_PLAIN_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def _spaced(text: str) -> str:
    if text.isascii() or not _CJK_CHAR.search(text):  # isascii: most mail, and ten times faster
        return text
    return _CJK_CHAR.sub(lambda m: f" {m.group()} ", text)


def index_columns(element: dict[str, Any]) -> tuple[str, str, str, str]:
    """The element's subject, people (names and addresses), body and attachments (names and text)."""
    people = " ".join(
        f"{person.get('name') or ''} {person.get('address') or ''}"
        for field in ("from", "to", "cc", "bcc")
        for person in element.get(field) or []
    )
    return (_spaced(element.get("subject") or ""), _spaced(people), _spaced(element.get("text") or ""),
            attachment_column(element))


def attachment_column(element: dict[str, Any]) -> str:
    """The attachments' file names and extracted text, as the index holds them."""
    return _spaced(" ".join(
        part for attachment in element.get("attachments") or []
        for part in (attachment.get("filename") or "", attachment.get("text") or "") if part
    ))


def sender_text(element: dict[str, Any]) -> str:
    """The sender as a result line shows it, and what ``--from`` matches: ``Name <address>``."""
    people = []
    for person in element.get("from") or []:
        name, address = person.get("name"), person.get("address")
        people.append(f"{name} <{address}>" if name and address else (address or name or ""))
    return ", ".join(people)


def fts_query(query: str) -> str:
    """The FTS5 query for what a person typed.

    Words, "quoted phrases", ``prefix*``, ``AND``, ``OR``, ``NOT``, parentheses and ``column:word``
    (subject, people, body, attachments) mean what they mean in FTS5; any other word that holds
    punctuation (an address, a file name, ``e-mail``) is searched as the phrase of its parts,
    instead of being a syntax error.
    """
    parts: list[str] = []
    position = 0
    query = query.strip()
    while position < len(query):
        match = _QUERY_TOKEN.match(query, position)
        if match is None:  # an unclosed quote is the only thing the pattern cannot take
            raise BadSearchQuery(f"unbalanced quote in the search query at character {position + 1}")
        position = match.end()
        opening, closing, phrase, phrase_prefix, word = match.groups()
        if opening or closing:
            parts.append(opening or closing)
        elif phrase is not None:
            parts.append(_phrase(phrase, phrase_prefix))
        elif word in _OPERATORS:
            parts.append(word)
        else:
            parts.append(_word(word))
    text = " ".join(part for part in parts if part)
    if not text:
        raise BadSearchQuery("the search query is empty")
    return text


def _word(word: str) -> str:
    column, colon, rest = word.partition(":")
    if colon and column.lower() in _COLUMNS:  # ``subject:word``, or ``subject:`` before a "phrase"
        return f"{column.lower()} : {_word(rest)}" if rest else f"{column.lower()} :"
    prefix = "*" if word.endswith("*") else ""
    word = word.rstrip("*")
    if _PLAIN_WORD.fullmatch(word) and not _CJK_CHAR.search(word):
        return word + prefix
    return _phrase(word, prefix)


def _phrase(text: str, prefix: str) -> str:
    tokens = _spaced(text).split()
    tokens = [token for piece in tokens for token in _PLAIN_WORD.findall(piece)]
    if not tokens:
        return ""
    return '"' + " ".join(tokens) + '"' + prefix


def readable_snippet(snippet: str) -> str:
    """A snippet as the text was written: without the spaces indexing put around CJK characters."""
    if not _CJK_CHAR.search(snippet):
        return snippet
    return _JOINED_MARKS.sub("", _SPACED_CJK.sub(r"\1\2\3", snippet))
