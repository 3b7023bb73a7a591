"""Which due mailbox syncs next, under a global limit of concurrent syncs.

Rules, in order:

1. **Coalescing.** A mailbox that is already waiting or running is not queued again: the sync
   that is waiting or under way covers the new request.
2. **Limit.** At most ``limit`` syncs run at once; the others wait.
3. **Priority with aging.** A waiting mailbox's effective priority is its priority
   (low 0, normal 1, high 2) plus one level for every ``aging_seconds`` it has waited. The highest
   effective priority starts first; ties go to whoever has waited longest, then by mailbox id.

Aging is what stops starvation: a mailbox that has waited ``2 * aging_seconds`` has at least the
effective priority of a high-priority mailbox queued at that moment, and wins the tie by having
waited longer. So it waits only for the mailboxes queued before that point, at most one sync each
(coalescing keeps every mailbox in the queue once), however busy the high-priority ones are.

No threads and no I/O: the owner calls :meth:`SyncQueue.request`, :meth:`SyncQueue.admit` and
:meth:`SyncQueue.finished`, and the clock is injected so tests move time without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .schedules import Priority

__all__ = ["QueuedSync", "SyncQueue"]


@dataclass(frozen=True, slots=True)
class QueuedSync:
    """A mailbox waiting for (or holding) a sync slot; ``reason`` is what asked for it."""

    mailbox_id: str
    priority: Priority
    reason: str
    queued_at: float


class SyncQueue:
    """The waiting line and the running set; see the module docstring for the rules."""

    def __init__(
        self,
        limit: int,
        *,
        aging_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError(f"the limit of concurrent syncs must be at least 1, not {limit}")
        if aging_seconds <= 0:
            raise ValueError(f"aging_seconds must be positive, not {aging_seconds}")
        self.limit = limit
        self._aging = aging_seconds
        self._clock = clock
        self._waiting: dict[str, QueuedSync] = {}
        self._running: dict[str, QueuedSync] = {}

    def request(self, mailbox_id: str, priority: Priority, reason: str) -> bool:
        """Queue a sync; False when it was folded into one already waiting or running."""
        if mailbox_id in self._waiting or mailbox_id in self._running:
            return False
        self._waiting[mailbox_id] = QueuedSync(mailbox_id, priority, reason, self._clock())
        return True

    def admit(self) -> list[QueuedSync]:
        """Move the best waiting syncs into the free slots and return them, best first."""
        admitted = self.waiting()[: max(self.limit - len(self._running), 0)]
        for entry in admitted:
            del self._waiting[entry.mailbox_id]
            self._running[entry.mailbox_id] = entry
        return admitted

    def finished(self, mailbox_id: str) -> None:
        """The mailbox's sync ended (or can no longer end): free its slot. Unknown ids are ignored."""
        self._running.pop(mailbox_id, None)

    def cancel(self, mailbox_id: str) -> None:
        """Forget a waiting request (the mailbox went away before its turn)."""
        self._waiting.pop(mailbox_id, None)

    def waiting(self) -> list[QueuedSync]:
        """The waiting syncs in the order they would start now."""
        now = self._clock()
        return sorted(
            self._waiting.values(),
            key=lambda e: (-self.effective_priority(e, now), e.queued_at, e.mailbox_id),
        )

    @property
    def running(self) -> list[str]:
        """Mailboxes holding a slot, in the order they were admitted."""
        return list(self._running)

    def effective_priority(self, entry: QueuedSync, now: float | None = None) -> int:
        """The entry's priority plus one level per ``aging_seconds`` waited."""
        waited = (self._clock() if now is None else now) - entry.queued_at
        return int(entry.priority) + int(max(waited, 0.0) // self._aging)
