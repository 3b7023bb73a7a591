"""How far a folder's backfill (its first sync, newest mail first) has come, and when it will end.

From the folder's state alone, so ``imap status`` and the running process's ``ctl status`` say
the same: messages stored of the folder's count, bytes, the rate since the backfill began (pauses
included, so it is the rate the user actually gets), the time left at that rate, and, when the
mailbox has a download budget, the day that budget lets it end, whichever is later.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from futurnal.storage.clock import parse_utc, utc_iso

from .download_budget import BYTES_PER_MB, DownloadBudget

__all__ = ["backfill_progress"]

_DAY = 86_400.0


def backfill_progress(state: dict[str, Any], stored: int, now: datetime,
                      budget: DownloadBudget | None = None) -> dict[str, Any] | None:
    """The backfill of the folder whose state document is ``state`` (``stored`` of its messages
    are in the store), or None when it has none under way."""
    if int(state.get("backfill_floor") or 0) <= 1:
        return None
    total = max(int(state.get("messages") or 0), stored)
    fetched, size = int(state.get("backfill_fetched") or 0), int(state.get("backfill_bytes") or 0)
    started = state.get("backfill_started")
    elapsed = (now - parse_utc(started)).total_seconds() if started else 0.0
    rate = fetched / elapsed if elapsed > 0 and fetched else None  # messages a second
    left = max(total - stored, 0)
    progress: dict[str, Any] = {
        "floor": state["backfill_floor"], "done": stored, "total": total, "left": left,
        "mb_done": round(size / BYTES_PER_MB, 1),
        # The folder's sizes are asked for window by window, so the rest is estimated by the
        # average message so far.
        "mb_total": round((size + left * size / fetched) / BYTES_PER_MB, 1) if fetched else None,
        "per_minute": round(rate * 60, 1) if rate else None,
        "eta": None, "limited_by": None,
    }
    if rate is None:
        return progress
    ends = now + timedelta(seconds=left / rate)
    progress["limited_by"] = "rate"
    if budget is not None and fetched:
        left_bytes = left * size / fetched
        resets = budget.resets_at()
        # Each day the budget lets a day's worth through, from when it next frees.
        by_budget = (resets or now) + timedelta(seconds=_DAY * left_bytes / budget.limit_bytes)
        if by_budget > ends:
            ends, progress["limited_by"] = by_budget, "budget"
    progress["eta"] = utc_iso(ends)
    return progress
