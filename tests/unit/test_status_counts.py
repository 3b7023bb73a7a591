"""What `ctl status` and `top` count: mailboxes connected, waiting to connect (a login turn or a
watcher's back-off), syncing and idle, from counters the connections and the events keep."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from futurnal.cli.console_render import render_reply
from futurnal.config import ServiceSettings
from futurnal.imap.idle_watch import WatchEvent
from futurnal.imap.live_connections import LiveConnections
from futurnal.imap.login_rate import LoginRateLimiter
from futurnal.mailboxes.reconnects import ReconnectBoard
from futurnal.storage.data_dir import DataDir
from futurnal.storage.registry import MailboxRecord
from futurnal.supervision_tree import live_connections
from futurnal.supervisors.directory import ActorDirectory
from futurnal.system_operations import SystemOperations, status_summary
from tests.unit.test_login_rate import wait_until


def _in_background(call: Callable[[], Any]) -> threading.Thread:
    """``call`` on a thread of its own; what it raises (a stop ends these waits) is left there."""

    def run() -> None:
        try:
            call()
        except Exception:
            pass

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_the_wiring_paces_logins_as_configured() -> None:
    live = live_connections(ServiceSettings(logins_per_second_per_host=0.01, login_burst_per_host=2))
    live.take_turn("h")
    live.take_turn("h")  # the burst of two
    waiter = _in_background(lambda: live.take_turn("h", "carol"))
    wait_until(lambda: live.waiting_by_owner() == {"carol": 1}, "the third login did not wait")
    live.cut_all()
    waiter.join(timeout=5)
    assert not waiter.is_alive()


class _Open:
    def cut(self) -> None:
        pass


def _mailbox_actor(state: str) -> Any:
    return SimpleNamespace(ask=lambda *_args, **_kwargs: {"state": state, "inbox": 0}, is_alive=lambda: True)


def test_status_counts_connected_waiting_syncing_and_idle_mailboxes(tmp_path: Path) -> None:
    records = {key: MailboxRecord(id=key, email=f"{key}@example.org", host="imap.example.org", port=993,
                                  username=key) for key in ("alice", "bob", "carol", "dave")}
    directory = ActorDirectory()
    for key, state in {"alice": "syncing", "bob": "idle", "carol": "idle", "dave": "paused"}.items():
        directory.set(f"mailbox/{key}", _mailbox_actor(state))
    live = LiveConnections(LoginRateLimiter(per_second=0.01, burst=1))
    live.add(_Open(), "alice")
    live.add(_Open(), "alice")
    live.take_turn("imap.example.org", "alice")
    reconnects = ReconnectBoard()
    reconnects.seen(WatchEvent("carol", "INBOX", "disconnected", "ConnectionFailed: gone"))
    reconnects.seen(WatchEvent("dave", "INBOX", "disconnected", "ConnectionFailed: gone"))
    reconnects.seen(WatchEvent("dave", "INBOX", "connected", "idle"))  # back: not waiting any more
    operations = SystemOperations(DataDir(tmp_path), settings=ServiceSettings, directory=directory,
                                  mailboxes=lambda: records, roots=dict, connections=lambda: live,
                                  reconnects=reconnects)
    waiter = _in_background(lambda: live.take_turn("imap.example.org", "bob"))
    try:
        wait_until(lambda: live.waiting_by_owner() == {"bob": 1}, "bob's login did not wait")
        reports = operations.status()
    finally:
        live.cut_all()
        waiter.join(timeout=5)
    assert {r["mailbox"]["id"]: r["connections"] for r in reports} == {
        "alice": {"open": 2, "waiting_for_login": 0, "reconnecting": 0},
        "bob": {"open": 0, "waiting_for_login": 1, "reconnecting": 0},
        "carol": {"open": 0, "waiting_for_login": 0, "reconnecting": 1},
        "dave": {"open": 0, "waiting_for_login": 0, "reconnecting": 0},
    }
    summary = status_summary(reports)
    assert summary == {"mailboxes": 4, "connected": 1, "waiting_to_connect": 2, "syncing": 1, "idle": 2,
                       "connections_open": 2, "logins_waiting": 1}
    shown = render_reply("status", {"mailboxes": reports, "summary": summary, "queues": {}})
    assert ("mailboxes: 4, 1 connected, 2 waiting to connect, 1 syncing, 2 idle; "
            "connections: 2 open, 1 waiting for a login turn") in shown.splitlines()


def test_a_watcher_that_gives_up_or_whose_mailbox_restarts_waits_no_more() -> None:
    board = ReconnectBoard()
    for folder in ("INBOX", "Sent", "Archive"):
        board.seen(WatchEvent("alice", folder, "disconnected", "x"))
    board.seen(WatchEvent("bob", "INBOX", "disconnected", "x"))
    board.seen(WatchEvent("alice", "Sent", "needs-reauth", "refused"))
    board.seen(WatchEvent("alice", "Archive", "not-possible", "no NOTIFY"))
    board.seen("an event of another kind")
    assert board.waiting() == {"alice": 1, "bob": 1}
    board.forget("alice")
    assert board.waiting() == {"bob": 1}


def test_with_a_shared_store_the_status_table_says_which_process_runs_each_mailbox() -> None:
    def report(mailbox_id: str, state: str, owner: dict[str, Any] | None) -> dict[str, Any]:
        return {"mailbox": {"id": mailbox_id}, "folders": [], "live": {"state": state}, "owner": owner,
                "connections": {"open": 0, "waiting_for_login": 0, "reconnecting": 0}}

    reports = [report("alice", "idle", {"host": "db-host-1", "pid": 4242, "here": True,
                                        "lease_expires": "2026-12-04T14:00:05+00:00"}),
               report("bob", "elsewhere", {"host": "sync-2", "pid": 77, "here": False,
                                          "lease_expires": "2026-12-04T14:00:09+00:00"}),
               report("carol", "unowned", None)]
    shown = render_reply("status", {"mailboxes": reports, "summary": status_summary(reports), "queues": {}})
    lines = shown.splitlines()
    assert "RUN BY" in lines[0]
    assert "this process, lease until 14:00:05Z" in next(line for line in lines if line.startswith("alice"))
    assert "sync-2 pid 77, lease until 14:00:09Z" in next(line for line in lines if line.startswith("bob"))
    assert "nobody (lease free)" in next(line for line in lines if line.startswith("carol"))
    single = render_reply("status", {"mailboxes": [{k: v for k, v in reports[0].items() if k != "owner"}],
                                     "queues": {}})
    assert "RUN BY" not in single  # one machine: no such column
