"""The Python API an application embeds: its own sink, progress events, and supervision at work."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from keyrings.alt.file import PlaintextKeyring

from futurnal import ActorSystem, MailboxSyncReport
from futurnal.config import ServiceSettings
from futurnal.demo.dovecot import DovecotServer
from futurnal.demo.sample_mailbox import generate_mailbox
from futurnal.storage.consent import SCOPES, ConsentRegistry
from futurnal.storage.credentials import CredentialStore
from futurnal.storage.data_dir import DataDir
from futurnal.storage.registry import MailboxRecord, MailboxRegistry
from futurnal.sync.fetch_plan import BatchLimits
from futurnal.sync.folder_sync import SyncProgress


class MemorySink:
    """An embedder's sink: keeps elements by id, and can be told to fail its first writes."""

    def __init__(self, fail_first: int = 0) -> None:
        self.elements: dict[str, dict[str, Any]] = {}
        self.writes = 0
        self._fail_first = fail_first
        self._lock = threading.Lock()

    def upsert_many(self, elements: list[dict[str, Any]]) -> int:
        with self._lock:
            self.writes += 1
            if self.writes <= self._fail_first:
                raise OSError("disk briefly unavailable")
            for element in elements:
                self.elements[element["id"]] = element
            return len(elements)

    def _find(self, key: Any) -> dict[str, Any] | None:
        return next((e for e in self.elements.values() if (e["mailbox"], e["folder"], e["uidvalidity"], e["uid"])
                     == (key.mailbox, key.folder, key.uidvalidity, key.uid)), None)

    def update_flags(self, updates: list[tuple[Any, list[str]]]) -> int:
        """The README's sink protocol: a sync resumed after a failure asks for the flags it knows."""
        with self._lock:
            changed = 0
            for key, flags in updates:
                element = self._find(key)
                if element is not None and element["flags"] != flags:
                    element["flags"], changed = flags, changed + 1
            return changed

    def mark_deleted(self, keys: list[Any], when: str) -> int:
        with self._lock:
            found = [element for key in keys if (element := self._find(key)) is not None]
            for element in found:
                element["deleted"] = True
            return len(found)


@pytest.fixture
def registered(tmp_path: Path, dovecot_factory: Any) -> tuple[DovecotServer, Path, CredentialStore]:
    server = dovecot_factory()
    for message in generate_mailbox(120, seed=3):
        server.deliver("alice", message.raw, folder="INBOX", flags=message.flags)
    server.start()
    data_dir = DataDir(tmp_path / "data").ensure()
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring.cfg")  # type: ignore[misc]
    credentials = CredentialStore(backend)
    registry = MailboxRegistry(data_dir.registry_path)
    registry.add(MailboxRecord(id="alice", email="alice@example.org", host=server.host, port=server.imaps_port,
                               username="alice", cafile=str(server.cert_path)))
    registry.close()
    credentials.set_secret("alice", "password", "secret-pw")
    ConsentRegistry(data_dir.consent_path).grant("alice", "test", SCOPES)
    return server, data_dir.root, credentials


def test_an_embedder_gets_every_element_in_its_own_sink_with_progress(registered: Any) -> None:
    _server, data_dir, credentials = registered
    sink = MemorySink()
    events: list[Any] = []
    settings = ServiceSettings(batch=BatchLimits(max_messages=25))
    system = ActorSystem(data_dir, sink=sink, credentials=credentials, settings=settings)
    system.start(schedule=False)  # no startup sync: this test's sync is the first and only one
    try:
        system.subscribe(events.append)
        report = system.sync("alice", timeout=60)
    finally:
        system.stop()
    assert isinstance(report, MailboxSyncReport) and report.ok
    assert report.fetched == len(sink.elements) == 120
    progress = [e for e in events if isinstance(e, SyncProgress)]
    assert progress[-1].done == progress[-1].total == 120
    assert [p.done for p in progress] == sorted(p.done for p in progress)
    assert sink.writes >= 5  # batches of at most 25


def test_a_crashing_sink_is_restarted_and_the_sync_still_completes_exactly(registered: Any) -> None:
    _server, data_dir, credentials = registered
    sink = MemorySink(fail_first=2)
    with ActorSystem(data_dir, sink=sink, credentials=credentials,
                     settings=ServiceSettings(batch=BatchLimits(max_messages=40))) as system:
        report = system.sync("alice", timeout=60)  # folded into the startup sync's follow-up run
    assert report.ok, report.errors
    assert len(sink.elements) == 120
    assert sorted(e["uid"] for e in sink.elements.values()) == list(range(1, 121))


def test_a_second_system_on_the_same_data_dir_is_refused(registered: Any) -> None:
    from futurnal.storage.errors import DataDirLocked

    _server, data_dir, credentials = registered
    with ActorSystem(data_dir, sink=MemorySink(), credentials=credentials):
        with pytest.raises(DataDirLocked):
            ActorSystem(data_dir, sink=MemorySink(), credentials=credentials).start()
