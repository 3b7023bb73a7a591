"""IMAP sequence sets (``1:500,502,510:9000``): the compact form of a set of UIDs."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["to_sequence_set", "parse_sequence_set"]


def to_sequence_set(uids: Iterable[int]) -> str:
    """Compress UIDs into ranges; input order and duplicates do not matter."""
    ordered = sorted(set(uids))
    if not ordered:
        return ""
    parts: list[str] = []
    start = previous = ordered[0]
    for uid in ordered[1:]:
        if uid == previous + 1:
            previous = uid
            continue
        parts.append(str(start) if start == previous else f"{start}:{previous}")
        start = previous = uid
    parts.append(str(start) if start == previous else f"{start}:{previous}")
    return ",".join(parts)


def parse_sequence_set(text: str) -> list[int]:
    """Expand a sequence set with no ``*`` into sorted UIDs."""
    uids: set[int] = set()
    for part in filter(None, text.split(",")):
        low, _, high = part.partition(":")
        first, last = int(low), int(high or low)
        if first > last:
            first, last = last, first
        if first < 1:
            raise ValueError(f"UIDs start at 1, not {first}")
        uids.update(range(first, last + 1))
    return sorted(uids)
