"""SchedulerActor: emits SyncTick to mailbox actors when their interval comes round."""

from __future__ import annotations

import threading
from typing import Any

from loguru import logger

from futurnal.schedules import SyncSchedule

from .directory import ActorDirectory
from .messages import SyncTick
from .supervised import SupervisedActor

__all__ = ["SchedulerActor"]


class SchedulerActor(SupervisedActor):
    """Owns a :class:`SyncSchedule` and a timer thread that checks it once a second.

    Ticks are tells: a mailbox busy syncing folds them into one follow-up run, so a slow sync
    never piles up ticks.
    """

    def __init__(
        self,
        *,
        directory: ActorDirectory,
        intervals: dict[str, int],
        sync_at_start: bool = True,
        resolution_seconds: float = 1.0,
        child_id: str = "scheduler",
        supervisor: Any = None,
    ) -> None:
        super().__init__(child_id=child_id, supervisor=supervisor)
        self._directory = directory
        self._intervals = dict(intervals)
        self._sync_at_start = sync_at_start
        self._resolution = resolution_seconds
        self._schedule = SyncSchedule()
        self._timer_stop = threading.Event()
        self._thread: threading.Thread | None = None

    def on_start(self) -> None:
        for mailbox_id, seconds in self._intervals.items():
            self._schedule.every(mailbox_id, seconds)
        if self._sync_at_start:
            for mailbox_id in self._intervals:
                self._emit(mailbox_id, "startup")
        self._thread = threading.Thread(target=self._run, name="futurnal-scheduler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._timer_stop.wait(self._resolution):
            try:
                for mailbox_id in self._schedule.due():
                    self._emit(mailbox_id, "interval")
            except Exception:
                logger.exception("the schedule could not be checked; trying again")

    def _emit(self, mailbox_id: str, reason: str) -> None:
        mailbox = self._directory.get(f"mailbox/{mailbox_id}")
        if mailbox is None:
            logger.info("mailbox {mailbox} is not running; its {reason} sync is skipped", mailbox=mailbox_id, reason=reason)
            return
        mailbox.tell(SyncTick(reason=reason))

    def on_stop(self) -> None:
        self._timer_stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self._timer_stop.set()
        super().on_failure(exception_type, exception_value, traceback)
