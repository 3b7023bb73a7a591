"""Local faults (a full disk, a damaged stored element, a missing CA file): named once, never a
crash, never poison, retried with back-off until they are gone."""

from __future__ import annotations

import errno
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from futurnal.actors.fetcher import _SinkPort
from futurnal.actors.mailbox import MailboxActor
from futurnal.actors.messages import (
    DescribeMailbox,
    FoldersResolved,
    FolderSynced,
    ResolveFolders,
    SyncFolder,
    SyncTick,
    WriteElements,
)
from futurnal.actors.service_actor import ServiceActor
from futurnal.actors.sink import SinkActor
from futurnal.cli.run_command import _ReportPrinter
from futurnal.events import EventBus
from futurnal.imap.connector import MailboxConnector
from futurnal.imap.errors import CaFileUnusable
from futurnal.logs.configure import redactor
from futurnal.mailboxes.fault_retry import local_fault_policy
from futurnal.storage.element_store import ElementKey
from futurnal.storage.errors import LocalFault, local_fault
from futurnal.storage.registry import MailboxRecord
from futurnal.storage.sqlite import SqliteElementStore
from futurnal.storage.sqlite.reader import DamagedElement
from futurnal.supervisors.backoff import BackoffPolicy, RestartBackoff
from futurnal.supervisors.directory import ActorDirectory
from futurnal.supervisors.restart_intensity import RestartIntensity
from futurnal.supervisors.supervisor import ChildSpec
from futurnal.sync.folder_sync import FolderSyncResult
from futurnal.sync.sync_runs import MailboxSyncReport

from .test_supervisor import TIMEOUT, FakeSchedule, Recorder, start_supervisor


@pytest.fixture(autouse=True)
def no_actor_left_behind() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all(timeout=TIMEOUT)


def _element(uid: int, **fields: Any) -> dict[str, Any]:
    element = {"id": f"alice-INBOX-{uid}", "mailbox": "alice", "folder": "INBOX", "uidvalidity": 5, "uid": uid,
               "subject": f"subject {uid}", "text": "x" * 2000, "from": [], "to": [], "flags": [], "attachments": [],
               "date": "2024-03-01T10:00:00Z", "thread_id": "t", "deleted": False}
    element.update(fields)
    return element


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteElementStore]:
    opened = SqliteElementStore(tmp_path / "elements.sqlite", tmp_path / "listeners")
    yield opened
    opened.close()


def _fill_up(store: SqliteElementStore) -> None:
    """Make the database as full as a full disk makes it: no page can be added."""
    pages = store._connection.execute("PRAGMA page_count").fetchone()[0]
    store._connection.execute(f"PRAGMA max_page_count = {pages}")


def _make_room(store: SqliteElementStore) -> None:
    store._connection.execute("PRAGMA max_page_count = 1073741823")


# -- what counts as a local fault, and how it reads --------------------------------------------


def test_a_full_disk_is_named_with_where_and_what_to_do(tmp_path: Path) -> None:
    fault = local_fault(OSError(errno.ENOSPC, "No space left on device"), path=tmp_path)
    assert str(fault) == f"disk full at {tmp_path}: free space"
    named = local_fault(OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "state" / "a.json")))
    assert str(named) == f"disk full at {tmp_path / 'state'}: free space"
    database = tmp_path / "elements.sqlite"
    full = sqlite3.connect(":memory:")
    full.execute("CREATE TABLE t (x)")
    full.execute("PRAGMA max_page_count = 2")
    with pytest.raises(sqlite3.OperationalError) as raised:
        full.execute("INSERT INTO t VALUES (?)", ("x" * 100_000,))
    assert str(local_fault(raised.value, path=database)) == f"disk full at {tmp_path}: free space"
    assert "no permission" in str(local_fault(PermissionError(errno.EACCES, "Permission denied", "/x/y")))


