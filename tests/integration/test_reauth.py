"""``imap reauth`` for a password mailbox: a changed password is given once, checked, and syncs resume."""

from __future__ import annotations

from pathlib import Path

from futurnal.demo.dovecot import DovecotServer

from .cli import Cli
from .running_process import RunningProcess
from .sync_harness import ServerClient


def test_a_changed_password_is_checked_and_stored_by_reauth_and_clears_needs_reauth(
    tmp_path: Path, dovecot: DovecotServer
) -> None:
    cli = Cli(tmp_path)
    assert cli.add(dovecot).code == 0
    dovecot.add_user("alice", "the-new-password")  # changed on the server, e.g. by its owner
    assert cli("imap", "sync", "alice").code == 1
    assert cli("imap", "status", "alice", "--json").json()["state"] == "needs-reauth"

    wrong = cli("imap", "reauth", "alice", "--password-stdin", stdin="still-wrong\n")
    assert wrong.code == 1 and "nothing was changed" in wrong.err
    assert cli("imap", "status", "alice", "--json").json()["state"] == "needs-reauth"

    right = cli("imap", "reauth", "alice", "--password-stdin", stdin="the-new-password\n")
    assert right.code == 0, right.err
    assert cli("imap", "status", "alice", "--json").json()["state"] == "ok"
    assert cli("imap", "sync", "alice").code == 0


def test_reauth_while_run_is_running_restarts_the_mailbox_with_the_new_password(
    tmp_path: Path, dovecot: DovecotServer
) -> None:
    """No need to stop the service: the process audits the renewal and restarts the mailbox's actors."""
    cli = Cli(tmp_path)
    assert cli.add(dovecot, "--watch", "", "--schedule", "@manual").code == 0
    assert cli("imap", "sync", "alice").code == 0
    stored = len(cli("elements", "export").lines())
    process = RunningProcess(cli)
    try:
        dovecot.add_user("alice", "the-new-password")
        refused = process.client.call("sync", mailbox="alice")
        assert not refused["ok"]
        assert process.client.call("status", mailbox="alice")["mailboxes"][0]["live"]["state"] == "needs-reauth"
        ServerClient(dovecot, password="the-new-password").append(2, tag="after-the-change")

        right = cli("imap", "reauth", "alice", "--password-stdin", stdin="the-new-password\n")
        assert right.code == 0, right.err
        assert "restarted its actors" in right.out
        process.wait_for(lambda: len(cli("elements", "export").lines()) == stored + 2,
                         "the restarted mailbox did not sync with the new password")
        live = process.client.call("status", mailbox="alice")["mailboxes"][0]
        assert live["live"]["state"] != "needs-reauth"
        assert cli("imap", "status", "alice", "--json").json()["state"] == "ok"  # the flag on disk too
        assert any(entry["event"] == "reauth" for entry in cli("audit", "tail", "--json").json())
        assert cli("audit", "verify").code == 0  # the process appended it: the chain is whole
    finally:
        code, err = process.finish()
    assert code == 0, err
