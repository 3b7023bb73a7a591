"""LeaseKeeperActor: with a shared PostgreSQL store, runs exactly the mailboxes this process leases.

A heartbeat every quarter of a lease renews this process's leases, takes its share of free or
expired ones, and gives back what it holds beyond its share (after their actors stopped). A
watchdog thread, apart from the actor so that a heartbeat hanging on a cut network cannot hold it
up, stops every mailbox of this process once no heartbeat has got through for half a lease: they
stop before their leases can expire and another process take them over. The fence in the store
refuses whatever write would still come late.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
import pykka
from loguru import logger

from futurnal.storage.errors import StorageError
from futurnal.storage.postgres.leases import LeaseBook

from . import actor_names
from .service_actor import ServiceActor

__all__ = ["LeaseKeeperActor", "RunOnly"]

#: The system's "run exactly these mailboxes": called with a function giving the set, evaluated
#: under the system's own lock (so a watchdog's stop in between is never undone), and whether the
#: registry changed (so the mailboxes that go on running are reloaded with their new settings).
RunOnly = Callable[[Callable[[], frozenset[str]], bool], None]


@dataclass(frozen=True, slots=True)
class _Heartbeat:
    """From the keeper's own timer thread: renew, take, give back. Private to this actor."""


class LeaseKeeperActor(ServiceActor):
    """Owns the process's :class:`LeaseBook` rounds; see the module's docstring."""

    def __init__(
        self,
        *,
        book: LeaseBook,
        registered: Callable[[], Mapping[str, Any]],
        run_only: RunOnly,
        child_id: str = actor_names.LEASE_KEEPER,
        supervisor: Any = None,
    ) -> None:
        super().__init__(child_id=child_id, supervisor=supervisor)
        self._book = book
        self._registered = registered
        self._run_only = run_only
        self._interval = book.lease_seconds / 4
        self._joined = False  # the first round only says this process is alive
        self._records: Mapping[str, Any] | None = None  # the registry as the last round read it
        self._failing_since_logged = False
        self._beating = threading.Event()  # a heartbeat is queued or running: the timer adds none
        self._timer_stop = threading.Event()
        self._thread: threading.Thread | None = None

    def on_start(self) -> None:
        # The first heartbeat comes from the timer, after the system's start (which holds the
        # system's lock this actor's changes take) has seen this actor answer.
        self._thread = threading.Thread(target=self._run_timer, name="futurnal-leases", daemon=True)
        self._thread.start()

    def handle(self, message: Any) -> Any:
        if isinstance(message, _Heartbeat):
            try:
                self._beat()
            finally:
                self._beating.clear()
            return None
        return super().handle(message)

    def _beat(self) -> None:
        try:
            records = self._registered()
            found = self._book.heartbeat(records.keys(), take=self._joined)
        except (psycopg.Error, StorageError, OSError) as exc:
            if not self._failing_since_logged:
                logger.warning("cannot renew this process's mailbox leases ({error}); trying again every "
                               "{interval:g} s", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                               interval=self._interval)
                self._failing_since_logged = True
            return
        if self._failing_since_logged:
            logger.info("the database answers again; mailbox leases renewed")
            self._failing_since_logged = False
        self._joined = True
        if found.lost:
            logger.warning("lost the leases of {mailboxes} to another process; stopping them",
                           mailboxes=", ".join(found.lost))
        if found.taken:
            logger.info("took the leases of {n} mailbox(es) ({processes} process(es) share them, {share} each)",
                        n=len(found.taken), processes=found.processes, share=found.share)
        surplus = frozenset(found.surplus)
        gone = self._book.held() - records.keys()  # unregistered (on any host) while run here
        changed = self._records is not None and records != self._records
        self._records = records
        if not (found.taken or found.lost or surplus or gone or changed):
            return
        book = self._book
        self._run_only(lambda: book.held() - surplus - gone, changed)
        if surplus:
            book.give_back(surplus)
            logger.info("gave back {n} mailbox(es) to balance the processes", n=len(surplus))
        for mailbox in gone:
            book.forget_mailbox(mailbox)
            logger.info("mailbox {mailbox} was unregistered; stopped it and dropped its lease", mailbox=mailbox)

    def _run_timer(self) -> None:
        """Ask for a heartbeat every interval, and watch that they get through (every half second)."""
        waited = self._interval  # the first heartbeat at the first tick
        while not self._timer_stop.wait(0.5):
            waited += 0.5
            if self._book.held() and not self._book.safe():
                self._stop_everything()
            if waited >= self._interval and not self._beating.is_set():
                waited = 0.0
                self._beating.set()
                try:
                    self.actor_ref.tell(_Heartbeat())
                except pykka.ActorDeadError:
                    return

    def _stop_everything(self) -> None:
        dropped = self._book.forget()
        logger.error("no heartbeat reached the database for half a lease ({seconds:g} s): stopping this process's "
                     "{n} mailbox(es) before their leases can expire; they start again, here or elsewhere, once "
                     "the database answers", seconds=self._book.lease_seconds / 2, n=len(dropped))
        self._run_only(frozenset, False)
        logger.warning("stopped this process's mailboxes for want of the database; nothing more is written for them here")

    def on_stop(self) -> None:
        self._timer_stop.set()
