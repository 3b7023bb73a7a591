from __future__ import annotations

import datetime as dt

import pytest
import schedule

from futurnal.schedules import SyncSchedule


class Clock:
    """Drives the ``schedule`` library's notion of now, so the test never sleeps."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = dt.datetime(2026, 1, 1, 12, 0, 0)
        clock = self

        class FakeDatetime(dt.datetime):
            @classmethod
            def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
                return clock.now

        monkeypatch.setattr(schedule.datetime, "datetime", FakeDatetime)

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def test_each_mailbox_is_due_once_per_interval_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    plan = SyncSchedule()
    plan.every("fast", 10)
    plan.every("slow", 30)
    seen = []
    for _ in range(6):
        clock.advance(10)
        seen.append(plan.due())
    assert seen == [["fast"], ["fast"], ["fast", "slow"], ["fast"], ["fast"], ["fast", "slow"]]


def test_removed_mailboxes_are_no_longer_due(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    plan = SyncSchedule()
    plan.every("a", 5)
    plan.remove("a")
    clock.advance(60)
    assert plan.due() == []


def test_intervals_below_one_second_are_refused() -> None:
    with pytest.raises(ValueError):
        SyncSchedule().every("a", 0)
