"""Restart strategies, restart types, back-off and poison counting: plain objects, then real actors."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from futurnal.supervisors.backoff import BackoffPolicy, RestartBackoff
from futurnal.supervisors.directory import ActorDirectory
from futurnal.supervisors.poison import PoisonCounter
from futurnal.supervisors.protocol import PoisonMessage
from futurnal.supervisors.restart_intensity import RestartIntensity
from futurnal.supervisors.strategy import restart_group
from futurnal.supervisors.supervisor import ChildSpec, Supervisor

from .test_supervisor import (
    TIMEOUT,
    Crash,
    FakeClock,
    FakeSchedule,
    StopYourself,
    crash_and_wait_for_restart,
    spec,
    start_supervisor,
    wait_for,
)


@pytest.fixture(autouse=True)
def no_actor_left_behind() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all(timeout=TIMEOUT)


# -- which children a death restarts (plain function) ---------------------------------------


@pytest.mark.parametrize(
    ("strategy", "dead", "group"),
    [
        ("one_for_one", "b", ["b"]),
        ("one_for_all", "b", ["a", "b", "c", "d"]),
        ("one_for_all", "d", ["a", "b", "c", "d"]),
        ("rest_for_one", "a", ["a", "b", "c", "d"]),
        ("rest_for_one", "b", ["b", "c", "d"]),
        ("rest_for_one", "d", ["d"]),
    ],
)
def test_the_restart_group_follows_the_strategy_in_start_order(strategy: str, dead: str, group: list[str]) -> None:
    assert restart_group(strategy, list("abcd"), dead) == group  # type: ignore[arg-type]


def test_a_restart_group_for_an_unknown_child_or_strategy_is_refused() -> None:
    with pytest.raises(ValueError):
        restart_group("one_for_one", ["a"], "z")
    with pytest.raises(ValueError):
        restart_group("all_for_none", ["a"], "a")  # type: ignore[arg-type]


def test_unknown_restart_types_and_strategies_are_refused_when_configured() -> None:
    with pytest.raises(ValueError, match="restart type"):
        ChildSpec("a", lambda parent: parent, restart="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="strategy"):
        Supervisor.start(child_id="root", specs=[], directory=ActorDirectory(), intensity=RestartIntensity(1, 1),
                         strategy="all_for_none")


# -- back-off (plain objects) ----------------------------------------------------------------


def test_back_off_doubles_from_the_initial_delay_up_to_the_cap() -> None:
    policy = BackoffPolicy(initial=0.1, factor=2.0, cap=5.0, jitter=0.0)
    delays = [policy.delay(attempt, 0.5) for attempt in range(9)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])
    assert policy.delay(10_000, 0.0) == 5.0  # a child that died all week does not overflow


def test_jitter_takes_at_most_its_fraction_off_and_never_exceeds_the_cap() -> None:
    policy = BackoffPolicy(initial=0.1, factor=2.0, cap=5.0, jitter=0.25)
    assert policy.delay(2, 0.0) == pytest.approx(0.4)
    assert policy.delay(2, 0.999999) == pytest.approx(0.3, rel=1e-5)
    draws = random.Random(7)
    for attempt in range(12):
        base = policy.base_delay(attempt)
        for _ in range(50):
            delay = policy.delay(attempt, draws.random())
            assert base * 0.75 <= delay <= base <= 5.0
    spread = {round(policy.delay(3, draws.random()), 6) for _ in range(20)}
    assert len(spread) > 1  # jitter actually varies the delay


@pytest.mark.parametrize(
    "bad",
    [
        {"initial": -1.0},
        {"initial": 6.0, "cap": 5.0},
        {"factor": 0.5},
        {"jitter": 1.5},
        {"reset_after": -1.0},
    ],
)
def test_nonsensical_back_off_policies_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(**bad)


def test_back_off_keeps_growing_while_the_child_dies_soon_after_each_start() -> None:
    clock = FakeClock()
    backoff = RestartBackoff(BackoffPolicy(initial=1.0, factor=2.0, cap=60.0, jitter=0.0, reset_after=30.0),
                             clock, lambda: 0.0)
    delays = []
    for _ in range(4):
        backoff.started()
        clock.now += 29.0  # up, but not for long enough
        delays.append(backoff.next_delay())
    assert delays == [1.0, 2.0, 4.0, 8.0]


def test_back_off_resets_only_after_the_child_stayed_up_long_enough() -> None:
    clock = FakeClock()
    backoff = RestartBackoff(BackoffPolicy(initial=1.0, factor=2.0, cap=60.0, jitter=0.0, reset_after=30.0),
                             clock, lambda: 0.0)
    backoff.started()
    clock.now += 1.0
    assert backoff.next_delay() == 1.0  # died soon after starting
    clock.now += 100.0  # then a long time of failed starts, which is not uptime
    assert [backoff.next_delay(), backoff.next_delay()] == [2.0, 4.0]
    backoff.started()
    clock.now += 30.0
    assert backoff.next_delay() == 1.0
    assert backoff.attempts == 1


# -- poison counting (plain object) ------------------------------------------------------------


def test_the_same_work_in_flight_at_the_threshold_th_death_is_poison_once() -> None:
    counter = PoisonCounter(threshold=3)
    assert [counter.record("fetcher/x", "m1") for _ in range(2)] == [None, None]
    assert counter.record("fetcher/x", "m1") == PoisonMessage("fetcher/x", "m1", 3)
    assert counter.record("fetcher/x", "m1") is None  # the count started again


def test_different_work_other_children_and_no_work_at_all_are_not_poison() -> None:
    counter = PoisonCounter(threshold=2)
    assert counter.record("fetcher/x", "m1") is None
    assert counter.record("fetcher/x", "m2") is None
    assert counter.record("fetcher/y", "m1") is None
    assert counter.record("fetcher/x", None) is None
    assert counter.record("fetcher/x", None) is None
    assert counter.record("fetcher/x", "m2") == PoisonMessage("fetcher/x", "m2", 2)


def test_any_hashable_work_is_counted_by_value_and_named_back_unchanged() -> None:
    counter = PoisonCounter(threshold=2)
    assert counter.record("fetcher/x", ("INBOX", 7, 42)) is None
    assert counter.record("fetcher/x", ("INBOX", 8, 42)) is None  # another value: another key
    assert counter.record("fetcher/x", ("INBOX", 7, 42)) == PoisonMessage("fetcher/x", ("INBOX", 7, 42), 2)


def test_the_poison_counter_forgets_the_least_recently_counted_keys_past_its_size() -> None:
    counter = PoisonCounter(threshold=2, max_keys=2)
    counter.record("c", "old")
    counter.record("c", "k1")
    counter.record("c", "k2")  # "old" is forgotten
    assert counter.record("c", "old") is None
    assert counter.record("c", "k2") == PoisonMessage("c", "k2", 2)


# -- strategies with real actors ---------------------------------------------------------------


def _lifecycle(journal: list[str], after: int) -> list[str]:
    """Starts and stops after the first ``after`` entries, without the sibling notices."""
    return [line for line in journal[after:] if line.startswith(("start ", "stop "))]


def _refs(directory: ActorDirectory) -> dict[str, pykka.ActorRef[Any]]:
    refs = {name: directory.get(name) for name in directory.names()}
    return {name: ref for name, ref in refs.items() if ref is not None}


def test_one_for_one_restarts_only_the_child_that_died() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    sup = start_supervisor([spec(n, journal) for n in "abc"], directory, strategy="one_for_one")
    before = _refs(directory)
    crash_and_wait_for_restart(directory, "b")
    wait_for(lambda: {"a saw b restart", "c saw b restart"} <= set(journal))
    assert _lifecycle(journal, 3) == ["start b"]
    after = _refs(directory)
    assert after["a"] is before["a"] and after["c"] is before["c"] and after["b"] is not before["b"]
    sup.stop(timeout=TIMEOUT)


def test_one_for_all_stops_the_others_in_reverse_and_restarts_everyone_in_order() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    sup = start_supervisor([spec(n, journal) for n in "abc"], directory, strategy="one_for_all")
    before = _refs(directory)
    crash_and_wait_for_restart(directory, "b")
    wait_for(lambda: {"a saw b restart", "c saw b restart"} <= set(journal))
    assert _lifecycle(journal, 3) == ["stop c", "stop a", "start a", "start b", "start c"]
    after = _refs(directory)
    assert sorted(after) == ["a", "b", "c"]
    assert all(after[n] is not before[n] and not before[n].is_alive() for n in "abc")
    sup.stop(timeout=TIMEOUT)


def test_rest_for_one_restarts_the_dead_child_and_those_started_after_it() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    sup = start_supervisor([spec(n, journal) for n in "abcd"], directory, strategy="rest_for_one")
    before = _refs(directory)
    crash_and_wait_for_restart(directory, "b")
    wait_for(lambda: {"a saw b restart", "c saw b restart", "d saw b restart"} <= set(journal))
    assert _lifecycle(journal, 4) == ["stop d", "stop c", "start b", "start c", "start d"]
    after = _refs(directory)
    assert after["a"] is before["a"]
    assert all(after[n] is not before[n] for n in "bcd")
    sup.stop(timeout=TIMEOUT)
    assert _lifecycle(journal, 4)[-4:] == ["stop d", "stop c", "stop b", "stop a"]


def test_rest_for_one_folds_a_waiting_restart_into_an_earlier_childs() -> None:
    """c is waiting out its back-off when a dies: c must come back after a and b, once."""
    journal: list[str] = []
    directory = ActorDirectory()
    schedule = FakeSchedule(hold=True)
    sup = start_supervisor([spec(n, journal) for n in "abc"], directory, strategy="rest_for_one", schedule=schedule)

    def crash_and_wait_until_down(name: str) -> None:
        victim = directory.get(name)
        assert victim is not None
        victim.tell(Crash())
        wait_for(lambda: directory.get(name) is None)

    crash_and_wait_until_down("c")
    crash_and_wait_until_down("a")
    wait_for(lambda: len(schedule.held) == 2)
    schedule.release()
    wait_for(lambda: sorted(directory.names()) == ["a", "b", "c"])
    wait_for(lambda: {"b saw a restart", "b saw c restart", "c saw a restart", "a saw c restart"} <= set(journal))
    assert _lifecycle(journal, 3) == ["stop b", "start a", "start b", "start c"]
    sup.stop(timeout=TIMEOUT)


# -- restart types with real actors ------------------------------------------------------------


def test_permanent_and_transient_children_are_restarted_after_a_crash() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    sup = start_supervisor([spec("p", journal, restart="permanent"), spec("t", journal, restart="transient")],
                           directory)
    crash_and_wait_for_restart(directory, "p")
    crash_and_wait_for_restart(directory, "t")
    assert journal.count("start p") == 2 and journal.count("start t") == 2
    sup.stop(timeout=TIMEOUT)


def test_a_transient_child_that_stops_normally_is_not_restarted() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    sup = start_supervisor([spec("a", journal), spec("t", journal, restart="transient")], directory)
    quitter = directory.get("t")
    assert quitter is not None
    quitter.tell(StopYourself())
    wait_for(lambda: not quitter.is_alive())
    crash_and_wait_for_restart(directory, "a")  # the supervisor has had its chance to react
    assert journal.count("start t") == 1
    assert directory.get("t") is None
    sup.stop(timeout=TIMEOUT)


def test_a_temporary_child_that_crashes_is_forgotten_without_using_up_the_intensity() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    gave_up: list[str] = []
    sup = start_supervisor([spec("a", journal), spec("t", journal, restart="temporary")], directory,
                           intensity=RestartIntensity(0, 60), on_give_up=gave_up.append)
    victim = directory.get("t")
    assert victim is not None
    victim.tell(Crash())
    wait_for(lambda: directory.names() == ["a"])
    assert sup.is_alive() and gave_up == []
    assert journal.count("start t") == 1
    sup.stop(timeout=TIMEOUT)
    assert journal[-1] == "stop a"


def test_one_for_all_stops_a_temporary_sibling_for_good_but_restarts_a_transient_one() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    specs = [spec("a", journal), spec("tmp", journal, restart="temporary"), spec("tr", journal, restart="transient")]
    sup = start_supervisor(specs, directory, strategy="one_for_all")
    crash_and_wait_for_restart(directory, "a")
    wait_for(lambda: "tr saw a restart" in journal)
    assert _lifecycle(journal, 3) == ["stop tr", "stop tmp", "start a", "start tr"]
    assert directory.names() == ["a", "tr"]
    sup.stop(timeout=TIMEOUT)
    assert _lifecycle(journal, 3)[-2:] == ["stop tr", "stop a"]
