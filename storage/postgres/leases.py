"""Mailbox leases: which process runs which mailbox, when several processes share one database.

Each registered mailbox has one row in ``mailbox_leases``: its owner (a process id), when the
lease expires (the database's clock, ``now()``, never a host's), and a fencing token that grows by
one at every change of owner. A process renews its leases by heartbeat well within the lease time;
one that misses its renewals stops its mailboxes' actors by itself (see :meth:`LeaseBook.safe`),
and the others take the expired leases over. Every write for a mailbox checks the token it was
given inside the write's own transaction (:mod:`.fencing`), so a late write of a stale owner is
refused by the database.

Why a lease row rather than a session advisory lock: an advisory lock dies with its connection,
so a process whose connection blinked would lose its mailboxes at once, and one whose TCP
connection hangs without closing keeps them for as long as the kernel takes to notice (minutes).
A row with an expiry makes the hand-over time the configured lease, whatever the network does, and
carries the token that fences a stale owner's writes.

Balance: a process takes free or expired mailboxes up to its share, the registered mailboxes
divided by the live processes (rounded up, and never above its own limit), and gives back what it
holds beyond that share, so N processes share M mailboxes evenly within a few heartbeats.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from .fencing import check_tokens
from .schema import connect

__all__ = ["DEFAULT_LEASE_SECONDS", "LeaseBook", "LeaseHolder", "LeaseRound"]

DEFAULT_LEASE_SECONDS = 20.0


def _boot_clock() -> float:
    """Seconds since boot, suspended time included (``CLOCK_BOOTTIME``): after a host or VM wakes
    from suspend, its leases count as old as they are, not as old as when it slept."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """Who holds one mailbox's lease, as ``ctl status`` shows it."""

    mailbox: str
    process: str | None  # None: nobody (free, or expired and not yet taken over)
    host: str | None
    pid: int | None
    expires_at: datetime | None
    token: int

    @property
    def held(self) -> bool:
        return self.process is not None


@dataclass(frozen=True, slots=True)
class LeaseRound:
    """What one heartbeat found and did: mailboxes newly taken (with their tokens), the ones this
    process should give back to reach its share, and the ones it lost to another process."""

    taken: dict[str, int]
    surplus: tuple[str, ...]
    lost: tuple[str, ...]
    processes: int
    share: int


