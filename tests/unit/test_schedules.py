from __future__ import annotations

import datetime as dt
import types

import pytest
import schedule

from futurnal.scheduling.schedules import (
    MailboxSchedule,
    Priority,
    Schedule,
    ScheduleError,
    SyncSchedule,
    next_run,
    parse_priority,
    parse_schedule,
    polling_warning,
    schedule_of,
    scheduled_mailboxes,
)
from futurnal.storage.registry import MailboxRecord


class Clock:
    """One notion of now for the ``schedule`` library and for cron, so the tests never sleep.

    Only the ``schedule`` module's view of ``datetime`` is replaced, never the real module.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, start: dt.datetime = dt.datetime(2026, 1, 1, 12, 0, 0)) -> None:
        self.now = start
        clock = self

        class FakeDatetime(dt.datetime):
            @classmethod
            def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
                return clock.now

        fake = types.ModuleType("datetime")
        fake.__dict__.update(vars(dt))
        fake.datetime = FakeDatetime  # type: ignore[attr-defined]
        monkeypatch.setattr(schedule, "datetime", fake)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def _record(**changes: object) -> MailboxRecord:
    return MailboxRecord(id="a", email="a@example.org", host="h", port=993, username="a").with_changes(**changes)


# --- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical", "kind"),
    [
        ("@interval 300", "@interval 300", "interval"),
        ("  @INTERVAL   60 ", "@interval 60", "interval"),
        ("*/5 * * * *", "*/5 * * * *", "cron"),
        ("0  9 * *  MON-FRI", "0 9 * * MON-FRI", "cron"),
        ("@daily", "@daily", "cron"),
        ("@manual", "@manual", "manual"),
    ],
)
def test_valid_schedules_parse_to_their_canonical_text(text: str, canonical: str, kind: str) -> None:
    plan = parse_schedule(text)
    assert (str(plan), plan.kind) == (canonical, kind)
    assert parse_schedule(str(plan)) == plan


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("61 * * * *", "invalid cron expression '61 \\* \\* \\* \\*': not acceptable, out of range"),
        ("*/0 * * * *", "step '0'"),
        ("0 0 31 2 *", "matches no date"),
        ("* * * * * *", "needs 5 fields"),
        ("0 9 * *", "needs 5 fields"),
        ("@interval 0", "at least 1 second"),
        ("@interval -5", "whole seconds"),
        ("@interval soon", "whole seconds"),
        ("@every 5", "unknown schedule keyword '@every'"),
        ("@reboot", "unknown schedule keyword '@reboot'"),
        ("@manual now", "takes no argument"),
        ("", "empty"),
    ],
)
def test_invalid_schedules_are_rejected_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message) as info:
        parse_schedule(text)
    assert "\n" not in str(info.value)


def test_priorities_parse_in_any_case_and_order_high_above_low() -> None:
    assert [parse_priority(t) for t in ("low", "Normal", "HIGH")] == [Priority.LOW, Priority.NORMAL, Priority.HIGH]
    assert Priority.HIGH > Priority.NORMAL > Priority.LOW
    assert str(Priority.HIGH) == "high"
    with pytest.raises(ScheduleError, match="use low, normal or high"):
        parse_priority("urgent")


def test_a_record_without_a_schedule_syncs_on_its_interval() -> None:
    assert schedule_of(_record(sync_interval_seconds=120)) == Schedule.every(120)
    assert schedule_of(_record(schedule="*/5 * * * *")).kind == "cron"


def test_a_stored_schedule_that_no_longer_parses_leaves_the_mailbox_to_manual_syncs() -> None:
    (plan,) = scheduled_mailboxes([_record(schedule="@sometimes", priority="urgent")])
    assert plan == MailboxSchedule("a", Schedule("manual"), Priority.NORMAL)


# --- due times -------------------------------------------------------------------------------


def test_each_mailbox_is_due_once_per_interval_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    plan = SyncSchedule(clock)
    plan.set("fast", Schedule.every(10))
    plan.set("slow", Schedule.every(30))
    seen = []
    for _ in range(6):
        clock.advance(10)
        seen.append(plan.due())
    assert seen == [["fast"], ["fast"], ["fast", "slow"], ["fast"], ["fast"], ["fast", "slow"]]


def test_a_cron_mailbox_is_due_at_each_matching_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch, dt.datetime(2026, 1, 1, 12, 3, 30))
    plan = SyncSchedule(clock)
    plan.set("a", parse_schedule("*/5 * * * *"))
    assert plan.next_run("a") == dt.datetime(2026, 1, 1, 12, 5)
    due_at = []
    for _ in range(12 * 60):  # twelve minutes, second by second
        clock.advance(1)
        if plan.due():
            due_at.append(clock.now.strftime("%H:%M:%S"))
    assert due_at == ["12:05:00", "12:10:00", "12:15:00"]


def test_missed_cron_times_give_one_sync_not_one_per_missed_time(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    plan = SyncSchedule(clock)
    plan.set("a", parse_schedule("* * * * *"))
    clock.advance(3600)  # asleep for an hour
    assert plan.due() == ["a"]
    assert plan.due() == []
    assert plan.next_run("a") == dt.datetime(2026, 1, 1, 13, 1)


def test_a_manual_mailbox_is_never_due(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    plan = SyncSchedule(clock)
    plan.set("a", Schedule("manual"))
    for _ in range(48):
        clock.advance(3600)
        assert plan.due() == []
    assert plan.next_run("a") is None


def test_a_new_schedule_replaces_the_old_one(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    plan = SyncSchedule(clock)
    plan.set("a", Schedule.every(5))
    plan.set("a", parse_schedule("0 * * * *"))
    clock.advance(60)
    assert plan.due() == []
    clock.advance(3600)
    assert plan.due() == ["a"]


def test_removed_mailboxes_are_no_longer_due(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    plan = SyncSchedule(clock)
    plan.set("a", Schedule.every(5))
    plan.set("b", parse_schedule("* * * * *"))
    plan.remove("a")
    plan.remove("b")
    clock.advance(120)
    assert plan.due() == []


def test_intervals_below_one_second_are_refused() -> None:
    with pytest.raises(ScheduleError):
        Schedule.every(0)


def test_an_interval_under_thirty_seconds_is_warned_about_with_the_reason() -> None:
    assert polling_warning(parse_schedule("@interval 1")) == (
        "'@interval 1' syncs every 1 s: each scheduled sync logs in and looks at every folder, and a server may "
        "throttle or lock an account polled more often than every 30 s; the folders it watches (--watch) get new "
        "mail within seconds without it")
    assert polling_warning(parse_schedule("@interval 29")) is not None
    for fine in ("@interval 30", "@interval 3600", "* * * * *", "@manual"):
        assert polling_warning(parse_schedule(fine)) is None, fine


def test_next_run_of_an_interval_counts_from_the_last_sync() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0)
    every = Schedule.every(600)
    assert next_run(every, now, now - dt.timedelta(seconds=100)) == now + dt.timedelta(seconds=500)
    assert next_run(every, now, now - dt.timedelta(hours=1)) == now  # overdue: at once
    assert next_run(every, now, None) == now  # never synced: at the start of `run`
    assert next_run(parse_schedule("30 18 * * *"), now) == dt.datetime(2026, 1, 1, 18, 30)
    assert next_run(Schedule("manual"), now) is None
