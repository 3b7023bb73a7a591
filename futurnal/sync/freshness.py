"""How current a folder's copy is: the freshness that ``imap status`` shows, as plain functions.

Users of other sync tools find out weeks later that a connection "looked fine but stopped
delivering". The one fact that proves our copy is current is a successful sync, so a folder is
stale when its last successful sync is older than ``watch.stale_after_seconds`` (or there was
none). The last server event is shown beside it: a recent event with an old success means the
server announced changes that have not been synced yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from futurnal.storage.clock import parse_utc

__all__ = [
    "Freshness", "WATCH_IDLE", "WATCH_NONE", "WATCH_NOT_RUNNING", "WATCH_OVER_BUDGET", "describe_watch", "freshness",
    "watch_plan",
]

WATCH_IDLE = "watching by IDLE"
WATCH_OVER_BUDGET = "polling (over connection budget)"
WATCH_NONE = "not watched"
#: No process runs the mailbox: nothing watches it, whatever its plan.
WATCH_NOT_RUNNING = "not running"


@dataclass(frozen=True, slots=True)
class Freshness:
    """``age_seconds``: since the last successful sync (None: never synced)."""

    stale: bool
    age_seconds: float | None

    def describe(self) -> str:
        if self.age_seconds is None:
            return "stale (never synced)"
        return f"{'stale' if self.stale else 'fresh'} ({_duration(self.age_seconds)} ago)"


def freshness(last_success: str | None, *, now: datetime, stale_after_seconds: float) -> Freshness:
    """Whether a folder last synced successfully at ``last_success`` is stale at ``now`` (aware)."""
    if last_success is None:
        return Freshness(True, None)
    age = max((now - parse_utc(last_success)).total_seconds(), 0.0)
    return Freshness(age > stale_after_seconds, age)


def watch_plan(watch: Sequence[str], connection_limit: int) -> dict[str, str]:
    """How each folder of ``watch`` is watched under a budget of ``connection_limit`` connections.

    One connection stays for the fetcher; each watched folder takes one more. The rest are
    picked up by the mailbox's scheduled syncs (polling on the schedule).
    """
    room = max(connection_limit - 1, 0)
    return {folder: WATCH_IDLE if i < room else WATCH_OVER_BUDGET for i, folder in enumerate(watch)}


def describe_watch(planned: str, last_mode: str | None) -> str:
    """The plan, corrected by what the folder's watcher last found on the server.

    NOTIFY watches every watched folder on one connection, so it lifts the budget's limit.
    """
    if planned == WATCH_NONE:
        return planned
    if last_mode == "notify":
        return "watching by NOTIFY"
    if planned == WATCH_IDLE and last_mode == "polling":
        return "polling (server has no IDLE)"
    return planned


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"
