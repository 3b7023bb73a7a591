"""IMAP sequence sets (``1:500,502,510:9000``): the compact form of a set of UIDs."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator

__all__ = ["UidSet", "parse_sequence_set", "to_sequence_set"]


def to_sequence_set(uids: Iterable[int]) -> str:
    """Compress UIDs into ranges; input order and duplicates do not matter."""
    return str(UidSet.of(uids))


def parse_sequence_set(text: str) -> list[int]:
    """Expand a sequence set with no ``*`` into sorted UIDs."""
    return list(UidSet.parse(text))


class UidSet:
    """A set of UIDs held as sorted, disjoint, non-adjacent ranges.

    A folder's known UIDs are mostly contiguous, so this stays a handful of ranges where a Python
    set would hold one object per message.
    """

    __slots__ = ("_ranges",)

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self._ranges: list[tuple[int, int]] = _normalise(ranges)

    @classmethod
    def of(cls, uids: Iterable[int]) -> UidSet:
        return cls((uid, uid) for uid in uids)

    @classmethod
    def parse(cls, text: str) -> UidSet:
        ranges = []
        for part in filter(None, text.replace(" ", "").split(",")):
            low, _, high = part.partition(":")
            first, last = int(low), int(high or low)
            if first > last:
                first, last = last, first
            if first < 1:
                raise ValueError(f"UIDs start at 1, not {first}")
            ranges.append((first, last))
        return cls(ranges)

    def __str__(self) -> str:
        return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in self._ranges)

    def __repr__(self) -> str:
        return f"UidSet({str(self)!r})"

    def __len__(self) -> int:
        return sum(b - a + 1 for a, b in self._ranges)

    def __bool__(self) -> bool:
        return bool(self._ranges)

    def __iter__(self) -> Iterator[int]:
        for a, b in self._ranges:
            yield from range(a, b + 1)

    def __contains__(self, uid: object) -> bool:
        if not isinstance(uid, int):
            return False
        i = bisect_right(self._ranges, (uid, float("inf"))) - 1
        return i >= 0 and self._ranges[i][0] <= uid <= self._ranges[i][1]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UidSet) and self._ranges == other._ranges

    def __hash__(self) -> int:
        return hash(tuple(self._ranges))

    @property
    def min(self) -> int | None:
        return self._ranges[0][0] if self._ranges else None

    @property
    def max(self) -> int | None:
        return self._ranges[-1][1] if self._ranges else None

    def union(self, other: UidSet | Iterable[int]) -> UidSet:
        other_ranges = other._ranges if isinstance(other, UidSet) else [(u, u) for u in other]
        return UidSet([*self._ranges, *other_ranges])

    def difference(self, other: UidSet | Iterable[int]) -> UidSet:
        remove = other if isinstance(other, UidSet) else UidSet.of(other)
        result: list[tuple[int, int]] = []
        j = 0
        cuts = remove._ranges
        for a, b in self._ranges:
            start = a
            while j < len(cuts) and cuts[j][1] < start:
                j += 1
            k = j
            while k < len(cuts) and cuts[k][0] <= b:
                c, d = cuts[k]
                if c > start:
                    result.append((start, c - 1))
                start = max(start, d + 1)
                if d >= b:
                    break
                k += 1
            if start <= b:
                result.append((start, b))
        return UidSet(result)

    def intersection(self, other: UidSet) -> UidSet:
        return self.difference(self.difference(other))


def _normalise(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if merged and a <= merged[-1][1] + 1:
            if b > merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged
