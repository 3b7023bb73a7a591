"""JSON Lines that stay one line for every reader: the one rule every JSON-per-line writer follows."""

from __future__ import annotations

__all__ = ["one_line"]

_LINE_BREAKS = (("\u2028", "\\u2028"), ("\u2029", "\\u2029"), ("\x85", "\\u0085"))


def one_line(json_text: str) -> str:
    """JSON text (``ensure_ascii=False``) with U+2028, U+2029 and U+0085 escaped, so it stays one line.

    JSON allows them raw inside strings, but ``str.splitlines``, JavaScript and other line readers
    end a line at each: a body text holding one would split a JSON Lines record in two. Outside
    strings JSON has no such character, so the escapes always land inside one and mean the same.
    """
    for raw, escaped in _LINE_BREAKS:
        if raw in json_text:
            json_text = json_text.replace(raw, escaped)
    return json_text
