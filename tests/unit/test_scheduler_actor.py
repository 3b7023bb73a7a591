"""The SchedulerActor's protocol, with real Pykka actors and fake mailbox actors that hold their ticks."""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

import pykka
import pytest

from futurnal.actors.messages import SyncTick
from futurnal.actors.scheduler import SchedulerActor, SchedulerSnapshot
from futurnal.scheduling.schedules import MailboxSchedule, Priority, Schedule, parse_schedule
from futurnal.supervisors.directory import ActorDirectory
from futurnal.sync.sync_runs import MailboxSyncReport

WAIT = 10.0  # generous: a timeout here means a tick that never came, not a slow machine
HOURLY = Schedule.every(3600)


class FakeMailbox(pykka.ThreadingActor):
    """Keeps every SyncTick it gets; the test decides when each sync is "done"."""

    def __init__(self, name: str, inbox: queue.Queue[tuple[str, SyncTick]]) -> None:
        super().__init__()
        self.name = name
        self.inbox = inbox
        self.ticks: list[SyncTick] = []

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, SyncTick):
            self.ticks.append(message)
            self.inbox.put((self.name, message))
            return None
        if message == "count":
            return len(self.ticks)
        return None


class Clock:
    """Wall-clock time for cron schedules, moved by the test (read from the actor's thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._now = dt.datetime(2026, 1, 1, 12, 0, 30)

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += dt.timedelta(seconds=seconds)


class World:
    """A directory of fake mailbox actors and a scheduler over them; everything stops afterwards."""

    def __init__(self) -> None:
        self.directory = ActorDirectory()
        self.inbox: queue.Queue[tuple[str, SyncTick]] = queue.Queue()
        self.mailboxes: dict[str, pykka.ActorRef[Any]] = {}
        self.scheduler: pykka.ActorRef[Any] | None = None

    def start(self, plans: list[MailboxSchedule], **options: Any) -> pykka.ActorRef[Any]:
        for plan in plans:
            ref = FakeMailbox.start(plan.mailbox_id, self.inbox)
            self.mailboxes[plan.mailbox_id] = ref
            self.directory.set(f"mailbox/{plan.mailbox_id}", ref)
        options.setdefault("resolution_seconds", 0.01)
        options.setdefault("idle_check_seconds", 0.01)  # the fake clock moves without real time passing
        self.scheduler = SchedulerActor.start(directory=self.directory, mailboxes=plans, **options)
        return self.scheduler

    def next_tick(self) -> tuple[str, SyncTick]:
        return self.inbox.get(timeout=WAIT)

    def ticks_delivered(self) -> int:
        """Ticks the fake mailboxes have received; an ask arrives after every earlier tell."""
        return sum(cast(int, ref.ask("count", timeout=WAIT)) for ref in self.mailboxes.values())

    def snapshot(self) -> SchedulerSnapshot:
        assert self.scheduler is not None
        return self.scheduler.proxy().snapshot().get(timeout=WAIT)

    def stop(self) -> None:
        for ref in [self.scheduler, *self.mailboxes.values()]:
            if ref is not None and ref.is_alive():
                ref.stop(timeout=WAIT)


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    try:
        yield w
    finally:
        w.stop()


def _done(tick: SyncTick, mailbox: str) -> None:
    assert tick.reply_to is not None
    tick.reply_to.set(MailboxSyncReport(mailbox, (), ()))


def _wait_until(condition: Callable[[], bool]) -> None:
    """Poll a condition that the scheduler's own timer will make true, without a fixed sleep."""
    ready = threading.Event()
    for _ in range(int(WAIT / 0.01)):
        if condition():
            return
        ready.wait(0.01)
    raise AssertionError("condition not reached")


def test_no_more_syncs_run_at_once_than_the_limit_and_every_mailbox_gets_its_tick(world: World) -> None:
    names = ["a", "b", "c", "d", "e"]
    world.start([MailboxSchedule(n, HOURLY) for n in names], max_concurrent=2)
    held = [world.next_tick(), world.next_tick()]
    snapshot = world.snapshot()
    assert len(snapshot.running) == 2 and len(snapshot.waiting) == 3
    assert world.ticks_delivered() == 2  # the three others wait for a slot

    resolved = 0
    while held:
        name, tick = held.pop(0)
        _done(tick, name)
        resolved += 1
        if resolved <= 3:
            held.append(world.next_tick())  # the freed slot goes to a waiting mailbox
        assert world.ticks_delivered() - resolved <= 2
    _wait_until(lambda: world.snapshot().running == ())
    assert world.snapshot().waiting == ()
    assert world.ticks_delivered() == 5
    assert world.inbox.empty()


