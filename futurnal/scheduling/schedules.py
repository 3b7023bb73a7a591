"""When each mailbox is due for a sync: schedules, priorities, and the plain clock-driven planner.

A schedule is one of three kinds, written as text in the registry and on the command line:

- ``@interval <seconds>``: every so many seconds, kept by the ``schedule`` library;
- a cron expression (``*/15 * * * *``, or ``@hourly`` / ``@daily`` / ``@weekly`` / ``@monthly`` /
  ``@yearly``), in local time, evaluated by ``croniter``;
- ``@manual``: never scheduled; the mailbox syncs only when asked (``imap sync``, the API).

Everything here is plain code: no threads, no actors, and a clock that tests can drive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Literal

import schedule
from croniter import CroniterBadDateError, CroniterError, croniter
from loguru import logger

from futurnal.storage.registry import MailboxRecord

__all__ = [
    "MIN_INTERVAL_SECONDS",
    "MailboxSchedule",
    "Priority",
    "Schedule",
    "ScheduleError",
    "SyncSchedule",
    "next_run",
    "parse_priority",
    "parse_schedule",
    "polling_warning",
    "schedule_of",
    "scheduled_mailboxes",
]

# The named shorthands croniter understands; anything else after "@" is a typo, not a schedule.
_CRON_ALIASES = ("@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually")
_CRON_FIELDS = ("the fields are minute (0-59), hour (0-23), day of month (1-31), month (1-12 or JAN-DEC), "
                "day of week (0-6 or SUN-SAT)")
_HINT = "use '@interval <seconds>', '@manual', or a cron expression such as '*/15 * * * *'"


#: Scheduled syncs more often than this are taken, with a warning saying why not (polling_warning).
MIN_INTERVAL_SECONDS = 30


class ScheduleError(ValueError):
    """A schedule or priority that cannot be used; the message says what is wrong and what works."""


class Priority(IntEnum):
    """Who goes first when more mailboxes are due than syncs may run at once."""

    LOW = 0
    NORMAL = 1
    HIGH = 2

    def __str__(self) -> str:
        return self.name.lower()


def parse_priority(text: str) -> Priority:
    """``low`` / ``normal`` / ``high`` (any case) to a :class:`Priority`."""
    try:
        return Priority[text.strip().upper()]
    except KeyError:
        raise ScheduleError(f"unknown priority {text!r}: use low, normal or high") from None


@dataclass(frozen=True, slots=True)
class Schedule:
    """A validated schedule; ``str()`` gives the canonical text that the registry keeps."""

    kind: Literal["interval", "cron", "manual"]
    seconds: int = 0
    cron: str = ""

    @classmethod
    def every(cls, seconds: int) -> Schedule:
        if seconds < 1:
            raise ScheduleError(f"a sync interval must be at least 1 second, not {seconds}")
        return cls("interval", seconds=seconds)

    def next_after(self, moment: datetime) -> datetime | None:
        """The first run strictly after ``moment`` (naive local time); None for ``@manual``."""
        if self.kind == "interval":
            return moment + timedelta(seconds=self.seconds)
        if self.kind == "cron":
            return croniter(self.cron, moment).get_next(datetime)
        return None

    def __str__(self) -> str:
        if self.kind == "interval":
            return f"@interval {self.seconds}"
        return self.cron if self.kind == "cron" else "@manual"


def parse_schedule(text: str) -> Schedule:
    """Validate a schedule as the user wrote it; raise :class:`ScheduleError` with one clear line.

    Validation happens when a schedule is set (``imap add``, ``imap schedule``), so a typo is
    reported to the person who made it rather than found hours later in a service log.
    """
    words = text.split()
    if not words:
        raise ScheduleError(f"the schedule is empty: {_HINT}")
    keyword = words[0].lower()
    if keyword == "@manual":
        if len(words) > 1:
            raise ScheduleError(f"invalid schedule {text!r}: @manual takes no argument")
        return Schedule("manual")
    if keyword == "@interval":
        if len(words) != 2 or not (words[1].isascii() and words[1].isdigit()):
            raise ScheduleError(f"invalid schedule {text!r}: write @interval followed by whole seconds, e.g. '@interval 300'")
        if int(words[1]) < 1:
            raise ScheduleError(f"invalid schedule {text!r}: a sync interval must be at least 1 second")
        return Schedule.every(int(words[1]))
    if keyword.startswith("@"):
        if keyword not in _CRON_ALIASES:
            raise ScheduleError(f"unknown schedule keyword {words[0]!r}: {_HINT}")
        if len(words) > 1:
            raise ScheduleError(f"invalid schedule {text!r}: {words[0]} takes no argument")
    elif len(words) != 5:
        # croniter would also take 6 or 7 fields (seconds, years), whose order varies between
        # cron dialects; five fields mean the same thing everywhere.
        raise ScheduleError(
            f"invalid cron expression {text!r}: it needs 5 fields (minute hour day-of-month month day-of-week), "
            f"not {len(words)}"
        )
    cron = " ".join(words) if not keyword.startswith("@") else keyword
    try:
        # Computing one run also catches expressions that parse but never fire (``0 0 31 2 *``).
        croniter(cron, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        raise ScheduleError(f"invalid cron expression {text!r}: it matches no date") from None
    except (CroniterError, ValueError, KeyError) as exc:
        reason = str(exc).replace(f"[{cron}] ", "").removeprefix("is ") or type(exc).__name__
        raise ScheduleError(f"invalid cron expression {text!r}: {reason}; {_CRON_FIELDS}") from None
    return Schedule("cron", cron=cron)


def polling_warning(plan: Schedule) -> str | None:
    """Why ``plan`` syncs more often than it should, or None: each scheduled sync logs in and looks
    at every folder, and servers throttle or lock accounts polled every few seconds; new mail
    reaches a watched folder within seconds anyway."""
    if plan.kind != "interval" or plan.seconds >= MIN_INTERVAL_SECONDS:
        return None
    return (f"'{plan}' syncs every {plan.seconds} s: each scheduled sync logs in and looks at every folder, and "
            f"a server may throttle or lock an account polled more often than every {MIN_INTERVAL_SECONDS} s; "
            "the folders it watches (--watch) get new mail within seconds without it")


def schedule_of(record: MailboxRecord) -> Schedule:
    """The record's schedule; a record without one syncs every ``sync_interval_seconds``."""
    if record.schedule is None:
        return Schedule.every(record.sync_interval_seconds)
    return parse_schedule(record.schedule)


