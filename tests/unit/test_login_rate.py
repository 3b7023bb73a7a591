"""Logins to one server host are spread out: a burst at once, then a steady rate, per host; a
stop ends every wait at once. Without real time: the clock and the wait are fakes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from futurnal.imap.errors import ServiceStopping
from futurnal.imap.live_connections import LiveConnections
from futurnal.imap.login_rate import LoginRateLimiter, host_key
from futurnal.imap.session import ConnectionSettings, ImapSession


class FakeTime:
    """A clock that moves only when a caller waits, by exactly what it waits."""

    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        self.now += seconds
        return stop.is_set()


def _limiter(per_second: float, burst: int) -> tuple[LoginRateLimiter, FakeTime]:
    fake = FakeTime()
    return LoginRateLimiter(per_second, burst, clock=fake.clock, wait=fake.wait), fake


def _turns(limiter: LoginRateLimiter, fake: FakeTime, host: str, count: int) -> list[float]:
    """When each of ``count`` logins, asked for one after the other, got its turn."""
    started = []
    for _ in range(count):
        limiter.take_turn(host)
        started.append(round(fake.now - 100.0, 6))
    return started


def test_a_burst_goes_at_once_then_logins_come_at_the_rate() -> None:
    limiter, fake = _limiter(per_second=2, burst=3)
    assert _turns(limiter, fake, "imap.example.org", 6) == [0, 0, 0, 0.5, 1.0, 1.5]


def test_a_quiet_host_gets_its_burst_back() -> None:
    limiter, fake = _limiter(per_second=2, burst=3)
    _turns(limiter, fake, "imap.example.org", 3)
    fake.now += 0.5  # one interval: one login back
    assert _turns(limiter, fake, "imap.example.org", 2) == [0.5, 1.0]
    fake.now += 60
    assert _turns(limiter, fake, "imap.example.org", 4) == [61, 61, 61, 61.5]


def test_each_host_has_its_own_turns_whatever_the_spelling_or_port() -> None:
    limiter, fake = _limiter(per_second=1, burst=1)
    assert limiter.take_turn("imap.example.org") == 0
    assert limiter.take_turn("imap.other.net") == 0  # another host does not wait for this one
    assert limiter.take_turn("IMAP.Example.ORG.") == pytest.approx(1.0)  # the same host: its next turn
    assert host_key(" IMAP.Example.org. ") == "imap.example.org"


def test_no_limit_at_rate_zero_and_bad_settings_are_refused() -> None:
    limiter, fake = _limiter(per_second=0, burst=1)
    assert _turns(limiter, fake, "h", 100) == [0] * 100
    with pytest.raises(ValueError):
        LoginRateLimiter(-1, 1)
    with pytest.raises(ValueError):
        LoginRateLimiter(1, 0)


def test_turns_are_never_handed_out_twice_under_concurrent_callers() -> None:
    """Fifty threads at once, with the clock standing still: each reserves a slot of its own."""

    class Reserved(Exception):
        pass

    def reserve(_stop: threading.Event, seconds: float) -> bool:
        raise Reserved(seconds)

    limiter = LoginRateLimiter(10, 2, clock=lambda: 0.0, wait=reserve)
    delays: list[float] = []
    lock = threading.Lock()

    def login() -> None:
        try:
            delay = limiter.take_turn("h", "alice")
        except Reserved as reserved:
            delay = reserved.args[0]
        with lock:
            delays.append(round(delay, 6))

    threads = [threading.Thread(target=login) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(delays) == [0, 0, *(round(0.1 * n, 6) for n in range(1, 49))]
    assert limiter.waiting() == {}  # a wait that ended by an exception is not counted any more


def wait_until(condition: Callable[[], Any], what: str) -> None:
    """Poll ``condition`` (a thread's progress) for up to 10 s."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_a_stop_ends_a_wait_at_once_and_refuses_later_turns() -> None:
    limiter = LoginRateLimiter(per_second=0.01, burst=1)  # the second login would wait 100 s
    limiter.take_turn("h", "alice")
    outcome: list[BaseException] = []
    waiter = threading.Thread(target=lambda: _catch(outcome, lambda: limiter.take_turn("h", "bob")))
    waiter.start()
    wait_until(lambda: limiter.waiting() == {"bob": 1}, "the second login did not wait for its turn")
    started = time.monotonic()
    limiter.stop()
    waiter.join(timeout=5)
    assert not waiter.is_alive() and time.monotonic() - started < 2
    assert [type(e) for e in outcome] == [ServiceStopping] and "stopping" in str(outcome[0])
    assert limiter.waiting() == {}
    with pytest.raises(ServiceStopping):
        limiter.take_turn("another.host")


def _catch(outcome: list[BaseException], call: Callable[[], Any]) -> None:
    try:
        call()
    except BaseException as exc:
        outcome.append(exc)


def test_cutting_the_connections_ends_a_session_waiting_for_its_login_turn() -> None:
    """The session takes its turn before connecting: cut_all (what a stop does) ends the wait,
    and the connection is never opened."""
    live = LiveConnections(LoginRateLimiter(per_second=0.01, burst=1))
    live.take_turn("127.0.0.1", "alice")  # the host's only turn for the next 100 s
    settings = ConnectionSettings("127.0.0.1", 9, "bob", security="plain", connect_timeout=1)
    outcome: list[BaseException] = []
    connect = ImapSession(settings, live=live, owner="bob").connect
    session = threading.Thread(target=lambda: _catch(outcome, lambda: connect("pw")))
    session.start()
    wait_until(lambda: live.waiting_by_owner() == {"bob": 1}, "the session did not wait for its turn")
    live.cut_all()
    session.join(timeout=5)
    assert not session.is_alive()
    assert [type(e) for e in outcome] == [ServiceStopping]  # not a refused TCP connection: it never tried
    with pytest.raises(ServiceStopping):
        live.take_turn("127.0.0.1")