def test_bugs_and_other_errors_are_not_local_faults() -> None:
    assert local_fault(ValueError("a bug")) is None
    assert local_fault(sqlite3.IntegrityError("UNIQUE constraint failed")) is None
    # Outside the actors, an OSError that names no file and no file system's trouble is not one.
    assert local_fault(ConnectionRefusedError(errno.ECONNREFUSED, "refused"), files_only=True) is None
    fault = LocalFault("disk full at /x: free space")
    assert local_fault(fault) is fault


# -- the store and its one writer ----------------------------------------------------------------


def test_a_write_to_a_full_store_is_undone_and_the_next_one_succeeds_once_there_is_room(
    store: SqliteElementStore,
) -> None:
    store.upsert_many([_element(1)])
    _fill_up(store)
    with pytest.raises(sqlite3.OperationalError, match="full"):
        store.upsert_many([_element(uid) for uid in range(2, 40)])
    assert not store._connection.in_transaction  # rolled back: nothing half-written is committed later
    _make_room(store)
    assert store.upsert_many([_element(uid) for uid in range(2, 40)]) == 38
    assert store.count() == 39 and store.last_seq() == 39


def test_the_sink_answers_a_full_store_with_a_local_fault_and_stays_up(store: SqliteElementStore) -> None:
    sink = SinkActor.start(sink=store)
    _fill_up(store)
    with pytest.raises(LocalFault, match=f"disk full at {store.path.parent}: free space"):
        sink.ask(WriteElements(tuple(_element(uid) for uid in range(1, 40))), timeout=TIMEOUT)
    assert sink.is_alive()
    _make_room(store)
    assert sink.ask(WriteElements(tuple(_element(uid) for uid in range(1, 40))), timeout=TIMEOUT) == 39


class FullOnce:
    """A sink whose first write finds the disk full, and whose later writes succeed."""

    def __init__(self) -> None:
        self.written: list[int] = []

    def upsert_many(self, elements: list[dict[str, Any]]) -> int:
        if not self.written:
            self.written.append(0)
            raise OSError(errno.ENOSPC, "No space left on device")
        self.written.extend(e["uid"] for e in elements)
        return len(elements)


def test_after_a_failed_write_no_later_write_of_the_same_sync_counts_as_durable() -> None:
    """The watermark rule: were batch 2 acknowledged after batch 1 failed, it would move past batch 1."""
    sink, directory = FullOnce(), ActorDirectory()
    directory.set("sink", SinkActor.start(sink=sink))
    port = _SinkPort(directory)
    first, second = port.write([_element(1)]), port.write([_element(2)])
    with pytest.raises(LocalFault, match="disk full"):
        first.get(timeout=TIMEOUT)
    with pytest.raises(LocalFault, match="disk full"):
        second.get(timeout=TIMEOUT)  # written by the sink, yet not acknowledged to this sync
    assert sink.written == [0, 2]  # (stored twice is harmless: the next sync re-fetches from batch 1)
    assert _SinkPort(directory).write([_element(1)]).get(timeout=TIMEOUT) == 1  # the next sync writes again


def _damage(store: SqliteElementStore, element_id: str) -> None:
    """What a disk fault or a hand edit does to one stored document."""
    store._connection.execute(
        "UPDATE documents SET doc = '{\"id\": \"cut short' WHERE row = (SELECT row FROM elements WHERE id = ?)",
        (element_id,))


def test_a_damaged_element_is_named_and_left_out_while_the_rest_reads_as_usual(store: SqliteElementStore) -> None:
    store.upsert_many([_element(1), _element(2, subject="invoice"), _element(3, subject="invoice")])
    _damage(store, "alice-INBOX-2")
    named: list[tuple[str, str]] = []
    store.on_damaged = lambda element_id, outcome: named.append((element_id, outcome))
    assert [e["uid"] for e in store.iter_elements("alice")] == [1, 3]
    assert [c.document is None for c in store.changes()] == [False, True, False]
    assert {element_id for element_id, _ in named} == {"alice-INBOX-2"}
    with pytest.raises(DamagedElement, match="alice-INBOX-2"):
        store.get("alice-INBOX-2")
    assert sorted(hit.id for hit in store.search("invoice")) == ["alice-INBOX-2", "alice-INBOX-3"]
    assert [p for p in store.integrity_problems() if "alice-INBOX-2" in p]


