"""How fast new IMAP connections reach one server host: a turn per login, a token bucket per host.

A service with hundreds of mailboxes on one provider would, at start, open every connection in
the same second: hundreds of TLS handshakes and password checks, which providers answer with
refused logins or a throttled account. Every connection of one actor system first takes a turn
here: up to ``burst`` at once on a host, then ``per_second``. Turns are handed out in the order
they were asked for (each caller reserves its time, then waits for it), so nobody is starved.

The limit is per host (``host_key``: lower case, without a trailing dot), whatever the port: the
same machines answer IMAPS and STARTTLS. A wait ends early, with
:class:`~.errors.ServiceStopping`, when :meth:`LoginRateLimiter.stop` runs: a stopping service
does not sleep through its queue of logins. The clock and the wait are injected, so the tests
run without real time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

from .errors import ServiceStopping

__all__ = ["DEFAULT_LOGIN_BURST", "DEFAULT_LOGINS_PER_SECOND", "LoginRateLimiter", "host_key"]

#: ``[network] logins_per_second_per_host``: 1,000 mailboxes with a watcher each (2,000
#: connections) on one provider are all connected after 200 seconds.
DEFAULT_LOGINS_PER_SECOND = 10.0
#: ``[network] login_burst_per_host``: a few mailboxes (4 connections each at most, the default
#: budget) start without any wait.
DEFAULT_LOGIN_BURST = 10

#: ``wait(stop, seconds)``: block up to ``seconds`` or until ``stop`` is set; True when it is.
Wait = Callable[[threading.Event, float], bool]


def host_key(host: str) -> str:
    """The name logins are counted under: ``IMAP.Example.org.`` and ``imap.example.org`` are one host."""
    return host.strip().rstrip(".").lower()


class LoginRateLimiter:
    """Per-host login turns for one actor system; thread-safe.

    The bucket of each host is kept as the time its next login would be due if logins came
    exactly ``1 / per_second`` apart (the generic cell rate algorithm): a login may go up to
    ``burst - 1`` intervals ahead of that time, so an idle host lets ``burst`` through at once and
    the bucket refills by itself. ``per_second == 0`` means no limit.
    """

    def __init__(
        self,
        per_second: float = DEFAULT_LOGINS_PER_SECOND,
        burst: int = DEFAULT_LOGIN_BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
        wait: Wait = threading.Event.wait,
    ) -> None:
        if per_second < 0:
            raise ValueError(f"logins per second must be 0 (no limit) or more, not {per_second}")
        if burst < 1:
            raise ValueError(f"a login burst must allow at least 1 login, not {burst}")
        self.per_second = per_second
        self.burst = burst
        self._interval = 1.0 / per_second if per_second else 0.0
        self._clock = clock
        self._wait = wait
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        #: Per host: when its next login is due at the steady rate. One float per host ever seen.
        self._due: dict[str, float] = {}
        self._waiting: Counter[str] = Counter()

    def take_turn(self, host: str, who: str = "") -> float:
        """Block until a login to ``host`` may start; returns the seconds waited.

        ``who`` (a mailbox id) is counted in :meth:`waiting` while it waits. Raises
        :class:`~.errors.ServiceStopping` at once once :meth:`stop` has run, or as soon as it runs.
        """
        self._refuse_if_stopped()
        if not self._interval:
            return 0.0
        key = host_key(host)
        with self._lock:
            now = self._clock()
            due = max(self._due.get(key, now), now)
            turn = max(now, due - (self.burst - 1) * self._interval)
            self._due[key] = due + self._interval
            if turn <= now:
                return 0.0
            self._waiting[who] += 1
        try:
            while (left := turn - self._clock()) > 0:
                if self._wait(self._stopped, left):
                    self._refuse_if_stopped()
        finally:
            with self._lock:
                self._waiting[who] -= 1
                if not self._waiting[who]:
                    del self._waiting[who]
        return turn - now

    def waiting(self) -> dict[str, int]:
        """How many logins wait for their turn now, by ``who``."""
        with self._lock:
            return dict(self._waiting)

    def stop(self) -> None:
        """End every wait now and refuse every turn from now on (the system is stopping)."""
        self._stopped.set()

    def _refuse_if_stopped(self) -> None:
        if self._stopped.is_set():
            raise ServiceStopping()