class LeaseBook:
    """This process's leases in the database at ``url``: heartbeat, take, give back, fence.

    Thread-safe: the heartbeat runs on one thread, the fence is asked from the sink's and the
    fetchers' threads (inside their own transactions, on their own connections).
    """

    def __init__(self, url: str, *, lease_seconds: float = DEFAULT_LEASE_SECONDS, max_mailboxes: int | None = None,
                 host: str | None = None, clock: Callable[[], float] = _boot_clock) -> None:
        if lease_seconds < 3:
            raise ValueError(f"a lease must last at least 3 seconds, not {lease_seconds}")
        self.url = url
        self.lease_seconds = lease_seconds
        self.max_mailboxes = max_mailboxes
        self.process_id = uuid.uuid4().hex
        self.host = host or socket.gethostname()
        self.pid = os.getpid()
        self._clock = clock
        self._lock = threading.Lock()  # the tokens and the time of the last heartbeat
        self._db_lock = threading.RLock()  # the connection: one transaction or query at a time
        self._tokens: dict[str, int] = {}
        self._renewed_at: float | None = None  # when the last successful heartbeat began (``clock``)
        self._generation = 0  # one more at each forget(): a heartbeat begun before one installs nothing
        self._holders_connection: psycopg.Connection[tuple[Any, ...]] | None = None
        self._holders_lock = threading.Lock()
        self._connection: psycopg.Connection[tuple[Any, ...]] | None = None

    # -- the fence (see .fencing) -----------------------------------------------------------------

    def check(self, db: psycopg.Connection[Any], mailboxes: Collection[str]) -> None:
        """Raise ``LeaseLost`` unless this process still holds every one of ``mailboxes``'s leases."""
        check_tokens(db, self.process_id, self.tokens(), mailboxes)

    def tokens(self) -> dict[str, int]:
        with self._lock:
            return dict(self._tokens)

    def held(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._tokens)

    # -- the heartbeat ----------------------------------------------------------------------------

    def safe(self) -> bool:
        """Whether this process's leases are surely still its own: the last successful heartbeat
        began less than half a lease ago. Past that, its mailboxes must be stopped now, so they are
        stopped before the lease can expire and another process take them over."""
        with self._lock:
            renewed = self._renewed_at
        return renewed is not None and self._clock() - renewed < self.lease_seconds / 2

    def heartbeat(self, registered: Collection[str], *, take: bool = True) -> LeaseRound:
        """One round, one transaction: say this process is alive, renew its leases, note the ones
        lost, and take free or expired ones among ``registered`` up to its share (``take`` False:
        none, as in a process's first round, so that processes starting together see each other
        before they share the mailboxes out).

        Raises psycopg's errors when the database cannot be reached; the leases then run out on
        their own, and :meth:`safe` says when to stop.
        """
        began = self._clock()
        with self._lock:
            generation = self._generation
        lease = f"{self.lease_seconds} seconds"
        with self._transaction() as db:
            db.execute("INSERT INTO processes (id, host, pid, capacity, expires_at)"
                       " VALUES (%s, %s, %s, %s, now() + %s::interval)"
                       " ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at",
                       (self.process_id, self.host, self.pid, self.max_mailboxes, lease))
            db.execute("DELETE FROM processes WHERE expires_at < now() - interval '1 day'")
            db.execute("INSERT INTO mailbox_leases (mailbox) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
                       (sorted(registered),))
            held = self.tokens()
            renewed = dict(db.execute(
                "UPDATE mailbox_leases SET expires_at = now() + %s::interval"
                " WHERE owner = %s AND mailbox = ANY(%s) RETURNING mailbox, token",
                (lease, self.process_id, sorted(held))).fetchall())
            lost = tuple(sorted(mailbox for mailbox, token in held.items() if renewed.get(mailbox) != token))
            # Rows still naming this process that it does not hold (it stopped them itself, after
            # missed heartbeats) are given back, so they need not wait for their expiry.
            db.execute("UPDATE mailbox_leases SET owner = NULL, expires_at = '-infinity'"
                       " WHERE owner = %s AND NOT (mailbox = ANY(%s))", (self.process_id, sorted(renewed)))
            capacities = [row[0] for row in db.execute(
                "SELECT capacity FROM processes WHERE expires_at > now() OR id = %s", (self.process_id,))]
            processes = len(capacities)
            wanted = sorted(registered)
            share = fair_share(len(wanted), capacities, self.max_mailboxes)
            taken: dict[str, int] = {}
            room = share - len(renewed)
            if take and room > 0:
                taken = dict(db.execute(
                    "UPDATE mailbox_leases SET owner = %s, token = token + 1, expires_at = now() + %s::interval,"
                    " acquired_at = now() WHERE mailbox IN (SELECT mailbox FROM mailbox_leases"
                    " WHERE mailbox = ANY(%s) AND (owner IS NULL OR expires_at < now())"
                    " ORDER BY mailbox LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING mailbox, token",
                    (self.process_id, lease, wanted, room)).fetchall())
        with self._lock:
            if generation != self._generation:
                # forget() ran meanwhile (the watchdog stopped this process's mailboxes): what this
                # round renewed or took is not run here, so it is given back, not installed.
                stale = sorted({**renewed, **taken})
            else:
                stale = []
                self._tokens = {**renewed, **taken}
                self._renewed_at = began
            owned = sorted(self._tokens)
        if stale:
            self._release(stale)
            return LeaseRound(taken={}, surplus=(), lost=(), processes=processes, share=share)
        surplus = tuple(owned[share:]) if len(owned) > share else ()
        return LeaseRound(taken=taken, surplus=surplus, lost=lost, processes=processes, share=share)

    def give_back(self, mailboxes: Collection[str]) -> None:
        """Release leases whose actors have stopped, so another process may take them at once."""
        if not mailboxes:
            return
        with self._lock:
            for mailbox in mailboxes:
                self._tokens.pop(mailbox, None)
        self._release(sorted(mailboxes))

    def _release(self, mailboxes: list[str]) -> None:
        with self._db_lock:
            self._db().execute("UPDATE mailbox_leases SET owner = NULL, expires_at = '-infinity'"
                               " WHERE owner = %s AND mailbox = ANY(%s)", (self.process_id, mailboxes))

    def forget(self) -> frozenset[str]:
        """Drop every lease locally (missed heartbeats): the fence refuses this process's writes
        from now on; the rows are given back at the next heartbeat that reaches the database."""
        with self._lock:
            dropped = frozenset(self._tokens)
            self._tokens = {}
            self._renewed_at = None
            self._generation += 1
        return dropped

    def leave(self) -> None:
        """At a clean stop: give every lease back and say this process is gone."""
        self.forget()
        with self._transaction() as db:
            db.execute("UPDATE mailbox_leases SET owner = NULL, expires_at = '-infinity' WHERE owner = %s",
                       (self.process_id,))
            db.execute("DELETE FROM processes WHERE id = %s", (self.process_id,))

    # -- what everybody holds ----------------------------------------------------------------------

    def holders(self) -> dict[str, LeaseHolder]:
        """Every mailbox's lease with its live owner (host, pid), by mailbox; an expired lease has none."""
        with self._holders_lock:  # a connection of its own: a status never holds up a heartbeat
            if self._holders_connection is None or self._holders_connection.broken:
                self._holders_connection = connect(self.url, statement_timeout=self.lease_seconds / 4)
            rows: list[tuple[Any, ...]] = self._holders_connection.execute(
                "SELECT l.mailbox, p.id, p.host, p.pid, CASE WHEN p.id IS NOT NULL THEN l.expires_at END, l.token"
                " FROM mailbox_leases AS l"
                " LEFT JOIN processes AS p ON p.id = l.owner AND l.expires_at > now() ORDER BY l.mailbox").fetchall()
        return {row[0]: LeaseHolder(mailbox=row[0], process=row[1], host=row[2], pid=row[3],
                                    expires_at=row[4], token=int(row[5])) for row in rows}

    def forget_mailbox(self, mailbox: str) -> None:
        """A mailbox was unregistered: its lease row goes (a later write for it is refused)."""
        with self._lock:
            self._tokens.pop(mailbox, None)
        with self._db_lock:
            self._db().execute("DELETE FROM mailbox_leases WHERE mailbox = %s", (mailbox,))

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """One transaction on the heartbeat's connection, the connection's lock held throughout."""
        with self._db_lock:
            db = self._db()
            with db.transaction():
                yield db

    def _db(self) -> psycopg.Connection[tuple[Any, ...]]:
        """The heartbeat's connection, made again after a failure. Each statement may take at most
        a quarter of a lease: a heartbeat must fail in time to be tried again, not hang."""
        if self._connection is not None and not self._connection.closed and not self._connection.broken:
            return self._connection
        if self._connection is not None:
            self._connection.close()
        self._connection = connect(self.url, statement_timeout=self.lease_seconds / 4)
        return self._connection

    def close(self) -> None:
        with self._db_lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
        with self._holders_lock:
            if self._holders_connection is not None:
                self._holders_connection.close()
                self._holders_connection = None


def fair_share(mailboxes: int, capacities: Sequence[int | None], mine: int | None) -> int:
    """How many of ``mailboxes`` a process with capacity ``mine`` should run, the live processes
    having ``capacities`` (``mine`` among them; None: no limit): even shares, rounded up, where a
    process that may run fewer than its even share runs what it may and the others share the rest.
    So no mailbox is left without an owner while some process has room for it."""
    if mailboxes <= 0 or not capacities:
        return 0
    left, sharing = mailboxes, len(capacities)
    for capacity in sorted(cap for cap in capacities if cap is not None):
        if capacity >= math.ceil(left / sharing):
            break
        left, sharing = left - capacity, sharing - 1
    even = math.ceil(left / sharing) if sharing else mailboxes  # every process capped: each runs its cap
    return even if mine is None else min(mine, even)
