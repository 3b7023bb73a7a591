"""Parser pools lent to folder syncs: warm ones reused across mailboxes, idle ones bounded and closed."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from futurnal.parse.parse_pool import ParsePool, PoolUnavailable
from futurnal.parse.parse_pools import ParsePools
from futurnal.parse.parser import parse_message


class FakePool:
    """Stands in for a ParsePool where only lending is under test: it counts its closing."""

    made = 0

    def __init__(self) -> None:
        FakePool.made += 1
        self.number = FakePool.made
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pools(keep: int = 2, clock: Clock | None = None) -> Any:
    return ParsePools(keep=keep, idle_seconds=60, clock=clock or Clock(), make_pool=FakePool)  # type: ignore[arg-type]


def test_a_pool_given_back_is_lent_again_warm_instead_of_a_new_one() -> None:
    pools = _pools()
    first = pools.borrow()
    pools.give_back(first)
    assert pools.borrow() is first
    assert pools.counts() == (1, 0)
    pools.close()


def test_at_most_keep_idle_pools_stay_and_the_others_close_when_given_back() -> None:
    pools = _pools(keep=2)
    lent = [pools.borrow() for _ in range(5)]  # a burst: never waits, five pools
    assert len({id(pool) for pool in lent}) == 5
    for pool in lent:
        pools.give_back(pool)
    assert pools.counts() == (0, 2)
    assert [pool.closed for pool in lent] == [0, 0, 1, 1, 1]
    pools.close()
    assert [pool.closed for pool in lent] == [1, 1, 1, 1, 1]


def test_an_unhealthy_pool_is_closed_not_kept() -> None:
    pools = _pools()
    broken = pools.borrow()
    pools.give_back(broken, healthy=False)
    assert broken.closed == 1 and pools.counts() == (0, 0)
    assert pools.borrow() is not broken
    pools.close()


def test_pools_idle_past_the_limit_are_closed_and_recent_ones_kept() -> None:
    clock = Clock()
    pools = _pools(keep=3, clock=clock)
    old, recent = pools.borrow(), pools.borrow()
    pools.give_back(old)
    clock.now += 50
    pools.give_back(recent)
    clock.now += 15  # old idle 65 s, recent 15 s
    assert pools.release_idle() == 1
    assert (old.closed, recent.closed) == (1, 0)
    assert pools.counts() == (0, 1)
    pools.close()


def _release_timers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "parse-pools-release" and t.is_alive()}


def test_after_close_borrowing_is_refused_and_a_pool_still_lent_is_closed_on_return() -> None:
    others = _release_timers()  # another test's system may still have one running
    pools = _pools()
    idle = pools.borrow()
    pools.give_back(idle)  # arms this lender's timer
    lent = pools.borrow()
    pools.close()
    with pytest.raises(PoolUnavailable):
        pools.borrow()
    pools.give_back(lent)
    assert lent.closed == 1
    assert not _release_timers() - others  # close() ended this lender's timer


def test_two_mailboxes_one_after_the_other_use_the_same_worker_processes() -> None:
    pools = ParsePools(workers=1, timeout=30.0, keep=1)
    raw = b"From: a@example.org\r\nSubject: hello\r\nMessage-ID: <1@example.org>\r\n\r\nHi\r\n"
    try:
        first: ParsePool = pools.borrow()
        assert list(first.submit([raw]).outcomes()) == [parse_message(raw)]
        workers = [worker.process.pid for worker in first._workers]
        pools.give_back(first)
        second = pools.borrow()  # the next mailbox's sync
        assert list(second.submit([raw]).outcomes()) == [parse_message(raw)]
        assert [worker.process.pid for worker in second._workers] == workers  # no new interpreter
        pools.give_back(second)
    finally:
        pools.close()
