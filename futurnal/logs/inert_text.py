"""Text from mail servers and senders made inert for a terminal or a text log: shown, never acted on."""

from __future__ import annotations

import re

__all__ = ["visible"]

#: What a terminal acts on rather than shows: C0 controls (tab and newline too: a shown field is one
#: line), DEL, C1 controls, the line and paragraph separators, the bidi embeddings, overrides and
#: isolates, and lone surrogates (which a UTF-8 terminal cannot be sent at all).
_ACTIVE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def visible(text: object) -> str:
    """``text`` as a terminal may show it: every character in :data:`_ACTIVE` written as an escape
    (``\\x1b``, ``\\u202e``).

    Folder names, server answers, subjects and quarantine reasons come from mail servers and
    senders; printed raw, ``ESC ] 0 ;`` retitles the terminal, ``ESC [ 2 J`` clears it, and
    U+202E makes ``gpj.exe`` read ``exe.jpg``. Everything the CLI shows people from such a source
    goes through here (JSON output does not: JSON escapes control characters itself).
    """
    return _ACTIVE.sub(_escape, str(text))


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"
