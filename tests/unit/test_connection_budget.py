from __future__ import annotations

import threading

import pytest

from futurnal.imap.connection_budget import ConnectionBudget
from futurnal.imap.errors import ConnectionFailed


def test_connections_beyond_the_budget_wait_then_give_up_with_a_reason() -> None:
    budget = ConnectionBudget(2)
    budget.acquire(timeout=1)
    budget.acquire(timeout=1)
    assert budget.in_use == 2
    with pytest.raises(ConnectionFailed, match="all 2 connection"):
        budget.acquire(timeout=0.05)
    assert budget.in_use == 2


def test_a_waiting_connection_gets_the_slot_another_releases() -> None:
    budget = ConnectionBudget(1)
    budget.acquire(timeout=1)
    got_it = threading.Event()

    def second() -> None:
        budget.acquire(timeout=10)
        got_it.set()

    waiter = threading.Thread(target=second)
    waiter.start()
    assert not got_it.wait(0.05)
    budget.release()
    assert got_it.wait(10)
    waiter.join(10)
    assert budget.in_use == 1


def test_a_budget_allows_at_least_one_connection() -> None:
    with pytest.raises(ValueError):
        ConnectionBudget(0)


def test_a_budget_lowered_after_a_refusal_keeps_one_connection_fewer_but_never_none() -> None:
    budget = ConnectionBudget(3)
    budget.acquire(timeout=1)
    budget.acquire(timeout=1)
    assert budget.lower() and budget.limit == 2  # a free slot goes at once
    with pytest.raises(ConnectionFailed, match="all 2 connection"):
        budget.acquire(timeout=0.05)
    assert budget.lower() and budget.limit == 1  # both in use: one is taken away at its release
    budget.release()
    with pytest.raises(ConnectionFailed):
        budget.acquire(timeout=0.05)
    budget.release()
    budget.acquire(timeout=1)
    assert not budget.lower() and budget.limit == 1


def test_a_provider_hold_refuses_every_new_connection_of_the_mailbox_until_it_ends() -> None:
    now = [1_000_000.0]
    budget = ConnectionBudget(4, clock=lambda: now[0])
    budget.hold(now[0] + 60, "[OVERQUOTA] Account exceeded command or bandwidth limits")
    with pytest.raises(ConnectionFailed, match="holds this mailbox back until .*OVERQUOTA"):
        budget.acquire(timeout=0.1)  # a watcher reconnecting during the fetcher's hold: no login
    assert budget.in_use == 0
    now[0] += 61
    budget.acquire(timeout=0.1)  # the hold is over
    budget.release()
    budget.hold(now[0] + 60, "again")
    budget.release_hold()  # a sync got through
    budget.acquire(timeout=0.1)
    assert budget.in_use == 1
