"""``imap reauth`` for a password mailbox: a changed password is given once, checked, and syncs resume."""

from __future__ import annotations

from pathlib import Path

from futurnal.demo.dovecot import DovecotServer

from .cli import Cli


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
