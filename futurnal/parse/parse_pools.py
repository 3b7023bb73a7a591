"""Parser pools shared by every mailbox of one process: lent for a folder sync, kept warm between.

A :class:`~.parse_pool.ParsePool` belongs to one caller at a time. Giving each mailbox its own
meant that with hundreds of mailboxes every new message that arrived by IDLE started fresh
interpreters for its mailbox (60-150 ms each, and about 25 MB per worker while warm), and each
mailbox kept a timer thread to stop its idle pool. :class:`ParsePools` lends a warm pool to
whichever folder sync needs one and takes it back afterwards: a process keeps at most ``keep``
idle pools, whatever the number of mailboxes, and one timer closes those unused for
``idle_seconds``. Borrowing never waits: a burst of syncs beyond ``keep`` gets fresh pools, closed
when given back, so new mail in one mailbox is never held up behind another's initial sync.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .parse_pool import DEFAULT_MEMORY_MB, ParsePool, PoolUnavailable

__all__ = ["ParsePools"]


class ParsePools:
    """Thread-safe lender of :class:`ParsePool` objects of one configuration."""

    def __init__(
        self,
        workers: int = 2,
        timeout: float = 60.0,
        memory_mb: int | None = DEFAULT_MEMORY_MB,
        *,
        keep: int = 2,
        idle_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        make_pool: Callable[[], ParsePool] | None = None,
    ) -> None:
        if keep < 0:
            raise ValueError("keep must be zero or more")
        self._make_pool = make_pool or (lambda: ParsePool(workers, timeout, memory_mb))
        self._keep = keep
        self._idle_seconds = idle_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._idle: list[tuple[ParsePool, float]] = []  # (pool, when it came back), oldest first
        self._lent = 0
        self._closed = False
        self._timer: threading.Timer | None = None

    def borrow(self) -> ParsePool:
        """A warm pool if one is idle (the most recently used), else a new one; never waits.

        Raises :class:`PoolUnavailable` once :meth:`close` ran (the process is stopping).
        """
        with self._lock:
            if self._closed:
                raise PoolUnavailable("the parser pools are closed: the service is stopping")
            self._lent += 1
            if self._idle:
                return self._idle.pop()[0]
        return self._make_pool()  # its workers start on its first batch, outside the lock

    def give_back(self, pool: ParsePool, *, healthy: bool = True) -> None:
        """Return a borrowed pool. An unhealthy one (it raised :class:`PoolUnavailable`), one
        beyond ``keep`` idle pools, or one given back after :meth:`close` is closed at once."""
        with self._lock:
            self._lent -= 1
            keep = healthy and not self._closed and len(self._idle) < self._keep
            if keep:
                self._idle.append((pool, self._clock()))
                self._arm_timer()
        if not keep:
            pool.close()

    def counts(self) -> tuple[int, int]:
        """(lent, idle) pools right now: for status and tests."""
        with self._lock:
            return self._lent, len(self._idle)

    def release_idle(self) -> int:
        """Close the pools idle for ``idle_seconds`` or more; returns how many were closed."""
        now = self._clock()
        with self._lock:
            timer, self._timer = self._timer, None  # this call replaces the armed timer
            stale = [pool for pool, since in self._idle if now - since >= self._idle_seconds]
            self._idle = [(pool, since) for pool, since in self._idle if now - since < self._idle_seconds]
            self._arm_timer()
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()
        for pool in stale:
            pool.close()
        return len(stale)

    def close(self) -> None:
        """Close every idle pool and refuse further borrowing; pools still lent are closed when
        given back. No timer outlives this."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            if timer is not threading.current_thread():
                timer.join(timeout=5)
        for pool, _ in idle:
            pool.close()

    def _arm_timer(self) -> None:
        """One timer for all idle pools, due when the oldest has been idle ``idle_seconds``
        (called with the lock held)."""
        if self._timer is not None or not self._idle or self._closed:
            return
        due_in = max(self._idle[0][1] + self._idle_seconds - self._clock(), 0.0)
        self._timer = threading.Timer(due_in, self.release_idle)
        self._timer.daemon = True
        self._timer.name = "parse-pools-release"
        self._timer.start()