def test_higher_priority_mailboxes_get_the_slot_first(world: World) -> None:
    world.start(
        [MailboxSchedule("low", HOURLY, Priority.LOW), MailboxSchedule("high", HOURLY, Priority.HIGH),
         MailboxSchedule("normal", HOURLY, Priority.NORMAL)],
        max_concurrent=1,
    )
    order = []
    for _ in range(3):
        name, tick = world.next_tick()
        order.append(name)
        _done(tick, name)
    assert order == ["high", "normal", "low"]


def test_a_slot_is_freed_when_the_mailbox_actor_dies_before_answering(world: World) -> None:
    world.start([MailboxSchedule("a", HOURLY), MailboxSchedule("b", HOURLY)], max_concurrent=1)
    first, _ = world.next_tick()
    world.mailboxes[first].stop(timeout=WAIT)  # its future will never be answered
    second, tick = world.next_tick()
    assert {first, second} == {"a", "b"} and tick.reason == "startup"


def test_manual_mailboxes_get_no_startup_sync(world: World) -> None:
    world.start([MailboxSchedule("manual", Schedule("manual")), MailboxSchedule("auto", HOURLY)])
    name, tick = world.next_tick()
    assert (name, tick.reason) == ("auto", "startup")
    snapshot = world.snapshot()
    assert (snapshot.running, snapshot.waiting) == (("auto",), ())
    assert snapshot.next_runs["manual"] is None
    assert world.mailboxes["manual"].ask("count", timeout=WAIT) == 0


def test_a_due_cron_schedule_sends_a_tick_and_a_busy_mailbox_is_not_ticked_twice(world: World) -> None:
    clock = Clock()  # 12:00:30
    world.start([MailboxSchedule("a", parse_schedule("* * * * *"))], sync_at_start=False, now=clock)
    assert world.snapshot().next_runs == {"a": dt.datetime(2026, 1, 1, 12, 1)}
    clock.advance(60)
    name, tick = world.next_tick()
    assert (name, tick.reason) == ("a", "schedule")
    clock.advance(60)  # due again at 12:02 while the first sync still runs: folded into it
    _wait_until(lambda: world.snapshot().next_runs["a"] == dt.datetime(2026, 1, 1, 12, 3))
    assert (world.snapshot().running, world.snapshot().waiting) == (("a",), ())
    _done(tick, name)
    _wait_until(lambda: world.snapshot().running == ())
    assert world.ticks_delivered() == 1
    clock.advance(60)
    assert world.next_tick()[0] == "a"


def test_with_nothing_running_the_timer_sleeps_until_the_next_mailbox_is_due(world: World) -> None:
    clock = Clock()  # 12:00:30; the cron schedule is next due at 12:01, 30 s away
    world.start([MailboxSchedule("a", parse_schedule("* * * * *"))], sync_at_start=False, now=clock,
                idle_check_seconds=600)
    assert world.snapshot().next_check_seconds == pytest.approx(30, abs=1)
    clock.advance(25)
    assert world.snapshot().next_check_seconds == pytest.approx(30, abs=1)  # planned at the last check


def test_while_a_sync_runs_the_timer_checks_every_resolution_and_sleeps_again_after(world: World) -> None:
    clock = Clock()
    world.start([MailboxSchedule("a", parse_schedule("@interval 3600"))], now=clock, idle_check_seconds=600,
                resolution_seconds=0.01)
    name, tick = world.next_tick()  # the start-up sync: a slot is taken
    assert world.snapshot().next_check_seconds == 0.01
    _done(tick, name)
    _wait_until(lambda: world.snapshot().running == ())
    _wait_until(lambda: world.snapshot().next_check_seconds > 60)  # an hour away: capped at idle_check_seconds
    assert world.snapshot().next_check_seconds <= 600


def test_an_answered_sync_frees_its_slot_at_once_not_at_the_next_timer_check(world: World) -> None:
    # One slot and a timer that would not look again for a minute: only the answer can admit "b".
    world.start([MailboxSchedule(name, parse_schedule("@interval 3600")) for name in ("a", "b")],
                max_concurrent=1, resolution_seconds=60, idle_check_seconds=60)
    name, tick = world.next_tick()
    _done(tick, name)
    assert world.next_tick()[0] != name  # within WAIT, far less than the timer's minute
