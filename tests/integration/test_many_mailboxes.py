"""Fifty mailboxes in one `run` against a real Dovecot: new mail anywhere arrives, and SIGTERM stops
them all on time.

Each mailbox watches INBOX and Archive, so `run` holds a hundred-odd IMAP connections (a fetch
connection and NOTIFY, or IDLE per folder). Mail appended to random mailboxes and folders while
it runs must be stored without any schedule asking, and a stop must not wait for any watcher's
next wake-up: every blocked read is cut at once.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import imapclient
import pytest

from futurnal.demo.dovecot import DovecotOptions, DovecotServer

from .cli import COMMAND, Cli, stored_count

pytestmark = pytest.mark.integration

MAILBOXES = 50
FOLDERS = ("INBOX", "Archive")
PASSWORD = "many-pw"
PROBES = 8


def _message(user: str, folder: str, tag: str) -> bytes:
    return (f"From: Sender <s@example.net>\r\nTo: {user}@example.org\r\nSubject: {tag}\r\n"
            f"Message-ID: <{tag}@example.net>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\n"
            f"Body of {tag} in {folder}.\r\n").encode()


def _users() -> list[str]:
    return [f"user{number:02d}" for number in range(MAILBOXES)]


@pytest.fixture
def many(dovecot_factory: object) -> DovecotServer:
    server: DovecotServer = dovecot_factory(DovecotOptions(max_connections=MAILBOXES * 4 + 20))  # type: ignore[operator]
    for user in _users():
        server.add_user(user, PASSWORD)
        for folder in FOLDERS:
            server.deliver(user, _message(user, folder, f"{user}-{folder}-first"), folder=folder)
    server.start()
    return server


@pytest.fixture
def registered(many: DovecotServer, tmp_path: Path) -> Cli:
    cli = Cli(tmp_path)
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    records = tmp_path / "mailboxes.jsonl"
    records.write_text("".join(json.dumps({
        "id": user, "email": f"{user}@example.org", "host": many.host, "port": many.imaps_port,
        "username": user, "cafile": str(many.cert_path), "password_file": str(secret),
        "folders": ",".join(FOLDERS), "watch": ",".join(FOLDERS), "schedule": "@interval 3600",
    }) + "\n" for user in _users()))
    imported = cli("imap", "import", str(records), "--consent", timeout=600)
    assert imported.code == 0, imported.err
    return cli


@pytest.fixture
def running(registered: Cli) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen([COMMAND, "run"], env=registered.env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def _wait_for(condition: object, what: str, process: subprocess.Popen[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if process.poll() is not None:
            raise AssertionError(f"run exited with {process.returncode} before {what}: {process.communicate()[1]}")
        assert time.monotonic() < deadline, f"not within {seconds:g} s: {what}"
        time.sleep(0.2)


def _stored_subjects(cli: Cli) -> set[str]:
    return {element["subject"] for element in cli("elements", "export").lines()}


def test_fifty_watched_mailboxes_get_new_mail_and_stop_on_time(
    many: DovecotServer, registered: Cli, running: subprocess.Popen[str]
) -> None:
    expected = MAILBOXES * len(FOLDERS)
    _wait_for(lambda: stored_count(registered.data_dir) >= expected, "every first sync was stored", running, 300)

    rng = random.Random(7)
    probes = []
    for number in range(PROBES):
        user, folder = rng.choice(_users()), rng.choice(FOLDERS)
        tag = f"probe-{number}-{user}"
        client = imapclient.IMAPClient(many.host, port=many.imap_port, ssl=False, timeout=30)
        client.login(user, PASSWORD)
        client.append(folder, _message(user, folder, tag))
        client.logout()
        probes.append(tag)
    # Nothing but the watchers can bring these in: the mailboxes' schedules are far away.
    _wait_for(lambda: set(probes) <= _stored_subjects(registered), "every probe was stored", running, 120)
    assert stored_count(registered.data_dir) == expected + PROBES

    started = time.monotonic()
    running.send_signal(signal.SIGTERM)
    _, err = running.communicate(timeout=120)
    took = time.monotonic() - started
    assert running.returncode == 0, err[-3000:]
    assert took < 10, f"run took {took:.1f} s to stop {MAILBOXES} mailboxes"
    assert "Traceback" not in err
