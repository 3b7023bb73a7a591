"""Obeying the providers' limits (issue #20), below the actors' wiring: the hold kept in the
mailbox's state file, the mailbox actor's one retry at its end, the throttled FETCH pacing, and
what status and the event stream say."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pykka
import pytest

from futurnal.actors.fetcher import _Paced
from futurnal.actors.mailbox import MailboxActor
from futurnal.actors.messages import DescribeMailbox, FoldersResolved, ResolveFolders, SyncFolder, SyncTick
from futurnal.console.event_lines import event_document
from futurnal.events import EventBus
from futurnal.imap.fetched import FetchAnswer, FetchedMessage
from futurnal.imap.server_answers import BackoffFor, OverQuota
from futurnal.storage.clock import utc_iso
from futurnal.storage.sync_state import FolderStateStore
from futurnal.supervisors.directory import ActorDirectory
from futurnal.sync.provider_holds import HoldPolicy, MailboxHold, MailboxThrottled, Slowdown, held_text

from .test_supervisor import TIMEOUT, FakeSchedule


@pytest.fixture(autouse=True)
def no_actor_left_behind() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all(timeout=TIMEOUT)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_a_hold_is_kept_in_the_state_file_grows_while_repeated_and_ends_with_a_sync(tmp_path: Path) -> None:
    clock, states = Clock(), FolderStateStore(tmp_path / "state.json")
    hold = MailboxHold(states, HoldPolicy(overquota_wait=60, rng=lambda: 0.0), now=clock)
    assert hold.active() is None
    first = hold.limited(OverQuota("[OVERQUOTA] Account exceeded command or bandwidth limits."), "over quota")
    # until is rounded up to the second: nothing happens before the time shown
    assert first == {"reason": "over quota", "kind": "overquota", "since": "2026-03-01T12:00:00Z",
                     "until": "2026-03-01T12:01:01Z", "repeats": 1}
    states.close()
    states = FolderStateStore(tmp_path / "state.json")  # a restart keeps it
    hold = MailboxHold(states, HoldPolicy(overquota_wait=60, rng=lambda: 0.0), now=clock)
    assert hold.active() == first
    clock.now += timedelta(seconds=61)
    assert hold.active() is None  # over, but the repeat still counts
    second = hold.limited(OverQuota("q"), "again")
    assert second["repeats"] == 2 and second["until"] == utc_iso(clock.now.replace(microsecond=0) + timedelta(seconds=121))
    hold.cleared()
    assert states.throttled() is None
    assert hold.limited(BackoffFor(1.5, "b"), "backoff")["repeats"] == 1
    assert held_text(states.throttled() or {}).startswith("throttled until 2026-03-01T12:01:03Z (backoff): backoff")
    states.close()


class HeldFetcher(pykka.ThreadingActor):
    """Answers every job of the mailbox as a held fetcher does: with the hold, never connecting."""

    def __init__(self, directory: ActorDirectory, until: str) -> None:
        super().__init__()
        self._directory, self._until = directory, until
        self.jobs = 0

    def on_receive(self, message: Any) -> Any:
        mailbox = self._directory.get("mailbox/alice")
        assert mailbox is not None
        if isinstance(message, ResolveFolders | SyncFolder):
            self.jobs += 1
            mailbox.tell(FoldersResolved(message.run_id, (), (("*", f"throttled until {self._until}"),),
                                         held_until=self._until))
        return self.jobs


def test_a_held_mailbox_shows_throttled_and_retries_once_at_the_hold_s_end() -> None:
    directory, events = ActorDirectory(), EventBus()
    until = utc_iso(datetime.now(UTC) + timedelta(seconds=30))
    fetcher = HeldFetcher.start(directory, until)
    directory.set("fetcher/alice", fetcher)
    schedule = FakeSchedule(hold=True)
    mailbox = MailboxActor.start(mailbox_id="alice", directory=directory, events=events, schedule=schedule)
    directory.set("mailbox/alice", mailbox)
    for _ in range(3):  # the scheduler's ticks meanwhile: one retry all the same
        mailbox.ask(SyncTick(), timeout=TIMEOUT)
        _wait_for(lambda: mailbox.ask(DescribeMailbox(), timeout=TIMEOUT)["state"] != "syncing")
    live = mailbox.ask(DescribeMailbox(), timeout=TIMEOUT)
    assert (live["state"], live["throttled_until"]) == ("throttled", until)
    assert len(schedule.delays) == 1 and 29 <= schedule.delays[0] <= 31
    schedule.release()  # the hold is over: one sync is asked for
    _wait_for(lambda: len(schedule.delays) == 2)
    assert fetcher.ask("count", timeout=TIMEOUT) == 4  # 3 ticks and the retry
    assert len(schedule.delays) == 2  # still held (this stand-in never lets go): one more, at its end again


def _wait_for(condition: Any) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


class FakeSession:
    """Sends what it is asked for, each FETCH answered [THROTTLED] while ``throttling``."""

    def __init__(self) -> None:
        self.fetches: list[list[int]] = []
        self.throttling = True
        self._throttled = 0

    def fetch_messages(self, uids: list[int], expected_bytes: int = 0) -> FetchAnswer:
        self.fetches.append(list(uids))
        self._throttled += self.throttling
        return FetchAnswer([FetchedMessage(uid, b"x" * 10, (), None, 10) for uid in uids], [], {})

    def take_throttled(self) -> int:
        count, self._throttled = self._throttled, 0
        return count


def test_throttled_fetches_go_in_smaller_pieces_with_growing_pauses_and_nothing_is_lost() -> None:
    session, pauses, slowdown = FakeSession(), [], Slowdown(pause=0.5)
    paced = _Paced(session, slowdown, 8, pauses.append)  # type: ignore[arg-type]
    assert [m.uid for m in paced.fetch_messages(range(1, 9), 80).messages] == list(range(1, 9))
    assert session.fetches == [list(range(1, 9))] and pauses == []  # nothing heard yet
    answer = paced.fetch_messages(range(9, 17), 80)
    assert [m.uid for m in answer.messages] == list(range(9, 17)) and not answer.missing
    assert session.fetches[1:] == [[9, 10, 11, 12], [13, 14], [15], [16]]
    assert pauses == [0.5, 1.0, 2.0, 4.0]


def test_a_throttled_batch_holds_no_more_than_its_announced_bytes_the_rest_is_asked_alone() -> None:
    session = FakeSession()
    paced = _Paced(session, Slowdown(pause=0), 8, lambda _: None)  # type: ignore[arg-type]
    paced.fetch_messages([1], 10)  # heard: level 1
    answer = paced.fetch_messages(range(1, 9), 15)  # the server's sizes said 15 bytes for all eight
    assert [m.uid for m in answer.messages] == [1, 2, 3, 4] and answer.missing == [5, 6, 7, 8]


def test_the_event_stream_and_status_lines_say_until_when() -> None:
    event = MailboxThrottled("alice", "overquota", "2026-03-01T13:00:00Z", "Account exceeded\x1b[2J", 1)
    doc = event_document(event)
    assert doc is not None and doc["event"] == "mailbox-throttled" and doc["until"] == "2026-03-01T13:00:00Z"
    from futurnal.cli.console_render import render_event

    line = render_event(doc)
    assert "alice: throttled until 2026-03-01T13:00:00Z (overquota)" in line and "\x1b" not in line
