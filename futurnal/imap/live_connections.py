"""Every open IMAP connection of one actor system, so that a stop can cut them all at once.

A fetcher in the middle of a FETCH, or a watcher in IDLE, is blocked in a socket read and cannot
look at a stop flag; waiting for each to time out made a stop take ``read_timeout`` per hung
mailbox. On stop, :meth:`LiveConnections.cut_all` shuts every socket down: each blocked read
returns at once, the sync ends at its batch boundary (what was handed to the sink is still
written), and no new connection is opened afterwards.

It is also where a new connection takes its login turn (:mod:`.login_rate`), so that the same
stop ends the waits of connections not yet opened, and what ``ctl status`` counts per mailbox:
its open connections and those waiting for their turn.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Protocol

from .errors import ServiceStopping
from .login_rate import LoginRateLimiter

__all__ = ["LiveConnections"]


class Cuttable(Protocol):
    def cut(self) -> None: ...


class LiveConnections:
    """A thread-safe set of open connections, each with its owner (a mailbox id); closed for
    good once :meth:`cut_all` ran. ``logins`` paces new connections; without it, none waits."""

    def __init__(self, logins: LoginRateLimiter | None = None) -> None:
        self._lock = threading.Lock()
        self._open: dict[Cuttable, str] = {}
        self._cut = False
        self._logins = logins

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)

    def take_turn(self, host: str, owner: str = "") -> None:
        """Wait until a new connection to ``host`` may log in; refused once the system is stopping,
        and a wait in progress ends as soon as it does."""
        with self._lock:
            if self._cut:
                raise ServiceStopping()
        if self._logins is not None:
            self._logins.take_turn(host, owner)

    def add(self, connection: Cuttable, owner: str = "") -> None:
        """Count a new connection in; refused once the system is stopping."""
        with self._lock:
            if self._cut:
                raise ServiceStopping()
            self._open[connection] = owner

    def discard(self, connection: Cuttable) -> None:
        with self._lock:
            self._open.pop(connection, None)

    def open_by_owner(self) -> dict[str, int]:
        """How many connections are open now, by owner."""
        with self._lock:
            return dict(Counter(self._open.values()))

    def waiting_by_owner(self) -> dict[str, int]:
        """How many new connections wait for their login turn now, by owner."""
        return self._logins.waiting() if self._logins is not None else {}

    def cut_all(self) -> int:
        """Shut every open connection's socket down, and end every wait for a login turn;
        returns how many connections were open."""
        with self._lock:
            self._cut = True
            connections, self._open = list(self._open), {}
        if self._logins is not None:
            self._logins.stop()
        for connection in connections:
            connection.cut()
        return len(connections)
