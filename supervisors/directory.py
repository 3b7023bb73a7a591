"""Current actor refs by name: a restart makes a new actor, so nobody keeps a ref for long."""

from __future__ import annotations

import threading
from typing import Any

import pykka

__all__ = ["ActorDirectory"]


class ActorDirectory:
    """Thread-safe ``name -> ActorRef`` map, written by supervisors, read by everyone.

    A supervisor publishes each child under its child id while it runs and takes it out when it
    stops or dies; the names themselves are the application's.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refs: dict[str, pykka.ActorRef[Any]] = {}

    def set(self, name: str, ref: pykka.ActorRef[Any]) -> None:
        with self._lock:
            self._refs[name] = ref

    def remove(self, name: str) -> None:
        with self._lock:
            self._refs.pop(name, None)

    def get(self, name: str) -> pykka.ActorRef[Any] | None:
        """The live actor registered under ``name``, or None while it is down or restarting."""
        with self._lock:
            ref = self._refs.get(name)
        return ref if ref is not None and ref.is_alive() else None

    def names(self, prefix: str = "") -> list[str]:
        with self._lock:
            return sorted(name for name in self._refs if name.startswith(prefix))
