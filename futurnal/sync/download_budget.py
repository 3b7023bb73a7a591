"""A mailbox's download budget: bytes fetched in a rolling 24 hours, against a daily limit.

Gmail allows an account to download 2,500 MB a day by IMAP (Google Workspace Admin Help, "Gmail
bandwidth limits", https://support.google.com/a/answer/1071518) and locks IMAP for up to a day
past it, so a mailbox can carry a limit (``imap add --daily-download-mb``; the Gmail preset sets
one below Google's). When it is used up, a first sync's backfill pauses and goes on at the first
sync after the window allows; new mail is still fetched, and counts.

Bytes are counted by the hour, so the state stays small whatever the traffic; a day is the last
24 whole hours, the current one included.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from futurnal.storage.clock import utc_iso

__all__ = ["BYTES_PER_MB", "GMAIL_DAILY_DOWNLOAD_MB", "DownloadBudget"]

#: A megabyte of ``--daily-download-mb``, as providers count them.
BYTES_PER_MB = 1_000_000

#: The Gmail preset's budget: below the 2,500 MB a day that Google allows, leaving room for the
#: account's other mail programs.
GMAIL_DAILY_DOWNLOAD_MB = 2000

_HOUR = 3600
_DAY_HOURS = 24


class DownloadBudget:
    """Bytes by hour over the last 24 hours; ``save`` is told the hours after each change."""

    def __init__(
        self,
        limit_bytes: int,
        hours: Mapping[str, int] | None = None,
        *,
        save: Callable[[dict[str, int]], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if limit_bytes < 1:
            raise ValueError("a download budget is at least one byte")
        self.limit_bytes = limit_bytes
        self._clock = clock
        self._save = save
        # Keys are strings (hour numbers since the epoch): the state file is JSON.
        self._hours = {int(hour): int(count) for hour, count in (hours or {}).items()}

    def _now_hour(self) -> int:
        return int(self._clock() // _HOUR)

    def _recent(self) -> dict[int, int]:
        first = self._now_hour() - _DAY_HOURS + 1
        return {hour: count for hour, count in self._hours.items() if hour >= first}

    def used(self) -> int:
        """Bytes fetched in the last 24 hours."""
        return sum(self._recent().values())

    def exhausted(self) -> bool:
        return self.used() >= self.limit_bytes

    def spend(self, count: int) -> None:
        """``count`` bytes were just fetched."""
        if count <= 0:
            return
        self._hours = self._recent()
        hour = self._now_hour()
        self._hours[hour] = self._hours.get(hour, 0) + count
        if self._save is not None:
            self._save(self.to_document())

    def resets_at(self) -> datetime | None:
        """When enough of the window's oldest traffic has left it for fetching to go on (None: now)."""
        used = self.used()
        if used < self.limit_bytes:
            return None
        for hour, count in sorted(self._recent().items()):
            used -= count
            if used < self.limit_bytes:
                return datetime.fromtimestamp((hour + _DAY_HOURS) * _HOUR, tz=UTC)
        return None  # unreachable: the window empties eventually

    def to_document(self) -> dict[str, int]:
        return {str(hour): count for hour, count in sorted(self._recent().items())}

    def describe(self) -> dict[str, object]:
        """What ``imap status`` shows: used and limit in MB, and when it resets (if it is used up)."""
        resets = self.resets_at()
        return {
            "limit_mb": round(self.limit_bytes / BYTES_PER_MB, 1),
            "used_mb": round(self.used() / BYTES_PER_MB, 1),
            "exhausted": resets is not None,
            "resets_at": utc_iso(resets) if resets else None,
        }
