"""A folder watch costs nothing while idle and stops at once (against a scripted IMAP server).

The watch's thread must block in the socket until the server speaks or a renewal is due, never
wake on a timer just to look at a stop flag: with a thousand mailboxes such wake-ups add up to
real CPU. So stopping cannot rely on the thread looking; ``stop()`` has to wake it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from futurnal.imap.idle_watch import IdleWatch, WatchEvent, WatchSettings
from futurnal.imap.session import ConnectionSettings, ImapSession
from tests.servers.hostile_imap import Folder, HostileImap

HOURS = 3600.0  # renewal and poll periods far beyond the test: only stop() can end the loop


@pytest.fixture
def server() -> Any:
    with HostileImap({"INBOX": Folder(uidvalidity=7)}) as running:
        yield running


class Recorder:
    """The watch's events, and a way to wait for one."""

    def __init__(self) -> None:
        self.events: list[WatchEvent] = []
        self._changed = threading.Condition()

    def __call__(self, event: WatchEvent) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(self, kind: str, timeout: float = 10.0) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: any(e.kind == kind for e in self.events), timeout), self.events

    def kinds(self) -> list[str]:
        with self._changed:
            return [e.kind for e in self.events]


def _watch(server: HostileImap, recorder: Recorder, sessions: list[ImapSession]) -> IdleWatch:
    settings = ConnectionSettings("127.0.0.1", server.port, "alice", security="plain")

    def connect() -> ImapSession:
        session = ImapSession(settings).connect("pw")
        sessions.append(session)
        return session

    return IdleWatch(mailbox="alice", folder="INBOX", connect=connect, notify=recorder, stop=threading.Event(),
                     settings=WatchSettings(renew_seconds=HOURS, poll_seconds=HOURS))


def _counting(session: ImapSession, name: str) -> list[float]:
    """Count calls of the session's client method ``name`` (the calls, not their time)."""
    calls: list[float] = []
    client = session.client
    original: Callable[..., Any] = getattr(client, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("timeout", 0.0))
        return original(*args, **kwargs)

    setattr(client, name, counted)
    return calls


def test_a_watch_blocked_in_idle_makes_no_timed_wakeups_and_stop_wakes_it(server: HostileImap) -> None:
    recorder, sessions = Recorder(), []
    watch = _watch(server, recorder, sessions)
    thread = threading.Thread(target=watch.run, daemon=True)
    thread.start()
    recorder.wait_for("changed")  # the catch-up after IDLE began
    idle_checks = _counting(sessions[0], "idle_check")
    # Whatever it is doing now, in a second it must not have looked up again.
    assert not threading.Event().wait(1.5)
    assert len(idle_checks) <= 1, idle_checks  # at most the one wait it entered, with the renewal's timeout
    assert all(timeout > 60 for timeout in idle_checks), idle_checks

    watch.stop()
    thread.join(timeout=10)
    assert not thread.is_alive(), "stop() did not wake the watch blocked in IDLE"
    assert watch.mode == "stopped"
    assert recorder.kinds() == ["connected", "changed"]  # a cut made to stop is no disconnection to report


def test_a_polling_watch_sleeps_until_its_poll_and_stop_wakes_it(server: HostileImap) -> None:
    server.capabilities = "IMAP4rev1 ENABLE ID UNSELECT"  # no IDLE: the folder is polled with NOOP
    recorder, sessions = Recorder(), []
    watch = _watch(server, recorder, sessions)
    thread = threading.Thread(target=watch.run, daemon=True)
    thread.start()
    recorder.wait_for("changed")
    assert watch.mode == "polling"
    watch.stop()
    thread.join(timeout=10)
    assert not thread.is_alive(), "stop() did not wake the polling watch"
    assert not any(line.split()[1:2] == ["NOOP"] for line in server.commands())


def test_stop_before_the_connection_is_up_ends_the_watch_without_watching(server: HostileImap) -> None:
    recorder, sessions = Recorder(), []
    watch = _watch(server, recorder, sessions)
    watch.stop()
    watch.run()  # returns: the flag is seen before (or right after) connecting
    assert watch.mode == "stopped"
    assert "connected" not in recorder.kinds()


class _Waits(threading.Event):
    """A stop flag that records each wait between tries, and stops the loop after ``tries``."""

    def __init__(self, tries: int) -> None:
        super().__init__()
        self.waits: list[float] = []
        self._tries = tries

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        if len(self.waits) >= self._tries:
            self.set()
        return self.is_set()


def test_a_watch_the_provider_limits_waits_the_hold_not_the_usual_back_off() -> None:
    from futurnal.imap.errors import ConnectionFailed, ProviderLimited
    from futurnal.imap.server_answers import OverQuota

    answers = iter([ProviderLimited("over quota", OverQuota("q")), ProviderLimited("over quota", OverQuota("q")),
                    ConnectionFailed("the network")])

    def connect() -> ImapSession:
        raise next(answers)

    stop = _Waits(tries=3)
    asked: list[tuple[object, int]] = []

    def hold(verdict: object, repeats: int) -> float:
        asked.append((verdict, repeats))
        return 3600.0 * 2 ** repeats

    settings = WatchSettings(renew_seconds=HOURS, poll_seconds=HOURS, limited_wait=hold)
    IdleWatch(mailbox="alice", folder="INBOX", connect=connect, notify=Recorder(), stop=stop, settings=settings,
              jitter=lambda: 0.0).run()
    assert stop.waits[:2] == [3600.0, 7200.0] and asked == [(OverQuota("q"), 0), (OverQuota("q"), 1)]
    assert stop.waits[2] < 300  # a broken network is the usual back-off again
