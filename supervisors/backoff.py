"""Restart back-off: exponential delays with jitter, capped, reset once a child has stayed up.

A child that dies at once after every restart would otherwise be restarted in a tight loop,
hammering whatever it dies on (an IMAP server, a full disk) until the restart intensity gives up.
Waiting a little longer after each quick death gives transient trouble time to pass; the jitter
keeps sibling mailboxes that died together from reconnecting in lockstep.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BackoffPolicy", "RestartBackoff", "Schedule", "call_later", "fault_retry_policy"]

Schedule = Callable[[float, Callable[[], None]], None]
"""``schedule(delay, fn)``: run ``fn`` once, about ``delay`` seconds from now, on any thread."""


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """How long to wait before restart attempt number ``attempt`` (0-based) of one child.

    Attributes:
        initial: the delay before the first restart after the child had stayed up.
        factor: each quick death multiplies the delay by this much.
        cap: no delay is ever longer than this.
        jitter: up to this fraction of the delay is taken off at random, so delays fall in
            ``[base * (1 - jitter), base]`` and never exceed the cap.
        reset_after: a child that stayed up this many seconds starts again from ``initial``;
            only staying up proves the trouble is over, so a mere successful start does not reset.
    """

    initial: float = 0.1
    factor: float = 2.0
    cap: float = 5.0
    jitter: float = 0.2
    reset_after: float = 30.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.cap < self.initial:
            raise ValueError(f"need 0 <= initial <= cap, got initial={self.initial}, cap={self.cap}")
        if self.factor < 1:
            raise ValueError(f"factor must be at least 1, got {self.factor}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be within [0, 1], got {self.jitter}")
        if self.reset_after < 0:
            raise ValueError(f"reset_after must not be negative, got {self.reset_after}")

    def base_delay(self, attempt: int) -> float:
        """The delay before jitter: ``initial * factor ** attempt``, capped."""
        delay = self.initial
        for _ in range(attempt):  # multiplying step by step cannot overflow, unlike factor ** attempt
            if delay >= self.cap:
                break
            delay *= self.factor
        return min(delay, self.cap)

    def delay(self, attempt: int, unit_random: float) -> float:
        """The delay with jitter; ``unit_random`` is a draw from [0, 1), passed in to keep this pure."""
        return self.base_delay(attempt) * (1.0 - self.jitter * unit_random)


class RestartBackoff:
    """The back-off state of one child: how many times it died without staying up in between."""

    def __init__(
        self,
        policy: BackoffPolicy,
        clock: Callable[[], float] = time.monotonic,
        unit_random: Callable[[], float] = random.random,
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._unit_random = unit_random
        self._attempts = 0
        self._up_since: float | None = None

    @property
    def attempts(self) -> int:
        """Deaths (and failed starts) since the child last stayed up for ``reset_after``."""
        return self._attempts

    def started(self) -> None:
        """The child is up (it answered its ping); its uptime counts from now."""
        self._up_since = self._clock()

    def next_delay(self) -> float:
        """The child died or failed to start: how long to wait before the next attempt."""
        if self._up_since is not None and self._clock() - self._up_since >= self._policy.reset_after:
            self._attempts = 0
        self._up_since = None  # a failed start must not look like uptime to the next call
        delay = self._policy.delay(self._attempts, self._unit_random())
        self._attempts += 1
        return delay


def call_later(delay: float, fn: Callable[[], None]) -> None:
    """The default :data:`Schedule`: a daemon timer, so a pending restart never holds up exit."""
    timer = threading.Timer(delay, fn)
    timer.daemon = True
    timer.start()


#: The first retry's delay after a local fault, in seconds (default 5): short for tests.
def fault_retry_policy(initial: float = 5.0) -> BackoffPolicy:
    """Retries after a fault outside the child (a full disk, a missing file): ``initial`` seconds,
    doubling to 5 minutes.

    Slower than restarts after crashes: such a fault lasts until someone acts, and each try has
    a cost. ``reset_after=0``: the first try that gets through (``started``) ends the back-off,
    so the next fault starts again from the first delay.
    """
    return BackoffPolicy(initial=initial, factor=2.0, cap=max(300.0, initial), jitter=0.2, reset_after=0.0)
