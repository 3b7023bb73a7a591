"""Every open IMAP connection of one actor system, so that a stop can cut them all at once.

A fetcher in the middle of a FETCH, or a watcher in IDLE, is blocked in a socket read and cannot
look at a stop flag; waiting for each to time out made a stop take ``read_timeout`` per hung
mailbox. On stop, :meth:`LiveConnections.cut_all` shuts every socket down: each blocked read
returns at once, the sync ends at its batch boundary (what was handed to the sink is still
written), and no new connection is opened afterwards.
"""

from __future__ import annotations

import threading
from typing import Protocol

from .errors import ConnectionFailed

__all__ = ["LiveConnections"]


class Cuttable(Protocol):
    def cut(self) -> None: ...


class LiveConnections:
    """A thread-safe set of open connections; closed for good once :meth:`cut_all` ran."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[Cuttable] = set()
        self._cut = False

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)

    def add(self, connection: Cuttable) -> None:
        """Count a new connection in; refused once the system is stopping."""
        with self._lock:
            if self._cut:
                raise ConnectionFailed("the service is stopping; no new connection is opened")
            self._open.add(connection)

    def discard(self, connection: Cuttable) -> None:
        with self._lock:
            self._open.discard(connection)

    def cut_all(self) -> int:
        """Shut every open connection's socket down; returns how many there were."""
        with self._lock:
            self._cut = True
            connections, self._open = list(self._open), set()
        for connection in connections:
            connection.cut()
        return len(connections)
