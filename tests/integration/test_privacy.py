"""Consent, audit log and purge through the real CLI against a real Dovecot."""

from __future__ import annotations

from pathlib import Path

import pytest

from futurnal.demo.dovecot import DovecotServer

from .cli import Cli
from .sync_harness import ServerClient


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def _with_attachment(server: DovecotServer) -> None:
    other = ServerClient(server)
    other.client.append("INBOX", (
        b"From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: Quarterly numbers\r\n"
        b"Message-ID: <q@example.net>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nSee the attached figures.\r\n"
        b"--b\r\nContent-Type: text/csv; name=q.csv\r\nContent-Disposition: attachment; filename=q.csv\r\n\r\n"
        b"month;total\r\njuly;10\r\n--b--\r\n"
    ))
    other.close()


def test_adding_without_consent_is_refused_and_registers_nothing(cli: Cli, dovecot: DovecotServer) -> None:
    done = cli("imap", "add", "--email", "alice@example.org", "--host", dovecot.host,
               "--port", str(dovecot.imaps_port), "--username", "alice", "--cafile", str(dovecot.cert_path),
               "--password-stdin", stdin="secret-pw\n")
    assert done.code == 2 and "--consent" in done.err
    assert cli("imap", "list", "--json").json() == []


def test_revoked_consent_stops_fetching_with_a_clear_reason(cli: Cli, dovecot: DovecotServer) -> None:
    assert cli.add(dovecot).code == 0
    assert cli("consent", "revoke", "alice").code == 0
    _with_attachment(dovecot)
    done = cli("imap", "sync", "alice")
    assert done.code == 1 and "no consent is recorded" in done.err and "consent grant alice" in done.err
    assert cli("elements", "export").out == ""
    assert cli("consent", "grant", "alice").code == 0
    assert cli("imap", "sync", "alice").code == 0
    assert len(cli("elements", "export").lines()) == 1


def test_scopes_limit_what_is_stored(cli: Cli, dovecot: DovecotServer) -> None:
    _with_attachment(dovecot)
    assert cli.add(dovecot, "--consent-scopes", "metadata").code == 0
    assert cli("imap", "sync", "alice").code == 0
    (element,) = cli("elements", "export").lines()
    assert element["subject"] == "Quarterly numbers" and element["text"] == ""
    (attachment,) = element["attachments"]
    assert attachment["status"] == "not-consented" and attachment["text"] is None
    assert attachment["filename"] == "q.csv" and attachment["size"] > 0


def test_the_audit_log_records_the_story_and_detects_tampering(cli: Cli, dovecot: DovecotServer) -> None:
    _with_attachment(dovecot)
    assert cli.add(dovecot).code == 0
    assert cli("imap", "sync", "alice").code == 0
    assert cli("consent", "revoke", "alice").code == 0
    assert cli("imap", "remove", "alice", "--purge").code == 0
    events = [entry["event"] for entry in cli("audit", "tail", "--json").json()]
    assert events == ["mailbox-added", "consent-granted", "sync", "consent-revoked", "mailbox-purged"]
    assert cli("audit", "verify").code == 0
    log = cli.data_dir / "audit.jsonl"
    text = log.read_text()
    assert "alice@example.org" not in text and "Quarterly" not in text and "secret-pw" not in text
    log.write_text(text.replace('"fetched": 1', '"fetched": 7'))
    tampered = cli("audit", "verify")
    assert tampered.code == 1 and "line 3" in tampered.err


def test_purge_leaves_nothing_of_the_mailbox_on_disk(cli: Cli, dovecot: DovecotServer) -> None:
    _with_attachment(dovecot)
    assert cli.add(dovecot).code == 0
    assert cli("imap", "sync", "alice").code == 0
    assert cli("imap", "remove", "alice", "--purge").code == 0
    leftovers = [p for p in cli.data_dir.rglob("*") if "alice" in p.name]
    assert leftovers == []
    assert "alice" not in (cli.data_dir / "consent.json").read_text()
    keyring = "".join(p.read_text() for p in (cli.home / "xdg-data").rglob("*.cfg"))
    assert "alice_2f" not in keyring


def test_a_full_sync_logged_at_debug_shows_no_address_subject_or_secret(cli: Cli, dovecot_factory) -> None:  # type: ignore[no-untyped-def]
    import email
    import email.policy

    from futurnal.demo.sample_mailbox import generate_mailbox

    server = dovecot_factory()
    messages = generate_mailbox(120, seed=4)
    for message in messages:
        server.deliver("alice", message.raw, folder=message.folder, flags=message.flags)
    server.start()
    assert cli.add(server, folders="INBOX,Archive").code == 0
    done = cli("--log-level", "DEBUG", "imap", "sync", "alice")
    assert done.code == 0, done.err
    log = done.err + done.out
    assert "DEBUG" in log or "INFO" in log  # the log really was verbose
    private: set[str] = {"secret-pw", "alice@example.org"}
    for message in messages:
        parsed = email.message_from_bytes(message.raw, policy=email.policy.compat32)
        for header in ("From", "To", "Cc"):
            for _name, address in email.utils.getaddresses(parsed.get_all(header, [])):
                if "@" in address:
                    private.add(address)
        subject = str(email.header.make_header(email.header.decode_header(parsed.get("Subject", ""))))
        if len(subject) > 8:
            private.add(subject)
    leaked = sorted(item for item in private if item in log)
    assert leaked == []


def test_without_content_consent_the_quarantine_keeps_headers_only(cli: Cli, dovecot: DovecotServer) -> None:
    import subprocess

    from .cli import COMMAND

    other = ServerClient(dovecot)
    other.client.append("INBOX", b"From: x@example.org\r\nSubject: poison\r\n\r\nPOISON-MARKER-9 SECRET-BODY\r\n")
    other.client.logout()
    assert cli.add(dovecot, "--consent-scopes", "metadata").code == 0
    done = subprocess.run([COMMAND, "imap", "sync", "alice"], env={**cli.env, "FUTURNAL_TEST_CRASH_ON": "POISON-MARKER-9"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (record,) = cli("quarantine", "list", "--json").json()
    kept = cli("quarantine", "show", record["id"], "--raw").out
    assert "Subject: poison" in kept and "SECRET-BODY" not in kept
    assert not [p for p in cli.data_dir.rglob("*") if p.is_file() and b"SECRET-BODY" in p.read_bytes()]
