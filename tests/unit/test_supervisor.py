"""Supervisors with real Pykka actors: start order, reverse stop, restarts, back-off, giving up, poison.

The strategies and restart types are in ``test_supervisor_strategies.py``, which shares the test
actors defined here.
"""

from __future__ import annotations

import errno
import itertools
import threading
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import pykka
import pytest

from futurnal.events import EventBus
from futurnal.supervisors.backoff import BackoffPolicy
from futurnal.supervisors.directory import ActorDirectory
from futurnal.supervisors.protocol import ActorRestarting, DescribeChildren, Ping, PoisonMessage, SiblingRestarted
from futurnal.supervisors.restart_intensity import RestartIntensity
from futurnal.supervisors.supervised import SupervisedActor
from futurnal.supervisors.supervisor import ChildSpec, RestartType, Supervisor

TIMEOUT = 10


@dataclass(frozen=True)
class Crash:
    """Tell this to a Recorder to make it fail the Pykka way (an exception under tell).

    ``in_flight`` is the work it reports it was on when it died.
    """

    in_flight: Hashable | None = None


@dataclass(frozen=True)
class FillTheDisk:
    """Tell this to a Recorder to make it die of a full disk (an OSError)."""


class StopYourself:
    """Tell this to a Recorder to make it stop normally, on its own."""


class Recorder(SupervisedActor):
    def __init__(self, *, name: str, journal: list[str], fail_on_start: bool = False, supervisor: Any = None) -> None:
        super().__init__(child_id=name, supervisor=supervisor)
        self.name = name
        self.journal = journal
        self.fail_on_start = fail_on_start
        self.working_on: Hashable | None = None

    def on_start(self) -> None:
        if self.fail_on_start:
            raise RuntimeError(f"{self.name} cannot start")
        self.journal.append(f"start {self.name}")

    def on_stop(self) -> None:
        self.journal.append(f"stop {self.name}")

    def in_flight(self) -> Hashable | None:
        return self.working_on

    def handle(self, message: Any) -> Any:
        if isinstance(message, Crash):
            self.working_on = message.in_flight
            raise RuntimeError("poison")
        if isinstance(message, FillTheDisk):
            raise OSError(errno.ENOSPC, "No space left on device")
        if isinstance(message, StopYourself):
            self.stop()
            return None
        if isinstance(message, SiblingRestarted):
            self.journal.append(f"{self.name} saw {message.child_id} restart")
            return None
        if isinstance(message, PoisonMessage):
            poison = f"{message.child_id}:{message.key}"
            self.journal.append(f"{self.name} was told {poison} is poison after {message.crashes}")
            return None
        return super().handle(message)


def spec(name: str, journal: list[str], restart: RestartType = "permanent", **kwargs: Any) -> ChildSpec:
    return ChildSpec(name, lambda parent: Recorder.start(name=name, journal=journal, supervisor=parent, **kwargs),
                     restart=restart, shutdown_timeout=TIMEOUT, start_timeout=TIMEOUT)