def test_changes_to_a_damaged_element_are_reported_and_the_rest_of_the_batch_is_written(
    store: SqliteElementStore,
) -> None:
    store.upsert_many([_element(1), _element(2)])
    _damage(store, "alice-INBOX-1")
    named: list[tuple[str, str]] = []
    store.on_damaged = lambda element_id, outcome: named.append((element_id, outcome))
    keys = [ElementKey("alice", "INBOX", 5, 1), ElementKey("alice", "INBOX", 5, 2)]
    assert store.update_flags([(key, ["\\Flagged"]) for key in keys]) == 1
    assert store.update_attachments([(keys[0], [{"index": 0, "sha256": "0", "status": "ok", "text": ""}])]) == 0
    assert store.mark_deleted(keys, "2024-03-02T00:00:00Z") == 2  # the damaged one leaves exports all the same
    assert [e["uid"] for e in store.iter_elements("alice", include_deleted=False)] == []
    assert store.get("alice-INBOX-2")["flags"] == ["\\Flagged"]
    assert [outcome for _, outcome in named][:3] == [
        "its new flags could not be applied", "its attachment text could not be added",
        "it was marked deleted, its document left as it is"]
    store.upsert_many([_element(1)])  # fetched again: stored whole, the damage gone
    assert store.get("alice-INBOX-1")["uid"] == 1


# -- supervision: restarted with patience, never given up on, never poison -------------------------


class FullDiskChild(ServiceActor, Recorder):
    """A child of the service's kind that dies of a full disk whenever told to work."""

    def handle(self, message: Any) -> Any:
        if message == "work":
            self.working_on = "INBOX\x005\x001"
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().handle(message)


def test_deaths_of_a_local_fault_back_off_and_neither_exhaust_the_intensity_nor_make_poison() -> None:
    journal: list[str] = []
    directory = ActorDirectory()
    schedule = FakeSchedule()
    spec = ChildSpec("fetcher", lambda parent: FullDiskChild.start(name="fetcher", journal=journal, supervisor=parent),
                     shutdown_timeout=TIMEOUT, start_timeout=TIMEOUT)
    root = start_supervisor([spec], directory, intensity=RestartIntensity(2, 60), schedule=schedule,
                            fault_backoff=BackoffPolicy(initial=5, factor=2, cap=300, jitter=0, reset_after=30))
    for _ in range(6):  # three times the intensity
        child = _wait_for(lambda: directory.get("fetcher"))
        child.tell("work")
        _wait_for(lambda: directory.get("fetcher") not in (None, child))
    assert root.is_alive()
    assert schedule.delays == [5, 10, 20, 40, 80, 160]
    assert not [line for line in journal if "poison" in line]


