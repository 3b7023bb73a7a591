"""`imap sync --all` and `imap status --all` against a real Dovecot: every registered mailbox, one
after the other, by the command itself and through a running process; one that fails is reported
and the others go on."""

from __future__ import annotations

from pathlib import Path

from futurnal.demo.dovecot import DovecotServer

from .cli import Cli
from .running_process import RunningProcess
from .sync_harness import ServerClient


def test_sync_all_syncs_every_mailbox_and_reports_the_one_that_fails(tmp_path: Path, dovecot: DovecotServer) -> None:
    cli = Cli(tmp_path)
    dovecot.add_user("bob", "bob-pw")
    _append(dovecot, 2, "for-alice")
    assert cli.add(dovecot).code == 0
    assert cli.add(dovecot, user="bob", mailbox_id="bob", password="bob-pw").code == 0
    # Registered unchecked with a password the server refuses: its sync fails.
    assert cli.add(dovecot, "--no-verify", user="carol", mailbox_id="carol", password="nope").code == 0

    done = cli("imap", "sync", "--all", "--json")
    assert done.code == 1, done.err
    shown = done.json()
    assert shown["ok"] is False
    reports = {report["mailbox"]: report for report in shown["mailboxes"]}
    assert list(reports) == ["alice", "bob", "carol"]
    assert (reports["alice"]["ok"], reports["alice"]["fetched"]) == (True, 2)
    assert (reports["bob"]["ok"], reports["bob"]["fetched"]) == (True, 0)
    assert reports["carol"]["ok"] is False and reports["carol"]["errors"]

    text = cli("imap", "sync", "--all")
    assert text.code == 1
    assert "alice INBOX: 0 new message(s)" in text.out and "bob INBOX: 0 new message(s)" in text.out
    assert text.out.endswith("2 of 3 mailbox(es) synced, 1 failed\n")
    assert "carol" in text.err

    status = cli("imap", "status", "--all", "--json")
    assert status.code == 0, status.err
    assert [doc["mailbox"]["id"] for doc in status.json()["mailboxes"]] == ["alice", "bob", "carol"]
    assert all(doc["running"] is False for doc in status.json()["mailboxes"])


def test_with_run_up_status_all_shows_what_the_process_does_and_sync_all_goes_through_it(
    tmp_path: Path, dovecot: DovecotServer
) -> None:
    cli = Cli(tmp_path)
    dovecot.add_user("bob", "bob-pw")
    assert cli.add(dovecot).code == 0
    assert cli.add(dovecot, user="bob", mailbox_id="bob", password="bob-pw").code == 0
    assert "not running, so nothing is scheduled" in cli("imap", "status", "alice").out
    running = RunningProcess(cli)
    try:
        running.wait_for(lambda: cli("imap", "status", "--all").out.count("watching by IDLE") == 2,
                         "run did not start watching both mailboxes")
        status = cli("imap", "status", "--all")
        assert status.out.count("running: ") == 2 and ", next run " in status.out and "not running" not in status.out
        _append(dovecot, 1, "through-run")
        synced = cli("imap", "sync", "--all", "--json")
        assert synced.code == 0, synced.err
        assert synced.json()["ok"] is True and [r["mailbox"] for r in synced.json()["mailboxes"]] == ["alice", "bob"]
        said = cli("imap", "sync", "--all")
        assert said.code == 0 and said.err.count("through the running process") == 2, said.err
    finally:
        code, err = running.finish()
    assert code == 0, err


def _append(server: DovecotServer, count: int, tag: str) -> None:
    other = ServerClient(server)
    try:
        other.append(count, tag=tag)
    finally:
        other.close()