class FakeClock:
    """A clock the test moves by hand; shared by the intensity and the back-off."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeSchedule:
    """Stands in for the timer: records each back-off delay, then runs the restart at once or holds it."""

    def __init__(self, *, hold: bool = False) -> None:
        self.hold = hold
        self.delays: list[float] = []
        self.held: list[Callable[[], None]] = []

    def __call__(self, delay: float, fn: Callable[[], None]) -> None:
        self.delays.append(delay)
        if self.hold:
            self.held.append(fn)
        else:
            fn()

    def release(self) -> None:
        while self.held:
            self.held.pop(0)()


def start_supervisor(specs: list[ChildSpec], directory: ActorDirectory, **kwargs: Any) -> pykka.ActorRef[Any]:
    """A started supervisor (pinged), restarting at once unless the test passes its own schedule."""
    kwargs.setdefault("intensity", RestartIntensity(10, 60))
    kwargs.setdefault("schedule", FakeSchedule())
    kwargs.setdefault("child_id", "root")
    sup = Supervisor.start(specs=specs, directory=directory, **kwargs)
    sup.ask(Ping(), timeout=TIMEOUT)
    return sup


def crash_and_wait_for_restart(
    directory: ActorDirectory, name: str, in_flight: Hashable | None = None
) -> pykka.ActorRef[Any]:
    """Crash the child registered as ``name``; return its replacement once it is registered."""
    victim = directory.get(name)
    assert victim is not None
    victim.tell(Crash(in_flight))
    wait_for(lambda: directory.get(name) not in (None, victim))
    replacement = directory.get(name)
    assert replacement is not None
    return replacement


@pytest.fixture(autouse=True)
def no_actor_left_behind() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all(timeout=TIMEOUT)


def wait_for(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    done = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        done.wait(0.02)
    raise AssertionError("condition not reached in time")


def test_children_start_in_order_and_stop_in_reverse() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    sup = Supervisor.start(child_id="root", specs=[spec(n, journal) for n in "abc"], directory=directory,
                           intensity=RestartIntensity(3, 10))
    sup.ask(Ping(), timeout=TIMEOUT)
    assert journal == ["start a", "start b", "start c"]
    assert directory.names() == ["a", "b", "c"]
    sup.stop(timeout=TIMEOUT)
    assert journal[3:] == ["stop c", "stop b", "stop a"]
    assert directory.get("a") is None


def test_a_crashed_child_is_replaced_and_its_siblings_are_told() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    sup = Supervisor.start(child_id="root", specs=[spec("a", journal), spec("b", journal)], directory=directory,
                           intensity=RestartIntensity(3, 10))
    sup.ask(Ping(), timeout=TIMEOUT)
    first = directory.get("b")
    assert first is not None
    first.tell(Crash())
    wait_for(lambda: directory.get("b") is not None and directory.get("b") is not first)
    wait_for(lambda: "a saw b restart" in journal)
    assert not first.is_alive()
    assert directory.get("b").ask(Ping(), timeout=TIMEOUT) == "pong"  # type: ignore[union-attr]
    assert journal.count("start b") == 2 and journal.count("start a") == 1  # one_for_one
    sup.stop(timeout=TIMEOUT)


def test_past_the_restart_intensity_the_supervisor_gives_up_and_stops_everything() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    gave_up = threading.Event()
    reasons: list[str] = []

    def on_give_up(reason: str) -> None:
        reasons.append(reason)
        gave_up.set()

    sup = Supervisor.start(child_id="root", specs=[spec("a", journal), spec("b", journal)], directory=directory,
                           intensity=RestartIntensity(2, 60), on_give_up=on_give_up)
    sup.ask(Ping(), timeout=TIMEOUT)
    for crash in range(1, 4):
        victim = directory.get("b")
        assert victim is not None
        victim.tell(Crash())
        if crash < 3:  # two restarts are within the intensity of 2 in 60 s
            wait_for(lambda: directory.get("b") not in (None, victim))
    assert gave_up.wait(TIMEOUT)
    assert journal.count("start b") == 3
    assert "b keeps failing" in reasons[0]
    wait_for(lambda: not sup.is_alive())
    assert directory.names() == []
    assert journal[-1] == "stop a"


def test_no_death_is_a_local_fault_unless_the_application_says_so() -> None:
    """Which deaths are the machine's fault is the application's to say (``describe_local_fault``;
    the service's actors say it of a full disk): by default a full disk is a crash like any other,
    counted against the restart intensity."""
    journal: list[str] = []
    directory = ActorDirectory()
    reasons: list[str] = []
    sup = start_supervisor([spec("b", journal)], directory, intensity=RestartIntensity(1, 60),
                           on_give_up=reasons.append)
    victim = crash_and_wait_for_restart(directory, "b")
    victim.tell(FillTheDisk())
    wait_for(lambda: not sup.is_alive())
    assert len(reasons) == 1 and "b keeps failing (OSError: [Errno 28] No space left on device)" in reasons[0]


def test_a_child_that_fails_in_on_start_fails_the_supervisor_start() -> None:
    journal: list[str] = []
    reasons: list[str] = []
    sup = Supervisor.start(
        child_id="root",
        specs=[spec("a", journal), spec("b", journal, fail_on_start=True), spec("c", journal)],
        directory=ActorDirectory(), intensity=RestartIntensity(3, 10), on_give_up=reasons.append,
    )
    with pytest.raises(pykka.ActorDeadError):
        sup.ask(Ping(), timeout=TIMEOUT)
    assert journal == ["start a", "stop a"]
    assert "b did not start" in reasons[0]


class Plain(pykka.ThreadingActor):
    def __init__(self, failures: list[str]) -> None:
        super().__init__()
        self.failures = failures

    def on_receive(self, message: Any) -> Any:
        if message == "boom":
            raise ValueError("boom")
        return "ok"

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self.failures.append(str(exception_value))


def test_pykka_failure_semantics_the_design_relies_on() -> None:
    """If a Pykka upgrade changes these, supervision silently breaks: this test says so first."""
    failures: list[str] = []
    ref = Plain.start(failures)
    with pytest.raises(ValueError):
        ref.ask("boom", timeout=TIMEOUT)  # under ask: the caller gets the error ...
    assert ref.ask("ping", timeout=TIMEOUT) == "ok"  # ... and the actor lives on
    assert failures == []
    ref.tell("boom")  # under tell: on_failure runs and the actor stops for good
    wait_for(lambda: not ref.is_alive())
    assert failures == ["boom"]
    with pytest.raises(pykka.ActorDeadError):
        ref.tell("ping")  # tells to a dead actor are refused, not queued


def test_restart_delays_grow_while_a_child_keeps_dying_and_reset_once_it_stayed_up() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    clock = FakeClock()
    schedule = FakeSchedule()
    policy = BackoffPolicy(initial=0.1, factor=2.0, cap=5.0, jitter=0.0, reset_after=30.0)
    sup = start_supervisor([spec("a", journal)], directory, clock=clock, schedule=schedule, backoff=policy,
                           intensity=RestartIntensity(10, 60, clock))
    for _ in range(3):
        clock.now += 1.0  # up for a second only: not long enough to count as recovered
        crash_and_wait_for_restart(directory, "a")
    assert schedule.delays == pytest.approx([0.1, 0.2, 0.4])
    clock.now += 30.0
    crash_and_wait_for_restart(directory, "a")
    assert schedule.delays[-1] == pytest.approx(0.1)
    sup.stop(timeout=TIMEOUT)


def test_while_a_child_waits_out_its_back_off_the_supervisor_keeps_answering() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    schedule = FakeSchedule(hold=True)
    sup = start_supervisor([spec("a", journal), spec("b", journal)], directory, schedule=schedule)
    victim = directory.get("b")
    assert victim is not None
    victim.tell(Crash())
    wait_for(lambda: len(schedule.held) == 1)
    assert sup.ask(Ping(), timeout=TIMEOUT) == "pong"
    assert directory.names() == ["a"]  # b is down until its back-off is over
    assert journal.count("start b") == 1
    schedule.release()
    wait_for(lambda: directory.get("b") not in (None, victim))
    wait_for(lambda: "a saw b restart" in journal)
    assert journal.count("start b") == 2
    sup.stop(timeout=TIMEOUT)


def test_the_restart_intensity_window_slides_with_the_injected_clock() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    clock = FakeClock()
    gave_up = threading.Event()
    sup = start_supervisor([spec("a", journal)], directory, clock=clock, intensity=RestartIntensity(2, 60, clock),
                           on_give_up=lambda reason: gave_up.set())
    crash_and_wait_for_restart(directory, "a")
    crash_and_wait_for_restart(directory, "a")
    clock.now = 60.0  # both restarts at t=0 have left the 60 s window
    crash_and_wait_for_restart(directory, "a")
    crash_and_wait_for_restart(directory, "a")
    assert not gave_up.is_set() and sup.is_alive()
    victim = directory.get("a")
    assert victim is not None
    victim.tell(Crash())  # the third restart within 60 s of t=60
    assert gave_up.wait(TIMEOUT)
    wait_for(lambda: not sup.is_alive())
    assert journal.count("start a") == 5


def test_giving_up_stops_the_remaining_children_in_reverse_start_order() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    gave_up = threading.Event()
    sup = start_supervisor([spec(n, journal) for n in "abcd"], directory, intensity=RestartIntensity(0, 60),
                           on_give_up=lambda reason: gave_up.set())
    victim = directory.get("b")
    assert victim is not None
    victim.tell(Crash())
    assert gave_up.wait(TIMEOUT)
    wait_for(lambda: not sup.is_alive())
    assert journal[4:] == ["stop d", "stop c", "stop a"]  # b crashed: Pykka runs no on_stop for it
    assert directory.names() == []


def _flaky_spec(name: str, journal: list[str], failing_starts: set[int]) -> ChildSpec:
    """A Recorder whose n-th start (1-based) fails in ``on_start`` when n is in ``failing_starts``."""
    starts = itertools.count(1)

    def start(parent: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
        fail = next(starts) in failing_starts
        return Recorder.start(name=name, journal=journal, supervisor=parent, fail_on_start=fail)

    return ChildSpec(name, start, shutdown_timeout=TIMEOUT, start_timeout=TIMEOUT)


def test_a_child_that_fails_to_restart_is_tried_again_after_a_longer_delay() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    schedule = FakeSchedule()
    policy = BackoffPolicy(initial=0.1, factor=2.0, cap=5.0, jitter=0.0)
    sup = start_supervisor([spec("a", journal), _flaky_spec("b", journal, failing_starts={2, 3})], directory,
                           schedule=schedule, backoff=policy)
    crash_and_wait_for_restart(directory, "b")
    wait_for(lambda: "a saw b restart" in journal)
    assert schedule.delays == pytest.approx([0.1, 0.2, 0.4])  # the death, then two failed starts
    assert journal.count("start b") == 2 and journal.count("a saw b restart") == 1
    sup.stop(timeout=TIMEOUT)


def test_failed_restart_attempts_count_against_the_restart_intensity() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    reasons: list[str] = []
    sup = start_supervisor([spec("a", journal), _flaky_spec("b", journal, failing_starts={2, 3})], directory,
                           intensity=RestartIntensity(2, 60), on_give_up=reasons.append)
    victim = directory.get("b")
    assert victim is not None
    victim.tell(Crash())
    wait_for(lambda: not sup.is_alive())
    assert len(reasons) == 1 and "b cannot be restarted" in reasons[0]
    assert journal[-1] == "stop a" and directory.names() == []


class ExplodingSupervisor(Supervisor):
    def handle(self, message: Any) -> Any:
        if message == "explode":
            raise RuntimeError("a bug in the supervisor")
        return super().handle(message)


def test_a_supervisor_that_dies_of_its_own_bug_stops_its_children_in_reverse() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    sup = ExplodingSupervisor.start(child_id="root", specs=[spec(n, journal) for n in "ab"],
                                    directory=directory, intensity=RestartIntensity(1, 60))
    sup.ask(Ping(), timeout=TIMEOUT)
    sup.tell("explode")
    wait_for(lambda: not sup.is_alive())
    wait_for(lambda: len(journal) == 4)
    assert journal[2:] == ["stop b", "stop a"]  # else a new supervisor would start them a second time
    assert directory.names() == []


def test_a_nested_supervisor_that_gives_up_is_restarted_by_its_parent() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    parent_gave_up: list[str] = []

    def start_inner(parent: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
        journal.append("start inner")
        return Supervisor.start(child_id="inner", specs=[spec("x", journal), spec("y", journal)],
                                directory=directory, intensity=RestartIntensity(1, 60), supervisor=parent,
                                schedule=FakeSchedule())

    sup = start_supervisor([spec("a", journal), ChildSpec("inner", start_inner, start_timeout=TIMEOUT)], directory,
                           on_give_up=parent_gave_up.append)
    first_inner = directory.get("inner")
    assert first_inner is not None
    crash_and_wait_for_restart(directory, "y")  # within the inner intensity of 1
    victim = directory.get("y")
    assert victim is not None
    victim.tell(Crash())  # past it: inner stops x and y and fails upward
    wait_for(lambda: directory.get("inner") not in (None, first_inner))
    wait_for(lambda: journal.count("start y") == 3)
    assert not first_inner.is_alive()
    assert journal.count("start inner") == 2 and journal.count("start x") == 2
    assert journal.count("start a") == 1  # one_for_one at the top: a is untouched
    assert "stop x" in journal
    assert parent_gave_up == [] and sup.is_alive()
    new_y = directory.get("y")
    assert new_y is not None and new_y.ask(Ping(), timeout=TIMEOUT) == "pong"
    sup.stop(timeout=TIMEOUT)
    assert directory.names() == []


def test_a_message_in_flight_at_three_deaths_is_named_as_poison_to_every_child() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    sup = start_supervisor([spec(n, journal) for n in "abc"], directory)
    for _ in range(3):
        crash_and_wait_for_restart(directory, "b", in_flight="INBOX\x001\x0042")
    poison = "was told b:INBOX\x001\x0042 is poison after 3"
    wait_for(lambda: all(f"{n} {poison}" in journal for n in "abc"))
    wait_for(lambda: journal.count("a saw b restart") == 3)
    # the poison notice reaches a sibling before the restart that makes it re-drive the work
    assert journal.index(f"a {poison}") < len(journal) - 1 - journal[::-1].index("a saw b restart")
    assert sum("is poison" in line for line in journal) == 3
    crash_and_wait_for_restart(directory, "b", in_flight="INBOX\x001\x0042")  # the count started again
    wait_for(lambda: journal.count("a saw b restart") == 4)
    assert sum("is poison" in line for line in journal) == 3
    sup.stop(timeout=TIMEOUT)


class MessageKey(NamedTuple):
    folder: str
    uidvalidity: int
    uid: int


def test_the_work_in_flight_is_any_hashable_key_named_back_as_it_was() -> None:
    """The supervisor counts deaths per key and never looks inside: a typed key comes back typed."""
    journal: list[str] = []
    directory = ActorDirectory()
    sup = start_supervisor([spec("a", journal), spec("b", journal)], directory)
    for _ in range(3):
        crash_and_wait_for_restart(directory, "b", in_flight=MessageKey("INBOX", 1, 42))
    poison = "a was told b:MessageKey(folder='INBOX', uidvalidity=1, uid=42) is poison after 3"
    wait_for(lambda: poison in journal)
    sup.stop(timeout=TIMEOUT)


def test_deaths_on_different_messages_are_not_poison() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    sup = start_supervisor([spec("a", journal), spec("b", journal)], directory)
    for key in ["k1", "k2", "k1", "k2", None, None, None]:
        crash_and_wait_for_restart(directory, "b", in_flight=key)
    wait_for(lambda: journal.count("a saw b restart") == 7)  # poison would have been told before this
    assert not any("is poison" in line for line in journal)
    sup.stop(timeout=TIMEOUT)


class Gate(pykka.ThreadingActor):
    """Fails on "fail" once the gate opens; records everything else it handles."""

    def __init__(self, gate: threading.Event, handled: list[str]) -> None:
        super().__init__()
        self.gate, self.handled = gate, handled

    def on_receive(self, message: Any) -> Any:
        if message == "fail":
            self.gate.wait(TIMEOUT)
            raise RuntimeError("fail")
        self.handled.append(message)
        return None


def test_pykka_drops_the_tells_queued_behind_a_failure() -> None:
    """Why lost work must be re-driven from stored state: the mailbox of a dead actor is gone."""
    gate, handled = threading.Event(), []
    ref = Gate.start(gate, handled)
    ref.tell("fail")
    ref.tell("queued 1")
    ref.tell("queued 2")
    gate.set()
    wait_for(lambda: not ref.is_alive())
    assert handled == []


def test_a_supervisor_describes_its_children_with_their_restart_counts() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    events = EventBus()
    seen: list[Any] = []
    events.subscribe(seen.append)
    sup = start_supervisor([spec("a", journal), spec("b", journal)], directory, publish=events.publish)
    crash_and_wait_for_restart(directory, "b")
    wait_for(lambda: sup.ask(DescribeChildren(), timeout=TIMEOUT)[1]["state"] == "running")
    described = sup.ask(DescribeChildren(), timeout=TIMEOUT)
    assert [(c["id"], c["state"], c["restarts"]) for c in described] == [("a", "running", 0), ("b", "running", 1)]
    assert described[1]["ref"] is directory.get("b")
    assert [(e.child_id, e.deaths, e.restarted) for e in seen if isinstance(e, ActorRestarting)] == [("b", 1, True)]
    sup.stop(timeout=TIMEOUT)
