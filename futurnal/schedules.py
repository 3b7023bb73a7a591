"""When each mailbox is due for a sync, as plain code around the ``schedule`` library."""

from __future__ import annotations

import schedule

__all__ = ["SyncSchedule"]


class SyncSchedule:
    """Interval schedules per mailbox; :meth:`due` says which mailboxes to sync now.

    Uses its own ``schedule.Scheduler`` rather than the library's global one, so two actor
    systems in one process (an embedder's tests, say) never share jobs.
    """

    def __init__(self) -> None:
        self._scheduler = schedule.Scheduler()
        self._due: list[str] = []

    def every(self, mailbox_id: str, seconds: int) -> None:
        if seconds < 1:
            raise ValueError(f"a sync interval must be at least 1 second, not {seconds}")
        self._scheduler.clear(mailbox_id)
        self._scheduler.every(seconds).seconds.do(self._mark_due, mailbox_id).tag(mailbox_id)

    def _mark_due(self, mailbox_id: str) -> None:
        self._due.append(mailbox_id)

    def remove(self, mailbox_id: str) -> None:
        self._scheduler.clear(mailbox_id)

    def due(self) -> list[str]:
        """Mailboxes whose interval has elapsed since they were last due, each once."""
        self._scheduler.run_pending()
        due, self._due = list(dict.fromkeys(self._due)), []
        return due

    def seconds_until_next(self) -> float | None:
        return self._scheduler.idle_seconds
