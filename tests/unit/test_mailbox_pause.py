"""What a mailbox actor keeps outside itself, so a restart remembers it: a pause (ticks meanwhile
are answered at once and remembered for the resume) and a refused login."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from futurnal.actors.mailbox import MailboxActor
from futurnal.actors.messages import (
    DescribeMailbox,
    FoldersResolved,
    PauseMailbox,
    ResolveFolders,
    ResumeMailbox,
    SyncTick,
)
from futurnal.events import EventBus
from futurnal.mailboxes.pauses import PauseBoard
from futurnal.mailboxes.refused_logins import RefusedLogins
from futurnal.supervisors.directory import ActorDirectory
from futurnal.sync.sync_runs import MailboxSyncReport, SyncStarted

TIMEOUT = 5


class FetcherStandIn(pykka.ThreadingActor):
    """Records what the mailbox actor asks of its fetcher (the protocol under test, not fetching)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[Any] = []

    def on_receive(self, message: Any) -> Any:
        if message == "asked":
            return list(self.asked)
        self.asked.append(message)
        return None


@pytest.fixture(autouse=True)
def no_actor_left_behind() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all(timeout=TIMEOUT)


def _mailbox(pauses: PauseBoard, events: EventBus,
             refused: RefusedLogins | None = None) -> tuple[pykka.ActorRef[Any], pykka.ActorRef[Any]]:
    directory = ActorDirectory()
    fetcher = FetcherStandIn.start()
    directory.set("fetcher/alice", fetcher)
    mailbox = MailboxActor.start(mailbox_id="alice", directory=directory, events=events, pauses=pauses,
                                 refused_logins=refused)
    return mailbox, fetcher


def test_a_paused_mailbox_answers_ticks_as_skipped_and_catches_up_once_at_resume() -> None:
    pauses, events, seen = PauseBoard(), EventBus(), []
    events.subscribe(seen.append)
    mailbox, fetcher = _mailbox(pauses, events)
    assert mailbox.ask(PauseMailbox(), timeout=TIMEOUT)["state"] == "paused"
    replies = []
    for folders in (("INBOX",), ("Archive",), ("INBOX",)):
        reply: pykka.Future[MailboxSyncReport] = pykka.ThreadingFuture()
        mailbox.tell(SyncTick(folders=folders, reply_to=reply))
        replies.append(reply.get(timeout=TIMEOUT))
    assert [r.skipped for r in replies] == ["paused"] * 3
    assert fetcher.ask("asked", timeout=TIMEOUT) == []
    assert mailbox.ask(DescribeMailbox(), timeout=TIMEOUT)["missed_while_paused"] is True

    described = mailbox.ask(ResumeMailbox(), timeout=TIMEOUT)
    assert described["state"] == "syncing" and described["missed_while_paused"] is False
    asked = fetcher.ask("asked", timeout=TIMEOUT)
    assert sorted(job.folder for job in asked) == ["Archive", "INBOX"]  # one run for all three ticks
    assert [e for e in seen if isinstance(e, SyncStarted)] == [SyncStarted("alice", 1, ("INBOX", "Archive"))]
    assert not any(isinstance(e, MailboxSyncReport) for e in seen)  # skipped ticks are not sync reports


def test_a_pause_outlives_a_restart_of_the_mailbox_actor_and_a_whole_selection_tick_wins() -> None:
    pauses = PauseBoard()
    first, _ = _mailbox(pauses, EventBus())
    first.ask(PauseMailbox(), timeout=TIMEOUT)
    first.stop(timeout=TIMEOUT)
    mailbox, fetcher = _mailbox(pauses, EventBus())  # what a supervisor's restart makes
    assert mailbox.ask(DescribeMailbox(), timeout=TIMEOUT)["paused"] is True
    mailbox.tell(SyncTick(folders=("INBOX",)))
    mailbox.tell(SyncTick())  # the whole selection covers the folder asked for before
    mailbox.ask(ResumeMailbox(), timeout=TIMEOUT)
    assert fetcher.ask("asked", timeout=TIMEOUT) == [ResolveFolders(1)]
    assert mailbox.ask(ResumeMailbox(), timeout=TIMEOUT)["state"] == "syncing"  # resuming twice is harmless


def test_a_follow_up_queued_before_the_pause_waits_for_the_resume() -> None:
    mailbox, fetcher = _mailbox(PauseBoard(), EventBus())
    mailbox.tell(SyncTick(folders=("INBOX",)))  # runs; the stand-in fetcher never answers
    queued: pykka.Future[MailboxSyncReport] = pykka.ThreadingFuture()
    mailbox.tell(SyncTick(folders=("Archive",), reply_to=queued))  # folded into a follow-up
    described = mailbox.ask(PauseMailbox(), timeout=TIMEOUT)
    assert queued.get(timeout=TIMEOUT).skipped == "paused"
    assert described["follow_up_queued"] is False and described["missed_while_paused"] is True
    mailbox.ask(ResumeMailbox(), timeout=TIMEOUT)
    assert mailbox.ask(DescribeMailbox(), timeout=TIMEOUT)["follow_up_queued"] is True  # behind the running one


def _tick(mailbox: pykka.ActorRef[Any]) -> pykka.Future[MailboxSyncReport]:
    reply: pykka.Future[MailboxSyncReport] = pykka.ThreadingFuture()
    mailbox.tell(SyncTick(reply_to=reply))
    return reply


def _asked_once(fetcher: pykka.ActorRef[Any]) -> list[Any]:
    """What the fetcher was asked, once it was asked something (the tick reaches it through the mailbox)."""
    deadline = time.monotonic() + TIMEOUT
    while not (asked := fetcher.ask("asked", timeout=TIMEOUT)) and time.monotonic() < deadline:
        time.sleep(0.01)
    return asked


def test_a_refused_login_outlives_a_restart_so_the_secret_is_not_tried_again_until_renewed() -> None:
    refused = RefusedLogins()
    first, fetcher = _mailbox(PauseBoard(), EventBus(), refused)
    reply = _tick(first)
    (resolve,) = _asked_once(fetcher)
    first.tell(FoldersResolved(resolve.run_id, (), (("*", "LOGIN refused"),), needs_reauth=True))
    assert reply.get(timeout=TIMEOUT).errors == (("*", "LOGIN refused"),)
    first.stop(timeout=TIMEOUT)

    second, fetcher = _mailbox(PauseBoard(), EventBus(), refused)  # what the supervisor's restart does
    assert second.ask(DescribeMailbox(), timeout=TIMEOUT)["state"] == "needs-reauth"
    assert _tick(second).get(timeout=TIMEOUT).errors == (("*", "needs re-authentication: LOGIN refused"),)
    assert fetcher.ask("asked", timeout=TIMEOUT) == []  # no login attempt

    refused.clear("alice")  # imap reauth renewed the secret
    _tick(second)
    assert [type(job) for job in _asked_once(fetcher)] == [ResolveFolders]
