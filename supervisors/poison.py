"""Poison counting: the same unit of work in flight at N deaths of one child is poison."""

from __future__ import annotations

from collections.abc import Hashable

from .protocol import PoisonMessage

__all__ = ["PoisonCounter"]


class PoisonCounter:
    """Counts deaths per ``(child id, work in flight)``; says when a key reaches the threshold.

    One death with a message in flight may be bad luck (a dropped connection); the same message in
    flight at every death is the message's fault, and restarting will not help until it is set
    aside. Deaths with nothing in flight are never poison. The work is any hashable key, never
    looked into. Only the ``max_keys`` most recently counted keys are kept, so a service that runs
    for months does not grow without bound.
    """

    def __init__(self, threshold: int = 3, max_keys: int = 1024) -> None:
        if threshold < 1:
            raise ValueError(f"poison threshold must be at least 1, got {threshold}")
        self._threshold = threshold
        self._max_keys = max_keys
        self._deaths: dict[tuple[str, Hashable], int] = {}  # insertion order: least recently counted first

    def record(self, child_id: str, in_flight: Hashable | None) -> PoisonMessage | None:
        """Count one death; the notice to send when this key just reached the threshold.

        The key's count starts again from zero after a notice, so a key that keeps killing the
        child after being set aside is reported again rather than never.
        """
        if in_flight is None:
            return None
        key = (child_id, in_flight)
        crashes = self._deaths.pop(key, 0) + 1  # re-inserted last: the most recently counted
        self._deaths[key] = crashes
        if len(self._deaths) > self._max_keys:
            del self._deaths[next(iter(self._deaths))]
        if crashes < self._threshold:
            return None
        del self._deaths[key]
        return PoisonMessage(child_id, in_flight, crashes)
