"""Search text for PostgreSQL: what the ``tsvector`` holds of an element, the query syntax people
type turned into a ``tsquery``, and the snippet around the first match.

Words are cut out in Python, not by PostgreSQL's parser: letters and digits (``[^\\W_]+``), folded
to lower case without accents, each CJK character a word of its own (as the SQLite index does,
see :mod:`..sqlite.search_text`). The database's ``simple`` configuration then takes them as they
are, so an address (``bob@example.com``) is the words bob, example and com on both sides, as in
SQLite, rather than one token PostgreSQL's parser would make of it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from ..element_store import BadSearchQuery
from ..sqlite.search_text import SNIPPET_CLOSE, SNIPPET_OPEN, index_columns

__all__ = ["SNIPPET_WORDS", "WEIGHTS", "index_texts", "snippet", "ts_query"]

SNIPPET_WORDS = 16
# subject, people, body, attachments: ts_rank's weights are given as {D, C, B, A}.
WEIGHTS = "{0.125, 0.125, 0.5, 1.0}"
_LABELS = {"subject": "A", "people": "B", "body": "C", "attachments": "D"}
# A tsvector holds at most 1 MB: the indexed text of a column is cut at this many characters.
_COLUMN_LIMIT = {"subject": 4_000, "people": 20_000, "body": 300_000, "attachments": 300_000}
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+", re.UNICODE)
_QUERY_TOKEN = re.compile(r'\s*(?:(\()|(\))|"([^"]*)"(\*?)|([^\s()"]+))')
_OPERATORS = {"AND": "&", "OR": "|", "NOT": "& !"}


def _fold(text: str) -> str:
    """Lower case without accents (``Café`` → ``cafe``), as FTS5's ``remove_diacritics`` does."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c))).lower()


def words(text: str) -> list[str]:
    return _TOKEN.findall(_fold(text))


def index_texts(element: dict[str, Any]) -> tuple[str, str, str, str]:
    """Subject, people, body and attachments as the words the ``tsvector`` is built from."""
    columns = index_columns(element)
    return tuple(  # type: ignore[return-value]
        " ".join(words(text[:limit])) for text, limit in zip(columns, _COLUMN_LIMIT.values())
    )


def ts_query(query: str) -> str:
    """The ``to_tsquery('simple', ...)`` text for what a person typed: the syntax of
    :func:`..sqlite.search_text.fts_query` (words, "phrases", ``prefix*``, AND, OR, NOT,
    parentheses, ``column:word``), each operand a quoted lexeme so no word is read as syntax."""
    parts: list[str] = []
    position = 0
    query = query.strip()
    previous = "operator"
    label = ""
    while position < len(query):
        match = _QUERY_TOKEN.match(query, position)
        if match is None:
            raise BadSearchQuery(f"unbalanced quote in the search query at character {position + 1}")
        position = match.end()
        opening, closing, phrase, phrase_prefix, word = match.groups()
        if word in _OPERATORS:
            if previous == "operator":
                raise BadSearchQuery(f"{word} needs something to search before it, in {query!r}")
            parts.append(_OPERATORS[word])
            previous = "operator"
            continue
        if closing:
            parts.append(")")
            previous = "operand"
            continue
        if opening:
            operand = "("
        elif phrase is not None:
            operand = _phrase(words(phrase), phrase_prefix, label)
        elif word.endswith(":") and word[:-1].lower() in _LABELS:  # ``subject:`` before a "phrase"
            label = _LABELS[word[:-1].lower()]
            continue
        else:
            operand = _word(word)
        label = ""
        if not operand:
            continue
        if previous == "operand":  # two operands side by side: both must match
            parts.append("&")
        parts.append(operand)
        previous = "operator" if opening else "operand"
    text = " ".join(parts)
    if not text:
        raise BadSearchQuery("the search query is empty")
    if previous == "operator" and not text.endswith("("):
        raise BadSearchQuery(f"the search query {query!r} ends with an operator")
    return text


def _word(word: str) -> str:
    column, colon, rest = word.partition(":")
    label = ""
    if colon and column.lower() in _LABELS:
        label, word = _LABELS[column.lower()], rest
    prefix = "*" if word.endswith("*") else ""
    return _phrase(words(word.rstrip("*")), prefix, label)


def _phrase(tokens: list[str], prefix: str, label: str) -> str:
    if not tokens:
        return ""
    weights = label
    lexemes = [f"'{token}'" + (":" + weights if weights else "") for token in tokens]
    if prefix:
        lexemes[-1] = f"'{tokens[-1]}':*" + weights
    joined = " <-> ".join(lexemes)
    return f"({joined})" if len(lexemes) > 1 else joined


def query_terms(query: str) -> tuple[set[str], tuple[str, ...]]:
    """The words and the prefixes a query looks for (those after NOT too: only for snippets)."""
    exact: set[str] = set()
    prefixes: list[str] = []
    for match in re.finditer(r'"([^"]*)"(\*?)|([^\s()"]+)', query):
        phrase, phrase_prefix, word = match.groups()
        if word in _OPERATORS:
            continue
        text = phrase if phrase is not None else word.partition(":")[2] if ":" in word else word
        prefix = phrase_prefix or ("*" if word and word.endswith("*") else "")
        tokens = words(text.rstrip("*"))
        if tokens and prefix:
            prefixes.append(tokens.pop())
        exact.update(tokens)
    return exact, tuple(prefixes)


def snippet(texts: Iterable[str], query: str) -> str:
    """Up to :data:`SNIPPET_WORDS` words around the first match in the first text that has one,
    each matched word (or run of matched CJK characters) in ``[...]``; ``…`` where text was cut."""
    exact, prefixes = query_terms(query)
    for text in texts:
        tokens = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(text)]
        hits = [i for i, (_, _, token) in enumerate(tokens)
                if _fold(token) in exact or (prefixes and _fold(token).startswith(prefixes))]
        if not hits:
            continue
        first = max(0, min(hits[0] - 2, len(tokens) - SNIPPET_WORDS))
        window = tokens[first:first + SNIPPET_WORDS]
        marked = set(hits)
        out, cursor = [], (0 if first == 0 else window[0][0])
        opened = False
        for offset, (start, end, _) in enumerate(window):
            index = first + offset
            gap = text[cursor:start]
            if opened and (gap or index not in marked):
                out.append(SNIPPET_CLOSE)
                opened = False
            out.append(gap)
            if index in marked and not opened:
                out.append(SNIPPET_OPEN)
                opened = True
            out.append(text[start:end])
            cursor = end
        if opened:
            out.append(SNIPPET_CLOSE)
        head = "…" if first > 0 else ""
        tail = "…" if first + SNIPPET_WORDS < len(tokens) else ""
        if not tail:
            out.append(text[cursor:])
        return head + "".join(out).strip() + tail
    return ""
