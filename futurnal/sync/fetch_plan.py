"""How to walk a folder's new UIDs in bounded pieces, so memory never grows with folder size.

Two levels: *windows* over the UID space (each asks the server only for sizes), and *batches*
inside a window (each fetches full messages, bounded by count and by bytes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from futurnal.imap.wire_limits import DEFAULT_MAX_MESSAGE_BYTES

__all__ = ["BatchLimits", "DescendingWindows", "UidWindow", "UidWindows", "plan_batches"]


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """Bounds of one UID FETCH of full messages, and of one size-discovery window."""

    max_messages: int = 200
    #: A folder sync holds about three batches' worth at its peak (the one being read, the one
    #: being parsed, and the parser's answers to it), and ``sync.max_concurrent`` syncs run at
    #: once: 8 MiB keeps two of them within the service's memory target (150 MB); 16 MiB did not
    #: (2 x 10,000 messages of the benchmark: 162-172 MB peak RSS, 144-150 MB with 8 MiB).
    max_bytes: int = 8 * 1024 * 1024
    window_uids: int = 2000
    max_window_uids: int = 128_000
    #: A message above this is never downloaded: its headers go to the quarantine with its size.
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    #: A folder's first sync fetches its newest mail first, in windows going down (``[sync] newest_first``).
    newest_first: bool = True

    def __post_init__(self) -> None:
        if self.max_messages < 1 or self.max_bytes < 1 or self.window_uids < 1 or self.max_message_bytes < 1:
            raise ValueError("batch limits must be positive")


@dataclass(frozen=True, slots=True)
class UidWindow:
    """UIDs ``first..last`` inclusive; ``last`` None means ``*`` (server did not say UIDNEXT)."""

    first: int
    last: int | None

    @property
    def criteria(self) -> str:
        return f"{self.first}:{'*' if self.last is None else self.last}"


class UidWindows:
    """Walks every UID above ``after_uid`` that existed at SELECT time, one window at a time.

    After each window the caller says how many messages it held: a sparse UID space (old mail
    deleted) widens the next window, a dense one narrows it, so each answer stays small.
    """

    def __init__(self, after_uid: int, uidnext: int | None, limits: BatchLimits) -> None:
        self._next_first = after_uid + 1
        self._uidnext = uidnext
        self._span = limits.window_uids
        self._limits = limits
        self._done = False

    def next_window(self) -> UidWindow | None:
        if self._done:
            return None
        if self._uidnext is None:  # the server did not say: one open-ended window
            self._done = True
            return UidWindow(self._next_first, None)
        if self._next_first >= self._uidnext:
            self._done = True
            return None
        last = min(self._next_first + self._span - 1, self._uidnext - 1)
        window = UidWindow(self._next_first, last)
        self._next_first = last + 1
        return window

    def skip_to(self, uid: int) -> None:
        """Nothing exists below ``uid`` (a UID SEARCH said so): the next window starts there."""
        self._next_first = max(self._next_first, uid)

    def record(self, returned: int) -> None:
        self._span = _next_span(self._span, returned, self._limits)


class DescendingWindows:
    """Walks the UIDs below ``floor`` from the top down, one window at a time: how a first sync
    fetches the newest mail first. Windows widen over a sparse UID space like :class:`UidWindows`'."""

    def __init__(self, floor: int, limits: BatchLimits) -> None:
        self._floor = floor
        self._span = limits.window_uids
        self._limits = limits

    def next_window(self) -> UidWindow | None:
        if self._floor <= 1:
            return None
        first = max(self._floor - self._span, 1)
        window = UidWindow(first, self._floor - 1)
        self._floor = first
        return window

    def skip_to(self, floor: int) -> None:
        """Nothing exists from ``floor`` up to where the walk is (a UID SEARCH said so)."""
        self._floor = min(self._floor, floor)

    def record(self, returned: int) -> None:
        self._span = _next_span(self._span, returned, self._limits)


def _next_span(span: int, returned: int, limits: BatchLimits) -> int:
    """The next window's width: a sparse answer (old mail deleted) widens it, a dense one narrows
    it, so each answer stays small."""
    if returned < limits.window_uids // 4:
        return min(span * 2, limits.max_window_uids)
    if returned > limits.window_uids:
        return max(span // 2, limits.window_uids)
    return span


def plan_batches(sizes: Mapping[int, int], limits: BatchLimits) -> list[list[int]]:
    """Group UIDs, in ascending order, into batches within the count and byte limits.

    A message larger than ``max_bytes`` travels alone rather than being skipped.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    current_bytes = 0
    for uid in sorted(sizes):
        size = max(sizes[uid], 0)
        if current and (len(current) >= limits.max_messages or current_bytes + size > limits.max_bytes):
            batches.append(current)
            current, current_bytes = [], 0
        current.append(uid)
        current_bytes += size
    if current:
        batches.append(current)
    return batches
