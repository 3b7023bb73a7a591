"""A small publish/subscribe hub so the CLI and embedders can watch progress without polling."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from loguru import logger

__all__ = ["EventBus"]


class EventBus:
    """Calls every subscriber with every published event, on the publisher's thread.

    A subscriber that raises is logged and skipped: watching must never break syncing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[Any], None]] = []

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, event: Any) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception:
                logger.exception("an event subscriber failed; it was skipped")