def _wait_for(condition: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
    return value


def test_the_fault_back_off_starts_at_five_seconds_and_caps_at_five_minutes() -> None:
    policy = local_fault_policy({})
    assert (policy.base_delay(0), policy.base_delay(20)) == (5.0, 300.0)
    assert local_fault_policy({"FUTURNAL_FAULT_RETRY_SECONDS": "0.5"}).initial == 0.5
    with pytest.raises(ValueError, match="FUTURNAL_FAULT_RETRY_SECONDS"):
        local_fault_policy({"FUTURNAL_FAULT_RETRY_SECONDS": "soon"})


# -- the mailbox actor retries by itself -------------------------------------------------------------


class FetcherStandIn(pykka.ThreadingActor):
    """Resolves to INBOX; its first ``failures`` syncs of INBOX stop on a full disk."""

    def __init__(self, directory: ActorDirectory, failures: int) -> None:
        super().__init__()
        self._directory = directory
        self._failures = failures

    def on_receive(self, message: Any) -> Any:
        mailbox = self._directory.get("mailbox/alice")
        assert mailbox is not None
        if isinstance(message, ResolveFolders):
            mailbox.tell(FoldersResolved(message.run_id, ("INBOX",)))
        elif isinstance(message, SyncFolder) and self._failures:
            self._failures -= 1
            mailbox.tell(FolderSynced(message.run_id, "INBOX", error="disk full at /x: free space", local_fault=True))
        elif isinstance(message, SyncFolder):
            mailbox.tell(FolderSynced(message.run_id, "INBOX", result=FolderSyncResult("alice", "INBOX", 1, 0, False, 5, 1)))
        return None


def test_a_mailbox_stopped_by_a_local_fault_retries_with_back_off_until_it_gets_through() -> None:
    directory, events, reports = ActorDirectory(), EventBus(), []
    events.subscribe(lambda event: reports.append(event) if isinstance(event, MailboxSyncReport) else None)
    fetcher = FetcherStandIn.start(directory, failures=2)
    directory.set("fetcher/alice", fetcher)
    schedule = FakeSchedule(hold=True)
    retry = RestartBackoff(BackoffPolicy(initial=5, factor=2, cap=300, jitter=0, reset_after=0))
    mailbox = MailboxActor.start(mailbox_id="alice", directory=directory, events=events, retry=retry,
                                 schedule=schedule)
    directory.set("mailbox/alice", mailbox)
    mailbox.tell(SyncTick())
    _wait_for(lambda: schedule.held)
    assert mailbox.ask(DescribeMailbox(), timeout=TIMEOUT)["local_faults"] == {"INBOX": "disk full at /x: free space"}
    for expected_delays in ([5], [5, 10]):
        assert schedule.delays == expected_delays
        schedule.release()  # the retry is due
        _wait_for(lambda: len(reports) == len(expected_delays) + 1)
    assert [r.ok for r in reports] == [False, False, True]
    assert mailbox.ask(DescribeMailbox(), timeout=TIMEOUT)["local_faults"] == {}
    assert schedule.delays == [5, 10] and not schedule.held  # got through: no more retries


# -- a CA file gone missing ------------------------------------------------------------------------


class _Secrets:
    def get_secret(self, mailbox_id: str, kind: str) -> str:
        return "secret-pw"


def _connector(cafile: str) -> MailboxConnector:
    record = MailboxRecord(id="alice", email="alice@example.org", host="127.0.0.1", port=9, username="alice",
                           cafile=cafile)
    return MailboxConnector(record, _Secrets(), secret_registry=redactor, connect_timeout=1,  # type: ignore[arg-type]
                            read_timeout=1)


def test_a_missing_or_unusable_ca_file_is_a_clear_local_fault_before_any_connection(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    with pytest.raises(CaFileUnusable, match=f"CA file {missing} is missing: put the CA certificate"):
        _connector(str(missing))()
    missing.write_text("not a certificate\n")
    with pytest.raises(CaFileUnusable, match=f"CA file {missing} cannot be used"):
        _connector(str(missing))()
    assert local_fault(CaFileUnusable("x")) is not None


# -- `run` prints a fault once, and once more when it is over -------------------------------------


def test_run_prints_a_repeated_failure_once_and_says_when_the_mailbox_syncs_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    printer = _ReportPrinter()
    failed = MailboxSyncReport("alice", (), (("INBOX", "disk full at /x: free space"),))
    for _ in range(3):
        printer(failed)
    printer(MailboxSyncReport("alice", (FolderSyncResult("alice", "INBOX", 2, 0, False, 5, 2),), ()))
    printer(MailboxSyncReport("alice", (), ()))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("alice: 0 new; INBOX failed: disk full at /x: free space")
    assert lines[1].endswith("alice: 2 new (INBOX 2); syncing again")
