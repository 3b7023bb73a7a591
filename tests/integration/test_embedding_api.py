"""The embedding API: add_mailbox, events(), no threads left behind, systems side by side."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from keyrings.alt.file import PlaintextKeyring

from futurnal import ActorSystem, MailboxSyncReport
from futurnal.demo.dovecot import DovecotServer
from futurnal.demo.sample_mailbox import generate_mailbox
from futurnal.storage.consent import ConsentRegistry
from futurnal.storage.credentials import CredentialStore
from futurnal.storage.data_dir import DataDir
from futurnal.storage.registry import MailboxRecord, MailboxRegistry
from futurnal.sync.folder_sync import SyncProgress


class MemorySink:
    """An embedder's sink: elements by id."""

    def __init__(self) -> None:
        self.elements: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def upsert_many(self, elements: list[dict[str, Any]]) -> int:
        with self._lock:
            for element in elements:
                self.elements[element["id"]] = element
            return len(elements)

    def update_flags(self, updates: list[Any]) -> int:
        return 0

    def mark_deleted(self, keys: list[Any], when: str) -> int:
        return 0


@pytest.fixture
def server(dovecot_factory: Any) -> DovecotServer:
    server = dovecot_factory()
    server.add_user("bob", "bob-pw")
    for user, count, seed in (("alice", 30, 1), ("bob", 12, 2)):
        for message in generate_mailbox(count, seed=seed):
            server.deliver(user, message.raw, folder="INBOX", flags=message.flags)
    server.start()
    return server


@pytest.fixture
def credentials(tmp_path: Path) -> CredentialStore:
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring.cfg")  # type: ignore[misc]
    return CredentialStore(backend)


def _record(server: DovecotServer, user: str, watch: tuple[str, ...] = ("INBOX",)) -> MailboxRecord:
    return MailboxRecord(id=user, email=f"{user}@example.org", host=server.host, port=server.imaps_port,
                         username=user, cafile=str(server.cert_path), watch=watch)


def _threads_end(before: set[threading.Thread], timeout: float = 30) -> set[threading.Thread]:
    deadline = time.monotonic() + timeout
    while True:
        left = {t for t in threading.enumerate() if t not in before and t.is_alive()}
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def test_add_mailbox_registers_stores_the_secret_and_records_consent(tmp_path: Path, server: DovecotServer,
                                                                    credentials: CredentialStore) -> None:
    sink = MemorySink()
    with ActorSystem(tmp_path / "data", sink=sink, credentials=credentials) as system:
        system.add_mailbox(_record(server, "alice"), password="secret-pw", consent=True)
        report = system.sync("alice", timeout=60)
    assert report.ok and len(sink.elements) == 30
    data_dir = DataDir(tmp_path / "data")
    assert MailboxRegistry(data_dir.registry_path, read_only=True).get("alice").email == "alice@example.org"
    assert credentials.get_secret("alice", "password") == "secret-pw"
    assert ConsentRegistry(data_dir.consent_path).require("alice").granted_by == "embedding application"


def test_events_yields_published_events_in_order_and_ends_after_its_timeout(
    tmp_path: Path, server: DovecotServer, credentials: CredentialStore
) -> None:
    system = ActorSystem(tmp_path / "data", sink=MemorySink(), credentials=credentials)
    system.add_mailbox(_record(server, "alice", watch=()), password="secret-pw", consent=True)
    with system.start(schedule=False):
        events = system.events(timeout=5)
        future = system.request_sync("alice")
        seen = []
        for event in events:
            seen.append(event)
            if isinstance(event, MailboxSyncReport):
                break
        assert future.get(timeout=60).ok
        started = time.monotonic()
        assert list(system.events(timeout=0.3)) == []  # nothing more happens: it ends on its own
        assert time.monotonic() - started < 5
    progress = [e.done for e in seen if isinstance(e, SyncProgress)]
    assert progress and progress == sorted(progress) and progress[-1] == 30
    assert isinstance(seen[-1], MailboxSyncReport) and seen[-1].fetched == 30


def test_starting_and_stopping_leaves_no_threads_behind(tmp_path: Path, server: DovecotServer,
                                                        credentials: CredentialStore) -> None:
    system = ActorSystem(tmp_path / "data", sink=MemorySink(), credentials=credentials)
    system.add_mailbox(_record(server, "alice"), password="secret-pw", consent=True)  # watched: IDLE threads
    before = set(threading.enumerate())
    with system:
        assert system.sync("alice", timeout=60).ok
        assert len(threading.enumerate()) > len(before)
    left = _threads_end(before)
    assert not left, [t.name for t in left]


def test_two_systems_on_two_data_dirs_run_side_by_side_without_interfering(
    tmp_path: Path, server: DovecotServer, credentials: CredentialStore
) -> None:
    before = set(threading.enumerate())
    sinks = {"alice": MemorySink(), "bob": MemorySink()}
    systems = {user: ActorSystem(tmp_path / user, sink=sinks[user], credentials=credentials) for user in sinks}
    events: dict[str, list[Any]] = {user: [] for user in sinks}
    systems["alice"].add_mailbox(_record(server, "alice"), password="secret-pw", consent=True)
    systems["bob"].add_mailbox(_record(server, "bob"), password="bob-pw", consent=True)
    for user, system in systems.items():
        system.start(schedule=False)
        system.subscribe(events[user].append)
    try:
        futures = {user: system.request_sync(user) for user, system in systems.items()}
        reports = {user: future.get(timeout=60) for user, future in futures.items()}
        with pytest.raises(Exception, match="not part of this running system"):
            systems["alice"].sync("bob", timeout=5)
        systems["bob"].stop()  # one stopping leaves the other working
        assert systems["alice"].sync("alice", timeout=60).ok
    finally:
        for system in systems.values():
            system.stop()
    assert reports["alice"].fetched == len(sinks["alice"].elements) == 30
    assert reports["bob"].fetched == len(sinks["bob"].elements) == 12
    assert {e["mailbox"] for e in sinks["alice"].elements.values()} == {"alice"}
    assert {e["mailbox"] for e in sinks["bob"].elements.values()} == {"bob"}
    for user in sinks:
        assert {e.mailbox for e in events[user] if isinstance(e, (SyncProgress, MailboxSyncReport))} == {user}
    assert not _threads_end(before)
