"""Which mailboxes the user paused: kept outside the mailbox actors so a restart remembers it."""

from __future__ import annotations

import threading

__all__ = ["PauseBoard"]


class PauseBoard:
    """A thread-safe set of paused mailbox ids, one per actor system.

    A pause lasts until it is resumed or the process stops: it is an operator's "hold on for
    now", not configuration (a schedule of ``@manual`` is the lasting way to stop syncing).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paused: set[str] = set()

    def pause(self, mailbox_id: str) -> bool:
        """Pause ``mailbox_id``; False when it already was."""
        with self._lock:
            if mailbox_id in self._paused:
                return False
            self._paused.add(mailbox_id)
            return True

    def resume(self, mailbox_id: str) -> bool:
        """Resume ``mailbox_id``; False when it was not paused."""
        with self._lock:
            if mailbox_id not in self._paused:
                return False
            self._paused.discard(mailbox_id)
            return True

    def is_paused(self, mailbox_id: str) -> bool:
        with self._lock:
            return mailbox_id in self._paused
