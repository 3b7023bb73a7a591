"""Supervisors with real Pykka actors: start order, reverse stop, one_for_one restart, giving up."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from futurnal.actors.directory import ActorDirectory
from futurnal.actors.messages import Ping, SiblingRestarted
from futurnal.actors.supervised import SupervisedActor
from futurnal.supervisors.restart_intensity import RestartIntensity
from futurnal.supervisors.supervisor import ChildSpec, Supervisor

TIMEOUT = 10


class Crash:
    """Tell this to a Recorder to make it fail the Pykka way (an exception under tell)."""


class Recorder(SupervisedActor):
    def __init__(self, *, name: str, journal: list[str], fail_on_start: bool = False, supervisor: Any = None) -> None:
        super().__init__(child_id=name, supervisor=supervisor)
        self.name = name
        self.journal = journal
        self.fail_on_start = fail_on_start

    def on_start(self) -> None:
        if self.fail_on_start:
            raise RuntimeError(f"{self.name} cannot start")
        self.journal.append(f"start {self.name}")

    def on_stop(self) -> None:
        self.journal.append(f"stop {self.name}")

    def handle(self, message: Any) -> Any:
        if isinstance(message, Crash):
            raise RuntimeError("poison")
        if isinstance(message, SiblingRestarted):
            self.journal.append(f"{self.name} saw {message.child_id} restart")
            return None
        return super().handle(message)


def _spec(name: str, journal: list[str], **kwargs: Any) -> ChildSpec:
    return ChildSpec(name, lambda parent: Recorder.start(name=name, journal=journal, supervisor=parent, **kwargs),
                     shutdown_timeout=TIMEOUT, start_timeout=TIMEOUT)


@pytest.fixture(autouse=True)
def no_actor_left_behind() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all(timeout=TIMEOUT)


def _wait_for(predicate: Any, timeout: float = TIMEOUT) -> None:
    done = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        done.wait(0.02)
    raise AssertionError("condition not reached in time")


def test_children_start_in_order_and_stop_in_reverse() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    sup = Supervisor.start(child_id="root", specs=[_spec(n, journal) for n in "abc"], directory=directory,
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
    sup = Supervisor.start(child_id="root", specs=[_spec("a", journal), _spec("b", journal)], directory=directory,
                           intensity=RestartIntensity(3, 10))
    sup.ask(Ping(), timeout=TIMEOUT)
    first = directory.get("b")
    assert first is not None
    first.tell(Crash())
    _wait_for(lambda: directory.get("b") is not None and directory.get("b") is not first)
    _wait_for(lambda: "a saw b restart" in journal)
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

    sup = Supervisor.start(child_id="root", specs=[_spec("a", journal), _spec("b", journal)], directory=directory,
                           intensity=RestartIntensity(2, 60), on_give_up=on_give_up)
    sup.ask(Ping(), timeout=TIMEOUT)
    for crash in range(1, 4):
        victim = directory.get("b")
        assert victim is not None
        victim.tell(Crash())
        if crash < 3:  # two restarts are within the intensity of 2 in 60 s
            _wait_for(lambda: directory.get("b") not in (None, victim))
    assert gave_up.wait(TIMEOUT)
    assert journal.count("start b") == 3
    assert "b keeps failing" in reasons[0]
    _wait_for(lambda: not sup.is_alive())
    assert directory.names() == []
    assert journal[-1] == "stop a"


def test_a_child_that_fails_in_on_start_fails_the_supervisor_start() -> None:
    journal: list[str] = []
    reasons: list[str] = []
    sup = Supervisor.start(
        child_id="root",
        specs=[_spec("a", journal), _spec("b", journal, fail_on_start=True), _spec("c", journal)],
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
    _wait_for(lambda: not ref.is_alive())
    assert failures == ["boom"]
    with pytest.raises(pykka.ActorDeadError):
        ref.tell("ping")  # tells to a dead actor are refused, not queued
