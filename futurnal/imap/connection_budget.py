"""A per-mailbox limit on simultaneous IMAP connections, shared by the fetcher and the watchers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from futurnal.storage.clock import utc_iso

from .errors import ConnectionFailed

__all__ = ["ConnectionBudget"]


class ConnectionBudget:
    """Counts open connections of one mailbox against a limit.

    Providers cap them (Gmail at 15 per account, shared with every other client the user runs),
    and going over gets connections refused or the account throttled, so the service stays well
    below: a connection that would exceed the budget waits for one to close, then gives up.
    """

    def __init__(self, limit: int, clock: Callable[[], float] = time.time) -> None:
        if limit < 1:
            raise ValueError(f"a connection budget must allow at least 1 connection, not {limit}")
        self.limit = limit
        self._clock = clock
        self._held_until = 0.0  # the provider's hold (seconds since the epoch): no connection before
        self._held_why = ""
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._in_use = 0
        self._owed = 0  # slots taken away by lower() while in use: kept at their release

    def lower(self) -> bool:
        """One connection fewer from now on, never below one: the provider refused a connection
        as one too many (its cap counts the user's other mail programs too). A slot in use is
        taken away when it is released. False when the budget is already down to one."""
        with self._lock:
            if self.limit <= 1:
                return False
            self.limit -= 1
            if not self._slots.acquire(blocking=False):
                self._owed += 1
            return True

    def hold(self, until: float, why: str) -> None:
        """The provider limited the mailbox: no new connection of it (fetcher or watcher) before
        ``until``, so a watcher reconnecting meanwhile does not log in either."""
        with self._lock:
            self._held_until, self._held_why = until, why

    def release_hold(self) -> None:
        with self._lock:
            self._held_until, self._held_why = 0.0, ""

    @property
    def in_use(self) -> int:
        with self._lock:
            return self._in_use

    def acquire(self, timeout: float) -> None:
        with self._lock:
            held, why = self._held_until, self._held_why
        if self._clock() < held:
            until = utc_iso(datetime.fromtimestamp(held, UTC))
            raise ConnectionFailed(f"the provider holds this mailbox back until {until}: {why}")
        if not self._slots.acquire(timeout=timeout):
            raise ConnectionFailed(
                f"all {self.limit} connection(s) allowed for this mailbox are in use "
                "(network.max_connections_per_mailbox)"
            )
        with self._lock:
            self._in_use += 1

    def release(self) -> None:
        with self._lock:
            self._in_use -= 1
            if self._owed:
                self._owed -= 1
                return
        self._slots.release()