def next_run(plan: Schedule, now: datetime, last_run: datetime | None = None) -> datetime | None:
    """When a running service would next sync: for an interval, counted from the last sync.

    Without a last sync an interval mailbox is synced when the service starts, so the answer is
    ``now``. ``@manual`` has no next run.
    """
    if plan.kind == "interval":
        return now if last_run is None else max(now, last_run + timedelta(seconds=plan.seconds))
    return plan.next_after(now)


@dataclass(frozen=True, slots=True)
class MailboxSchedule:
    """What the scheduler needs to know about one mailbox."""

    mailbox_id: str
    schedule: Schedule
    priority: Priority = Priority.NORMAL


def scheduled_mailboxes(records: Iterable[MailboxRecord]) -> list[MailboxSchedule]:
    """The records' schedules, for starting a scheduler.

    A stored schedule or priority that no longer parses (a hand-edited registry) must not stop
    the whole service: that mailbox is logged and left to manual syncs, at normal priority.
    """
    plans = []
    for record in records:
        try:
            plan = schedule_of(record)
        except ScheduleError as exc:
            logger.error("mailbox {mailbox}: {error}; it syncs only on request until `imap schedule` fixes it",
                         mailbox=record.id, error=exc)
            plan = Schedule("manual")
        try:
            priority = parse_priority(record.priority)
        except ScheduleError as exc:
            logger.error("mailbox {mailbox}: {error}; using normal", mailbox=record.id, error=exc)
            priority = Priority.NORMAL
        plans.append(MailboxSchedule(record.id, plan, priority))
    return plans


class SyncSchedule:
    """Schedules per mailbox; :meth:`due` says which mailboxes to sync now.

    Intervals run on the ``schedule`` library (its own ``Scheduler``, not the global one, so two
    actor systems in one process never share jobs); cron times come from ``croniter``. Both read
    naive local time: ``schedule`` from ``datetime.now()``, cron from the injected ``now``, which
    defaults to the same. A cron time missed while the process was busy or asleep gives one sync,
    not one per missed time.
    """

    def __init__(self, now: Callable[[], datetime] = datetime.now) -> None:
        self._now = now
        self._intervals = schedule.Scheduler()
        self._cron_next: dict[str, tuple[Schedule, datetime]] = {}
        self._due: list[str] = []

    def set(self, mailbox_id: str, plan: Schedule) -> None:
        """Replace the mailbox's schedule; ``@manual`` simply removes it from the timetable."""
        self.remove(mailbox_id)
        if plan.kind == "interval":
            self._intervals.every(plan.seconds).seconds.do(self._mark_due, mailbox_id).tag(mailbox_id)
        elif plan.kind == "cron":
            first = plan.next_after(self._now())
            assert first is not None
            self._cron_next[mailbox_id] = (plan, first)

    def _mark_due(self, mailbox_id: str) -> None:
        self._due.append(mailbox_id)

    def remove(self, mailbox_id: str) -> None:
        self._intervals.clear(mailbox_id)
        self._cron_next.pop(mailbox_id, None)

    def due(self) -> list[str]:
        """Mailboxes whose time has come since they were last due, each once."""
        self._intervals.run_pending()
        now = self._now()
        for mailbox_id, (plan, when) in list(self._cron_next.items()):
            if when <= now:
                self._due.append(mailbox_id)
                following = plan.next_after(now)
                assert following is not None
                self._cron_next[mailbox_id] = (plan, following)
        due, self._due = list(dict.fromkeys(self._due)), []
        return due

    def seconds_to_next(self) -> float | None:
        """Seconds until the earliest mailbox is due (0 when one is), None when none is scheduled."""
        waits = []
        interval = self._intervals.idle_seconds
        if interval is not None:
            waits.append(interval)
        if self._cron_next:
            now = self._now()
            waits.append(min((when - now).total_seconds() for _, when in self._cron_next.values()))
        return max(min(waits), 0.0) if waits else None

    def next_run(self, mailbox_id: str) -> datetime | None:
        """The mailbox's next due time, or None when it is not scheduled."""
        if mailbox_id in self._cron_next:
            return self._cron_next[mailbox_id][1]
        return self._intervals.get_next_run(mailbox_id)
