"""Which watched folders wait out a back-off before their watcher connects again.

A watcher whose connection broke says so (``disconnected``) and tries again after a growing,
jittered delay; it says ``connected`` once it is back, and ``needs-reauth`` or ``not-possible``
when it gives up. Following those events on the event bus tells ``ctl status`` which mailboxes
wait to connect, without asking any actor.
"""

from __future__ import annotations

import threading
from collections import Counter

from futurnal.imap.idle_watch import WatchEvent

__all__ = ["ReconnectBoard"]

#: What a watcher says when it stops waiting: it is connected again, or gave up for good.
_BACK = frozenset({"connected", "needs-reauth", "not-possible"})


class ReconnectBoard:
    """A thread-safe set of (mailbox, folder) whose watcher lost its connection and has not got
    it back, one per actor system; fed with every event (:meth:`seen` is an event-bus subscriber)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: set[tuple[str, str]] = set()

    def seen(self, event: object) -> None:
        if not isinstance(event, WatchEvent):
            return
        with self._lock:
            if event.kind == "disconnected":
                self._waiting.add((event.mailbox, event.folder))
            elif event.kind in _BACK:
                self._waiting.discard((event.mailbox, event.folder))

    def forget(self, mailbox_id: str) -> None:
        """The mailbox's watchers are gone (stopped, parked) or start afresh: none waits any more."""
        with self._lock:
            self._waiting = {key for key in self._waiting if key[0] != mailbox_id}

    def waiting(self) -> dict[str, int]:
        """How many watched folders wait to reconnect, by mailbox."""
        with self._lock:
            return dict(Counter(mailbox for mailbox, _folder in self._waiting))
