"""SchedulerActor: sends SyncTick to mailbox actors when their schedule comes round, a few at a time."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pykka
from loguru import logger

from futurnal.scheduling.schedules import MailboxSchedule, SyncSchedule
from futurnal.scheduling.sync_queue import SyncQueue
from futurnal.supervisors.directory import ActorDirectory
from futurnal.sync.sync_runs import MailboxSyncReport

from . import actor_names
from .messages import SyncTick
from .service_actor import ServiceActor

__all__ = ["SchedulerActor", "SchedulerSnapshot"]


@dataclass(frozen=True, slots=True)
class _CheckTimetable:
    """From the scheduler's own timer thread: look at schedules and slots now.

    Private to this actor (never sent by anyone else), so it lives here, not in ``messages.py``.
    """


@dataclass(frozen=True, slots=True)
class SchedulerSnapshot:
    """What the scheduler is doing: mailboxes syncing (holding a slot), waiting (in order), and
    each mailbox's next due time (naive local; None for ``@manual``)."""

    running: tuple[str, ...]
    waiting: tuple[str, ...]
    next_runs: dict[str, datetime | None]
    next_check_seconds: float  # how long the timer sleeps before its next look


class _AnsweredFuture(pykka.ThreadingFuture[Any]):
    """A sync's reply future that also tells the scheduler when it is answered, so the slot is
    freed and the next mailbox admitted at once, not at the timer's next check."""

    def __init__(self, answered: Callable[[], None]) -> None:
        super().__init__()
        self._answered = answered

    def set(self, value: Any = None) -> None:
        super().set(value)
        self._answered()

    def set_exception(self, exc_info: Any = None) -> None:
        super().set_exception(exc_info)
        self._answered()


@dataclass(slots=True)
class _Slot:
    mailbox: pykka.ActorRef[Any]
    reply: pykka.Future[MailboxSyncReport]


