"""Quarantined messages kept with their raw bytes: the same behaviour from the files of one data
directory (storage/quarantine.py) and from the table several processes share in a real PostgreSQL
(storage/postgres/quarantine.py); then what only sharing gives: two hosts see each other's records,
and the `quarantine` commands of a data directory with a shared store reach them."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from futurnal.cli.main import main
from futurnal.storage.audit_log import AuditEvent
from futurnal.storage.data_dir import DataDir
from futurnal.storage.quarantine import InvalidRecordId, Quarantine, QuarantineRecord, QuarantineStore

# Bytes no text decoding would keep: NUL, a lone high byte, CR LF.
RAW = b"From: a@example.org\r\nSubject: \xff\x00 odd\r\n\r\nbody\r\n"
NOW, LATER, LAST = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"


def _controls(request: pytest.FixtureRequest) -> Any:
    """A function making SharedControls on one fresh database (as many hosts), closed after the test."""
    pytest.importorskip("psycopg")
    from futurnal.storage.postgres.control import SharedControl

    url = request.getfixturevalue("postgres_url")
    opened: list[SharedControl] = []

    def control() -> SharedControl:
        opened.append(SharedControl(url))
        return opened[-1]

    request.addfinalizer(lambda: [c.close() for c in opened])
    control.url = url  # type: ignore[attr-defined]
    return control


@pytest.fixture(params=["files", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Quarantine:
    if request.param == "files":
        return QuarantineStore(tmp_path / "quarantine")
    return _controls(request)().quarantine()


def _add(store: Quarantine, uid: int = 5, mailbox: str = "alice", **changes: Any) -> QuarantineRecord:
    return store.add(**{"mailbox": mailbox, "folder": "INBOX", "uidvalidity": 7, "uid": uid, "reason": "parse failed",
                        "raw": RAW, "now": NOW, **changes})


def test_a_quarantined_message_is_kept_with_its_record_and_exact_bytes(store: Quarantine) -> None:
    added = _add(store, flags=["\\Seen", "$Junk"], internal_date="2025-12-31T23:00:00+00:00", complete=False)
    assert added == QuarantineRecord(
        id=store.record_id("alice", "INBOX", 7, 5), mailbox="alice", folder="INBOX", uidvalidity=7, uid=5,
        reason="parse failed", attempts=1, first_seen=NOW, last_seen=NOW, flags=("\\Seen", "$Junk"),
        internal_date="2025-12-31T23:00:00+00:00", complete=False)
    assert store.get(added.id) == added
    assert store.raw(added.id) == RAW
    assert store.list() == [added]


def test_quarantining_it_again_counts_an_attempt_and_keeps_when_it_was_first_seen(store: Quarantine) -> None:
    first = _add(store)
    again = _add(store, reason="parser crashed", raw=b"new bytes", now=LATER)
    assert (again.id, again.attempts, again.first_seen, again.last_seen, again.reason) == (
        first.id, 2, NOW, LATER, "parser crashed")
    assert store.get(first.id) == again and store.raw(first.id) == b"new bytes"
    assert len(store.list()) == 1


def test_touch_counts_a_failed_retry_and_keeps_the_bytes_and_what_the_server_said(store: Quarantine) -> None:
    first = _add(store, flags=["\\Flagged"], internal_date="2025-12-31T23:00:00+00:00")
    touched = store.touch(first, "retry failed: ValueError: still bad", LAST)
    assert touched == QuarantineRecord(
        id=first.id, mailbox="alice", folder="INBOX", uidvalidity=7, uid=5, reason="retry failed: ValueError: still bad",
        attempts=2, first_seen=NOW, last_seen=LAST, flags=("\\Flagged",), internal_date="2025-12-31T23:00:00+00:00")
    assert store.get(first.id) == touched and store.raw(first.id) == RAW


def test_list_is_in_id_order_and_by_mailbox(store: Quarantine) -> None:
    records = [_add(store, uid=uid, mailbox=mailbox) for uid in (1, 2, 3) for mailbox in ("alice", "bob")]
    assert [r.id for r in store.list()] == sorted(r.id for r in records)
    assert [r.id for r in store.list("bob")] == sorted(r.id for r in records if r.mailbox == "bob")
    assert store.list("carol") == []


def test_drop_deletes_the_record_and_its_bytes_once(store: Quarantine) -> None:
    record = _add(store)
    kept = _add(store, uid=6)
    assert store.drop(record.id) is True
    assert store.drop(record.id) is False
    assert store.get(record.id) is None
    with pytest.raises(FileNotFoundError):
        store.raw(record.id)
    assert store.list() == [kept]


def test_a_record_that_is_not_there_is_none(store: Quarantine) -> None:
    assert store.get("0123456789abcdef") is None
    assert store.list() == []


def test_removing_a_mailbox_deletes_its_records_alone(store: Quarantine) -> None:
    for uid in (1, 2, 3):
        _add(store, uid=uid)
    bob = _add(store, uid=1, mailbox="bob")
    assert store.remove_mailbox("alice") == 3
    assert store.remove_mailbox("alice") == 0
    assert store.list() == [bob] and store.raw(bob.id) == RAW


@pytest.mark.parametrize("bad", ["../../etc/passwd", "0123456789ABCDEF", "0123456789abcde", "0123456789abcdef'--", ""])
def test_an_id_record_id_cannot_have_made_is_refused_everywhere(store: Quarantine, bad: str) -> None:
    _add(store)
    for use in (store.get, store.raw, store.drop):
        with pytest.raises(InvalidRecordId):
            use(bad)
    assert len(store.list()) == 1


def test_record_ids_are_the_same_whichever_store_keeps_them(store: Quarantine) -> None:
    assert store.record_id("alice", "INBOX", 7, 5) == QuarantineStore.record_id("alice", "INBOX", 7, 5)
    assert store.record_id("alice", "INBOX", 7, 5) != store.record_id("alice", "INBOX", 8, 5)


# -- what only the shared store gives ------------------------------------------------------------


@pytest.fixture
def hosts(request: pytest.FixtureRequest) -> Any:
    return _controls(request)


def test_two_hosts_see_and_count_each_others_quarantined_messages(hosts: Any) -> None:
    one, two = hosts().quarantine(), hosts().quarantine()
    record = _add(one)
    assert two.get(record.id) == record and two.raw(record.id) == RAW and two.list("alice") == [record]
    again = two.touch(record, "retry failed", LATER)  # the host that took the mailbox over
    assert (again.attempts, again.first_seen) == (2, NOW)
    assert one.get(record.id) == again
    assert one.drop(record.id) is True
    assert two.get(record.id) is None and two.list() == []


def test_two_hosts_quarantining_one_message_at_once_count_both_attempts(hosts: Any) -> None:
    """The first add of a message has no row to lock: the two still take turns."""
    stores = [hosts().quarantine(), hosts().quarantine()]
    uids = range(1, 31)
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def add_all(store: Quarantine) -> None:
        try:
            for uid in uids:
                start.wait(timeout=30)
                _add(store, uid=uid)
        except BaseException as exc:  # seen by the test below
            failures.append(exc)

    threads = [threading.Thread(target=add_all, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    assert sorted({r.attempts for r in stores[0].list()}) == [2] and len(stores[0].list()) == len(uids)


def test_a_shared_data_directorys_quarantine_is_the_table_and_no_file(tmp_path: Path, hosts: Any) -> None:
    control = hosts()
    data_dir = DataDir(tmp_path, shared=control)
    record = _add(data_dir.quarantine())
    assert not data_dir.quarantine_root.exists()
    assert DataDir(tmp_path / "other", shared=hosts()).quarantine().get(record.id) == record
    assert DataDir(tmp_path).quarantine().list() == []  # the same directory without the shared store: files


def _cli(root: Path, *args: str) -> int:
    return main(["--data-dir", str(root), "quarantine", *args])


def test_quarantine_list_show_and_drop_on_one_host_reach_what_another_quarantined(
        tmp_path: Path, hosts: Any, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    other = DataDir(tmp_path / "other-host", shared=hosts())
    record = _add(other.quarantine())
    here = tmp_path / "this-host"
    here.mkdir(mode=0o700)
    (here / "config.toml").write_text(f'[store]\nurl = "{hosts.url}"\n')

    assert _cli(here, "list", "--json") == 0
    assert [r["id"] for r in json.loads(capsysbinary.readouterr().out)] == [record.id]
    assert _cli(here, "show", record.id) == 0
    assert json.loads(capsysbinary.readouterr().out)["raw_bytes"] == len(RAW)
    assert _cli(here, "show", record.id, "--raw") == 0
    assert capsysbinary.readouterr().out == RAW
    assert _cli(here, "drop", record.id) == 0
    assert f"dropped {record.id}".encode() in capsysbinary.readouterr().out
    assert other.quarantine().list() == []
    assert [e["event"] for e in other.audit_log().entries()] == [AuditEvent.QUARANTINE_DROPPED.value]
    assert _cli(here, "show", record.id) == 1
    assert b"no quarantined message" in capsysbinary.readouterr().err
    assert not (here / "quarantine").exists()


def test_purging_a_mailbox_deletes_its_quarantined_messages_from_the_table(tmp_path: Path, hosts: Any) -> None:
    from futurnal.storage.purge import remove_mailbox
    from futurnal.storage.registry import MailboxRecord

    data_dir = DataDir(tmp_path, shared=hosts())
    with data_dir.registry() as registry:
        registry.add(MailboxRecord(id="alice", email="alice@example.com", host="imap.example.com", username="alice",
                                   port=993))
        _add(data_dir.quarantine(), uid=1)
        _add(data_dir.quarantine(), uid=2)
        bob = _add(data_dir.quarantine(), mailbox="bob")
        assert remove_mailbox(data_dir, registry, "alice", purge=True)["quarantined"] == 2
    assert DataDir(tmp_path / "other", shared=hosts()).quarantine().list() == [bob]
