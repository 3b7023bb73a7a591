"""How long a mailbox waits when its provider says so, and how it slows down when throttled.

Plain policy, no I/O: the fetcher asks :class:`HoldPolicy` for the end of a wait after a
:class:`~futurnal.imap.errors.ProviderLimited`, stores it as the mailbox's ``throttled until``,
and contacts the server again only after it; :class:`Slowdown` turns Gmail's ``[THROTTLED]``
into smaller batches with a pause between them.

- ``[OVERQUOTA]``: Gmail does not say when its limit window ends (its bandwidth limits are
  counted per day). The wait is ``overquota_wait_seconds`` (``[network]``, one hour by default),
  doubling each time the answer repeats without a successful sync between, up to a day.
- Office 365's suggested backoff: exactly what it suggests (plus the jitter below).
- ``[UNAVAILABLE]``, ``[LIMIT]``, and too many connections once the connection budget is down to
  one: ``retry_seconds`` (5 s), doubling while repeated, up to 10 minutes.

Every wait gets up to a tenth more, at random (at least one second's worth), so mailboxes held by
one answer do not all log in again in the same second.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from futurnal.imap.server_answers import BackoffFor, Limit, OverQuota, TooManyConnections, Unavailable
from futurnal.storage.clock import parse_utc, utc_iso
from futurnal.storage.sync_state import FolderStateStore

from .fetch_plan import BatchLimits

__all__ = ["DEFAULT_OVERQUOTA_WAIT", "DEFAULT_THROTTLE_PAUSE", "Hold", "HoldPolicy", "MailboxHold", "MailboxThrottled",
           "Slowdown", "held_text", "seconds_until", "verdict_kind"]

#: ``[network] overquota_wait_seconds``: an hour; Gmail names no end to its window.
DEFAULT_OVERQUOTA_WAIT = 3600.0
#: ``[network] throttle_pause_seconds``: the first pause between batches once throttled.
DEFAULT_THROTTLE_PAUSE = 1.0
_MAX_OVERQUOTA_WAIT = 86_400.0
_RETRY_SECONDS = 5.0
_MAX_RETRY_WAIT = 600.0


@dataclass(frozen=True, slots=True)
class Hold:
    """A wait: ``seconds`` from now; ``repeats`` holds in a row (this one included)."""

    seconds: float
    repeats: int
    reason: str


class HoldPolicy:
    """How long each limiting answer holds a mailbox back (see the module's text)."""

    def __init__(self, overquota_wait: float = DEFAULT_OVERQUOTA_WAIT, retry_seconds: float = _RETRY_SECONDS,
                 *, rng: Callable[[], float] = random.random) -> None:
        self.overquota_wait = overquota_wait
        self.retry_seconds = retry_seconds
        self._rng = rng

    def hold(self, verdict: object, reason: str, repeats_before: int = 0) -> Hold:
        """The wait after ``verdict``, when ``repeats_before`` holds came before it in a row."""
        repeats = repeats_before + 1
        growth = 2 ** min(repeats_before, 16)
        base: float
        if isinstance(verdict, OverQuota):
            base = min(self.overquota_wait * growth, max(self.overquota_wait, _MAX_OVERQUOTA_WAIT))
        elif isinstance(verdict, BackoffFor):
            base = verdict.seconds
        else:
            base = min(self.retry_seconds * growth, _MAX_RETRY_WAIT)
        jitter = max(base * 0.1, 1.0) * self._rng()
        return Hold(base + jitter, repeats, reason)


class Slowdown:
    """Gmail's ``[THROTTLED]`` as a level: each batch that heard it goes one level up, to at most
    ``max_level``; four batches in a row without it go one level down. At level ``n`` a batch
    holds at most ``max_messages / 2**n`` messages (at least one) and a pause of
    ``pause * 2**(n-1)`` seconds comes before each."""

    QUIET_BATCHES_PER_STEP = 4

    def __init__(self, pause: float = DEFAULT_THROTTLE_PAUSE, max_level: int = 6) -> None:
        self.base_pause = pause
        self.max_level = max_level
        self.level = 0
        self._quiet = 0

    def heard(self, throttled: int) -> None:
        """One batch is done; ``throttled`` is how many ``[THROTTLED]`` answers it got."""
        if throttled:
            self.level = min(self.level + 1, self.max_level)
            self._quiet = 0
            return
        if self.level:
            self._quiet += 1
            if self._quiet >= self.QUIET_BATCHES_PER_STEP:
                self.level -= 1
                self._quiet = 0

    def pause(self) -> float:
        return self.base_pause * 2 ** (self.level - 1) if self.level else 0.0

    def limits(self, limits: BatchLimits) -> BatchLimits:
        if not self.level:
            return limits
        return replace(limits, max_messages=max(1, limits.max_messages >> self.level))


def verdict_kind(verdict: object) -> str:
    """The short name of a limiting verdict, as status and the audit log show it."""
    kinds = {OverQuota: "overquota", BackoffFor: "backoff", TooManyConnections: "too-many-connections",
             Unavailable: "unavailable", Limit: "limit"}
    return next((name for kind, name in kinds.items() if isinstance(verdict, kind)), "limited")


@dataclass(frozen=True, slots=True)
class MailboxThrottled:
    """Event: the provider holds ``mailbox`` back; nothing is sent to its server before ``until``."""

    mailbox: str
    kind: str
    until: str
    reason: str
    repeats: int


class MailboxHold:
    """A mailbox's hold, kept in its state file so a restart of the process keeps it too.

    :meth:`limited` stores the wait :class:`HoldPolicy` gives (``until`` rounded up to the second,
    so nothing happens before the time shown); :meth:`active` is the hold while it lasts; a sync
    that gets through :meth:`cleared` it, and the next limit counts from the start again.
    """

    def __init__(self, states: FolderStateStore, policy: HoldPolicy,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._states = states
        self._policy = policy
        self._now = now

    def active(self) -> dict[str, Any] | None:
        """The stored hold while its ``until`` is ahead, else None."""
        hold = self._states.throttled()
        return hold if hold is not None and self.remaining(hold) > 0 else None

    def remaining(self, hold: dict[str, Any]) -> float:
        """Seconds until ``hold`` ends (0 when it has)."""
        try:
            return max((parse_utc(hold["until"]) - self._now()).total_seconds(), 0.0)
        except (KeyError, ValueError):
            return 0.0

    def limited(self, verdict: object, reason: str) -> dict[str, Any]:
        """Store the hold after ``verdict`` (``reason``: what the server said) and return it."""
        before = self._states.throttled()
        repeats = int(before.get("repeats", 0)) if before is not None else 0
        wait = self._policy.hold(verdict, reason, repeats)
        now = self._now()
        until = now + timedelta(seconds=wait.seconds)
        until = until.replace(microsecond=0) + timedelta(seconds=1) if until.microsecond else until
        hold = {"reason": reason, "kind": verdict_kind(verdict), "since": utc_iso(now), "until": utc_iso(until),
                "repeats": wait.repeats}
        self._states.set_throttled(hold)
        return hold

    def cleared(self) -> None:
        """A sync got through: the hold and its repeats are over (no write when there was none)."""
        self._states.set_throttled(None)


def held_text(hold: dict[str, Any]) -> str:
    """One line for a user: ``throttled until <time> (<kind>): <reason>``."""
    return f"throttled until {hold['until']} ({hold.get('kind', 'limited')}): {hold['reason']}"


def seconds_until(stamp: str, now: datetime | None = None) -> float:
    """Seconds from ``now`` to a UTC stamp, rounded up, never below 0."""
    delta = (parse_utc(stamp) - (now or datetime.now(UTC))).total_seconds()
    return float(max(math.ceil(delta), 0))
