"""Restart intensity: at most R restarts in any T seconds, counted over a sliding window."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["RestartIntensity"]


class RestartIntensity:
    """Counts restarts; :meth:`allow` says whether one more stays within the limit (OTP semantics)."""

    def __init__(self, max_restarts: int, within_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_restarts
        self._period = within_seconds
        self._clock = clock
        self._restarts: deque[float] = deque()

    def allow(self) -> bool:
        """Record a restart now; False when it would be restart number R+1 within T seconds."""
        now = self._clock()
        while self._restarts and now - self._restarts[0] >= self._period:
            self._restarts.popleft()
        if len(self._restarts) >= self._max:
            return False
        self._restarts.append(now)
        return True
