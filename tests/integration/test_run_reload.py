"""SIGHUP: ``run`` picks up mailboxes registered or removed meanwhile, leaving the others running."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from keyrings.alt.file import PlaintextKeyring

from futurnal import ActorSystem
from futurnal.config import ServiceSettings
from futurnal.demo.dovecot import DovecotServer
from futurnal.demo.sample_mailbox import generate_mailbox
from futurnal.storage.consent import SCOPES, ConsentRegistry
from futurnal.storage.credentials import CredentialStore
from futurnal.storage.data_dir import DataDir
from futurnal.storage.registry import MailboxRecord, MailboxRegistry
from futurnal.sync.fetch_plan import BatchLimits
from futurnal.sync.folder_sync import SyncProgress

from .cli import COMMAND, Cli
from .running_process import collect_lines


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def _two_users(dovecot_factory: Any, alice: int, bob: int) -> DovecotServer:
    server = dovecot_factory()
    server.add_user("bob", "bob-pw")
    for user, count, seed in (("alice", alice, 1), ("bob", bob, 2)):
        for message in generate_mailbox(count, seed=seed):
            server.deliver(user, message.raw, folder="INBOX", flags=message.flags)
    server.start()
    return server


def _bob(server: DovecotServer) -> MailboxRecord:
    return MailboxRecord(id="bob", email="bob@example.org", host=server.host, port=server.imaps_port,
                         username="bob", cafile=str(server.cert_path), watch=())


def _mailboxes(cli: Cli) -> dict[str, int]:
    counts: dict[str, int] = {}
    for element in cli("elements", "export").lines():
        counts[element["mailbox"]] = counts.get(element["mailbox"], 0) + 1
    return counts


def _wait_for(condition: Any, process: subprocess.Popen[str], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_sighup_starts_a_newly_registered_mailbox_and_stops_a_removed_one(cli: Cli, dovecot_factory: Any) -> None:
    server = _two_users(dovecot_factory, alice=20, bob=15)
    assert cli.add(server).code == 0
    process = subprocess.Popen([COMMAND, "run"], env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    lines: list[str] = []
    assert process.stdout is not None
    stdout = process.stdout
    reader = collect_lines(stdout, lines)
    try:
        _wait_for(lambda: _mailboxes(cli).get("alice") == 20, process, "run did not sync alice")
        # What `imap add` would do, were the data directory not owned by `run`.
        data_dir = DataDir(cli.data_dir)
        registry = MailboxRegistry(data_dir.registry_path)
        registry.add(_bob(server))
        registry.close()
        backend = PlaintextKeyring()
        (keyring_file,) = (cli.home / "xdg-data").rglob("*.cfg")
        backend.file_path = str(keyring_file)  # type: ignore[misc]
        CredentialStore(backend).set_secret("bob", "password", "bob-pw")
        ConsentRegistry(data_dir.consent_path).grant("bob", "test", SCOPES)

        process.send_signal(signal.SIGHUP)
        _wait_for(lambda: _mailboxes(cli).get("bob") == 15, process, "run did not sync bob after SIGHUP")
        assert any(line.startswith("reloaded: added bob") for line in lines), lines

        registry = MailboxRegistry(data_dir.registry_path)
        registry.remove("bob")
        registry.close()
        process.send_signal(signal.SIGHUP)
        _wait_for(lambda: any(line.startswith("reloaded: removed bob") for line in lines), process,
                  "run did not report removing bob")
        process.send_signal(signal.SIGHUP)
        _wait_for(lambda: any(line.startswith("reloaded: nothing changed") for line in lines), process,
                  "a reload with nothing new was not reported")
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGTERM)
        # The reader thread and communicate() both read stdout: the last line is in one of them.
        out, err = process.communicate(timeout=60)
        reader.join(timeout=10)
    assert process.returncode == 0, err
    assert any(line.startswith("stopped") for line in [*lines, *out.splitlines()])
    assert _mailboxes(cli) == {"alice": 20, "bob": 15}


@pytest.fixture
def keyring(tmp_path: Path) -> CredentialStore:
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring.cfg")  # type: ignore[misc]
    return CredentialStore(backend)


def test_a_reload_leaves_a_sync_in_flight_running_to_its_end(tmp_path: Path, dovecot_factory: Any,
                                                            keyring: CredentialStore) -> None:
    server = _two_users(dovecot_factory, alice=400, bob=10)
    system = ActorSystem(tmp_path / "data", credentials=keyring,
                         settings=ServiceSettings(batch=BatchLimits(max_messages=10)))
    system.add_mailbox(MailboxRecord(id="alice", email="alice@example.org", host=server.host,
                                     port=server.imaps_port, username="alice", cafile=str(server.cert_path),
                                     watch=()), password="secret-pw", consent=True)
    progress = threading.Event()
    with system.start(schedule=False):
        system.subscribe(lambda e: progress.set() if isinstance(e, SyncProgress) and e.mailbox == "alice" else None)
        in_flight = system.request_sync("alice")
        assert progress.wait(30), "alice's sync never started"
        system.add_mailbox(_bob(server), password="bob-pw", consent=True)  # reloads the running system
        assert system.sync("bob", timeout=60).fetched == 10
        report = in_flight.get(timeout=120)
    assert report.ok and report.fetched == 400  # one uninterrupted run, not stopped by the reload
