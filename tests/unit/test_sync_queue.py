from __future__ import annotations

import pytest

from futurnal.scheduling.schedules import Priority
from futurnal.scheduling.sync_queue import SyncQueue

LOW, NORMAL, HIGH = Priority.LOW, Priority.NORMAL, Priority.HIGH


class Clock:
    """Monotonic seconds that only move when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _ids(entries: list) -> list[str]:  # type: ignore[type-arg]
    return [entry.mailbox_id for entry in entries]


def test_higher_priority_starts_first_and_equals_in_arrival_order() -> None:
    clock = Clock()
    queue = SyncQueue(1, clock=clock)
    for mailbox, priority in [("n1", NORMAL), ("l1", LOW), ("h1", HIGH), ("n2", NORMAL), ("h2", HIGH)]:
        queue.request(mailbox, priority, "schedule")
        clock.now += 1
    order = []
    while admitted := queue.admit():
        order += _ids(admitted)
        queue.finished(admitted[0].mailbox_id)
    assert order == ["h1", "h2", "n1", "n2", "l1"]


def test_no_more_than_the_limit_run_at_once() -> None:
    queue = SyncQueue(2, clock=Clock())
    for name in "abcde":
        queue.request(name, NORMAL, "startup")
    assert _ids(queue.admit()) == ["a", "b"]
    assert queue.admit() == []
    assert queue.running == ["a", "b"]
    queue.finished("a")
    assert _ids(queue.admit()) == ["c"]
    assert queue.running == ["b", "c"]
    assert _ids(queue.waiting()) == ["d", "e"]


def test_a_mailbox_waiting_or_running_is_not_queued_twice() -> None:
    queue = SyncQueue(1, clock=Clock())
    assert queue.request("a", NORMAL, "startup") is True
    assert queue.request("b", NORMAL, "startup") is True
    assert queue.request("b", NORMAL, "schedule") is False  # waiting
    assert _ids(queue.admit()) == ["a"]
    assert queue.request("a", NORMAL, "schedule") is False  # running
    assert _ids(queue.waiting()) == ["b"]
    queue.finished("a")
    assert _ids(queue.admit()) == ["b"]
    assert queue.request("a", NORMAL, "schedule") is True  # done, so it may be queued again


def test_a_coalesced_request_keeps_its_place_in_the_line() -> None:
    clock = Clock()
    queue = SyncQueue(1, aging_seconds=60, clock=clock)
    queue.request("busy", HIGH, "startup")
    queue.admit()
    queue.request("old", LOW, "schedule")
    clock.now += 130
    queue.request("old", LOW, "schedule")  # folded in: it has still waited since the first request
    queue.request("new", HIGH, "schedule")
    queue.finished("busy")
    # "old" has waited two aging periods (low + 2 = high) and longer than "new": it goes first.
    assert _ids(queue.admit()) == ["old"]


def test_aging_lifts_a_waiting_low_priority_mailbox_one_level_per_period() -> None:
    clock = Clock()
    queue = SyncQueue(1, aging_seconds=60, clock=clock)
    queue.request("low", LOW, "schedule")
    (entry,) = queue.waiting()
    seen = []
    for waited in (0, 59, 60, 119, 120, 600):
        clock.now = entry.queued_at + waited
        seen.append(queue.effective_priority(entry))
    assert seen == [0, 0, 1, 1, 2, 10]


def test_a_low_priority_mailbox_is_not_starved_by_busy_high_priority_ones() -> None:
    # Two high-priority mailboxes are due again every 30 s and each sync takes 30 s, so with one
    # slot there is always a high-priority mailbox waiting. Without aging "low" would never run.
    clock = Clock()
    queue = SyncQueue(1, aging_seconds=60, clock=clock)
    queue.request("low", LOW, "schedule")
    low_started_at = None
    for step in range(40):
        for name in ("h1", "h2"):
            queue.request(name, HIGH, "schedule")
        if "low" in _ids(queue.admit()):
            low_started_at = step * 30
            break
        clock.now += 30
        for name in queue.running:
            queue.finished(name)
    assert low_started_at is not None
    assert low_started_at <= 2 * 60 + 2 * 30  # two aging periods, plus the syncs queued before it


def test_without_aging_pressure_priority_alone_decides() -> None:
    clock = Clock()
    queue = SyncQueue(1, aging_seconds=3600, clock=clock)
    queue.request("low", LOW, "schedule")
    clock.now += 120
    queue.request("high", HIGH, "schedule")
    assert _ids(queue.admit()) == ["high"]


def test_finishing_an_unknown_mailbox_and_cancelling_are_harmless() -> None:
    queue = SyncQueue(1, clock=Clock())
    queue.finished("nobody")
    queue.request("a", NORMAL, "schedule")
    queue.cancel("a")
    assert queue.admit() == [] and queue.running == []


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SyncQueue(limit)
