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
from types import TracebackType
from typing import Any

import pykka
from loguru import logger

from futurnal.storage.postgres.leases import LeaseBook, LeaseRound

from . import actor_names
from .service_actor import ServiceActor

__all__ = ["LeaseKeeperActor", "RunOnly"]

#: The system's "run exactly these mailboxes": called with a function giving the set, evaluated
#: under the system's own lock (so a watchdog's stop in between is never undone), and whether the
#: registry changed (so the mailboxes that go on running are reloaded with their new settings).
RunOnly = Callable[[Callable[[], frozenset[str]], bool], None]


@dataclass(frozen=True, slots=True)
class _Apply:
    """From the keeper's heartbeat thread: what a round found, for the actor to act on (start the
    taken, stop the lost and the surplus). Private to this actor."""

    found: LeaseRound
    records: Mapping[str, Any]


class LeaseKeeperActor(ServiceActor):
    """Owns the process's :class:`LeaseBook` rounds; see the module's docstring.

    Three threads, so none waits for another: the heartbeat thread renews and takes (database
    calls, each with its deadline) and hands each round's outcome to the actor; the actor starts
    and stops mailboxes (which may take as long as a stop takes) while renewals go on; the watchdog
    thread only looks at the time of the last renewal that got through.
    """

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
        self._records: Mapping[str, Any] | None = None  # the registry as the last round applied saw it
        self._threads_stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def on_start(self) -> None:
        # The first heartbeat comes after the system's start (which holds the system's lock this
        # actor's changes take) has seen this actor answer: the threads start now, beating at once.
        for name, target in (("futurnal-leases", self._beat_forever), ("futurnal-lease-watchdog", self._watch)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def handle(self, message: Any) -> Any:
        if isinstance(message, _Apply):
            try:
                self._apply(message.found, message.records)
            except Exception as exc:  # noqa: BLE001 - the next round tries again; renewals go on meanwhile
                logger.warning("could not act on the mailbox leases ({error}); trying again at the next heartbeat",
                               error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                self._records = None  # the next round reloads
            return None
        return super().handle(message)

    # -- the heartbeat thread ---------------------------------------------------------------------

    def _beat_forever(self) -> None:
        joined, failing = False, False  # the first round only says this process is alive
        while not self._threads_stop.is_set():
            try:
                records = self._registered()
                found = self._book.heartbeat(records.keys(), take=joined)
            except Exception as exc:  # noqa: BLE001 - the database out of reach: the leases run out, the watchdog acts
                if not failing:
                    logger.warning("cannot renew this process's mailbox leases ({error}); trying again every "
                                   "{interval:g} s", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                                   interval=self._interval)
                    failing = True
            else:
                if failing:
                    logger.info("the database answers again; mailbox leases renewed")
                    failing = False
                joined = True
                try:
                    self.actor_ref.tell(_Apply(found, records))
                except pykka.ActorDeadError:
                    return
            self._threads_stop.wait(self._interval)

    # -- the actor: acting on a round -------------------------------------------------------------

    def _apply(self, found: LeaseRound, records: Mapping[str, Any]) -> None:
        if found.lost:
            logger.warning("lost the leases of {mailboxes} to another process; stopping them",
                           mailboxes=", ".join(found.lost))
        if found.taken:
            logger.info("took the leases of {n} mailbox(es) ({processes} process(es) share them, {share} each)",
                        n=len(found.taken), processes=found.processes, share=found.share)
        surplus = frozenset(found.surplus)
        gone = self._book.held() - records.keys()  # unregistered (on any host) while run here
        changed = self._records is not None and records != self._records
        first = self._records is None
        self._records = records
        if not (found.taken or found.lost or surplus or gone or changed or first):
            return
        book = self._book
        self._run_only(lambda: book.held() - surplus - gone, changed)
        if surplus:
            book.give_back(surplus)
            logger.info("gave back {n} mailbox(es) to balance the processes", n=len(surplus))
        for mailbox in gone:
            book.forget_mailbox(mailbox)
            logger.info("mailbox {mailbox} was unregistered; stopped it and dropped its lease", mailbox=mailbox)

    # -- the watchdog thread ----------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._threads_stop.wait(0.5):
            if self._book.held() and not self._book.safe():
                self._stop_everything()

    def _stop_everything(self) -> None:
        dropped = self._book.forget()
        logger.error("no heartbeat reached the database for half a lease ({seconds:g} s): stopping this process's "
                     "{n} mailbox(es) before their leases can expire; they start again, here or elsewhere, once "
                     "the database answers", seconds=self._book.lease_seconds / 2, n=len(dropped))
        self._run_only(frozenset, False)
        logger.warning("stopped this process's mailboxes for want of the database; nothing more is written for them here")

    def on_stop(self) -> None:
        self._threads_stop.set()

    def on_failure(self, exception_type: type[BaseException] | None, exception_value: BaseException | None,
                   traceback: TracebackType | None) -> None:
        """Dying, the keeper can renew nothing more: its mailboxes stop now, not after their leases ran out."""
        self._threads_stop.set()
        if self._book.forget():
            self._run_only(frozenset, False)
        super().on_failure(exception_type, exception_value, traceback)
