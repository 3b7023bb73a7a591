"""A full sync's debug log, in both formats, holds no address, subject or file name of the mailbox."""

from __future__ import annotations

import re
import stat
from email.message import EmailMessage
from pathlib import Path

from futurnal.demo.dovecot import DovecotServer

from .cli import Cli

PEOPLE = [("Bob Example", "bob@example.net"), ("Carol Q. Sender", "Carol.Sender@example.com"),
          ("Dave", "dave+lists@example.org")]
SUBJECTS = ["Quarterly figures for the board", "Re: dinner on Friday?", "Ünïcode subject ☃"]
FILES = ["salary review 2026.pdf", "passport-scan.jpg"]
DERIVED_ID = "alice-example.org"  # what `imap add` makes of alice@example.org without --id


def message(i: int, sender: tuple[str, str], subject: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{sender[0]} <{sender[1]}>"
    msg["To"] = "Alice <alice@example.org>"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<redaction-{i}@example.net>"
    msg["Date"] = "Mon, 02 Mar 2026 10:00:00 +0000"
    msg.set_content(f"body {i}")
    for name in FILES if i == 0 else []:
        msg.add_attachment(b"%PDF-1.4 not really", maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes()


def tokens(log: str) -> set[str]:
    return set(re.findall(r"<addr:[0-9a-f]{8}>", log))


def personal(log: str) -> list[str]:
    """What of the mailbox's personal data the log shows (empty is the goal)."""
    needles = ["alice@example.org", DERIVED_ID, *(a for _, a in PEOPLE), *(n for n, _ in PEOPLE[:2]), *SUBJECTS,
               *FILES]
    return [n for n in needles if n.lower() in log.lower()]


def test_a_debug_log_of_a_full_sync_shows_tokens_not_addresses_or_subjects(dovecot: DovecotServer,
                                                                             tmp_path: Path) -> None:
    for i, subject in enumerate(SUBJECTS):
        dovecot.deliver("alice", message(i, PEOPLE[i], subject))
    cli = Cli(tmp_path)
    assert cli.add(dovecot, mailbox_id=DERIVED_ID).code == 0

    text = cli("--log-level", "DEBUG", "imap", "sync", DERIVED_ID)
    assert text.code == 0, text.err
    assert "3 new message(s)" in text.out
    assert "stored INBOX UID 1" in text.err  # the debug trail is there, masked
    assert "folder 'INBOX' synced: 3 new, 0 quarantined" in text.err  # a folder's log line names it
    assert personal(text.err) == [], text.err
    assert str(tmp_path) not in text.err  # paths under the home directory
    assert stat.S_IMODE((cli.data_dir / "log.key").stat().st_mode) == 0o600  # the tokens' key, private
    first_run = tokens(text.err)
    bob = re.search(r"UID 1: <subject:[0-9a-f]{8}>, from \['(<addr:[0-9a-f]{8}>)'\]", text.err)
    assert bob is not None, text.err
    assert re.search(r"\[<mailbox:[0-9a-f]{8}>\]", text.err), text.err  # the id made from the address

    # A second run, on the same data directory, in JSON: new mail from Bob gets Bob's token again.
    dovecot.deliver("alice", message(9, PEOPLE[0], "A fourth subject"))
    json_run = cli("--log-level", "DEBUG", "--log-format", "json", "imap", "sync", DERIVED_ID)
    assert json_run.code == 0, json_run.err
    lines = [line for line in json_run.err.splitlines() if line.startswith("{")]
    assert lines and all(line.endswith("}") for line in lines)
    assert personal(json_run.err) == [] and "A fourth subject" not in json_run.err, json_run.err
    assert f"from ['{bob.group(1)}']" in json_run.err
    assert first_run & tokens(json_run.err)  # alice's own address, at connection time, both runs

    # The way out for debugging says what it does, and shows what the tokens stood for.
    unredacted = cli("--log-level", "DEBUG", "--log-unredacted", "imap", "sync", DERIVED_ID)
    assert unredacted.code == 0
    assert "warning: logs are unredacted" in unredacted.err
    assert "alice@example.org" in unredacted.err