class SchedulerActor(ServiceActor):
    """Owns a :class:`SyncSchedule` (when) and a :class:`SyncQueue` (who next, how many at once).

    A timer thread only tells this actor to check, so all state is touched by the actor's own
    thread. A sync's answer frees its slot at once (its reply future tells this actor); the timer
    wakes every ``resolution_seconds`` only while a sync runs or waits (a mailbox actor that died
    never answers); otherwise it
    sleeps until the next mailbox is due (at most ``idle_check_seconds``, so a changed wall clock
    is noticed), and a sync asked for meanwhile is admitted by its own message. Each admitted sync
    is a tell of ``SyncTick`` with a ``reply_to`` future; every check polls the futures of
    running syncs with ``get(timeout=0)`` and frees the slot of those answered, or whose mailbox
    actor has died (a restarted actor never answers its predecessor's future).
    """

    def __init__(
        self,
        *,
        directory: ActorDirectory,
        mailboxes: Iterable[MailboxSchedule],
        max_concurrent: int = 2,
        sync_at_start: bool = True,
        resolution_seconds: float = 1.0,
        idle_check_seconds: float = 60.0,
        aging_seconds: float = 60.0,
        now: Callable[[], datetime] = datetime.now,
        child_id: str = actor_names.SCHEDULER,
        supervisor: Any = None,
    ) -> None:
        super().__init__(child_id=child_id, supervisor=supervisor)
        self._directory = directory
        self._mailboxes = {plan.mailbox_id: plan for plan in mailboxes}
        self._sync_at_start = sync_at_start
        self._resolution = resolution_seconds
        self._idle_check = max(idle_check_seconds, resolution_seconds)
        self._timer_wait = resolution_seconds  # written by the actor, read by the timer thread
        self._timer_kick = threading.Event()  # the wait above shrank, or the actor stops
        self._timetable = SyncSchedule(now)
        self._queue = SyncQueue(max_concurrent, aging_seconds=aging_seconds)
        self._slots: dict[str, _Slot] = {}
        self._timer_stop = threading.Event()
        self._thread: threading.Thread | None = None

    def on_start(self) -> None:
        for plan in self._mailboxes.values():
            self._timetable.set(plan.mailbox_id, plan.schedule)
            if self._sync_at_start and plan.schedule.kind != "manual":
                self._queue.request(plan.mailbox_id, plan.priority, "startup")
        self._start_admitted()
        self._thread = threading.Thread(target=self._run_timer, name="futurnal-scheduler", daemon=True)
        self._thread.start()

    def handle(self, message: Any) -> Any:
        if isinstance(message, _CheckTimetable):
            self._free_finished_slots()
            for mailbox_id in self._timetable.due():
                plan = self._mailboxes[mailbox_id]
                if not self._queue.request(mailbox_id, plan.priority, "schedule"):
                    logger.debug("mailbox {mailbox} is due but already waiting or syncing", mailbox=mailbox_id)
            self._start_admitted()
            return None
        return super().handle(message)

    def snapshot(self) -> SchedulerSnapshot:
        """For status and tests, through ``proxy()``: what runs, what waits, what comes next."""
        return SchedulerSnapshot(
            tuple(self._queue.running),
            tuple(entry.mailbox_id for entry in self._queue.waiting()),
            {mailbox_id: self._timetable.next_run(mailbox_id) for mailbox_id in self._mailboxes},
            self._timer_wait,
        )

    def _run_timer(self) -> None:
        while not self._timer_stop.is_set():
            self._timer_kick.wait(self._timer_wait)
            self._timer_kick.clear()
            if self._timer_stop.is_set():
                return
            try:
                self.actor_ref.tell(_CheckTimetable())
            except pykka.ActorDeadError:
                return

    def _check_soon(self) -> None:
        """From whichever thread answered a sync: look at the slots now."""
        try:
            self.actor_ref.tell(_CheckTimetable())
        except pykka.ActorDeadError:
            pass  # stopping

    def _plan_next_check(self) -> None:
        """How long the timer sleeps before the next check: a second while syncs run or wait (to
        free their slots), else until the next mailbox is due."""
        if self._slots or self._queue.waiting():
            wait = self._resolution
        else:
            due_in = self._timetable.seconds_to_next()
            wait = self._idle_check if due_in is None else min(max(due_in, self._resolution), self._idle_check)
        shorter = wait < self._timer_wait
        self._timer_wait = wait
        if shorter:
            self._timer_kick.set()

    def _free_finished_slots(self) -> None:
        for mailbox_id, slot in list(self._slots.items()):
            try:
                slot.reply.get(timeout=0)
            except pykka.Timeout:
                if slot.mailbox.is_alive():
                    continue
                logger.info("mailbox {mailbox} stopped during its sync; its slot is free", mailbox=mailbox_id)
            except Exception as exc:  # noqa: BLE001 - a failed sync has ended all the same
                logger.debug("mailbox {mailbox}'s sync ended with {error}", mailbox=mailbox_id, error=type(exc).__name__)
            del self._slots[mailbox_id]
            self._queue.finished(mailbox_id)

    def _start_admitted(self) -> None:
        # Loop: a slot given to a mailbox that is not running is handed straight to the next one.
        while admitted := self._queue.admit():
            for entry in admitted:
                mailbox = self._directory.get(actor_names.mailbox(entry.mailbox_id))
                if mailbox is None:
                    logger.info("mailbox {mailbox} is not running; its {reason} sync is skipped",
                                mailbox=entry.mailbox_id, reason=entry.reason)
                    self._queue.finished(entry.mailbox_id)
                    continue
                reply: pykka.Future[MailboxSyncReport] = _AnsweredFuture(self._check_soon)
                mailbox.tell(SyncTick(reason=entry.reason, reply_to=reply))
                self._slots[entry.mailbox_id] = _Slot(mailbox, reply)
        self._plan_next_check()

    def on_stop(self) -> None:
        self._timer_stop.set()
        self._timer_kick.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self._timer_stop.set()
        self._timer_kick.set()
        super().on_failure(exception_type, exception_value, traceback)
