"""The control plane in a real PostgreSQL (storage/postgres/control.py): the registry, folder
states and consent as documents of a data directory with ``shared``, version-checked and fenced
writes, and the audit log's hash chain kept by several processes at once."""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import pytest

from futurnal.storage.audit_log import AuditEvent, AuditLog
from futurnal.storage.consent import SCOPES, NoConsent
from futurnal.storage.data_dir import DataDir
from futurnal.storage.errors import CorruptStateFile, StorageError
from futurnal.storage.purge import remove_mailbox
from futurnal.storage.registry import MailboxRecord, UnknownMailbox
from futurnal.storage.shared import DocumentChanged
from futurnal.storage.sync_state import FolderState

pytest.importorskip("psycopg")

import psycopg  # noqa: E402

from futurnal.storage.postgres.control import SharedControl  # noqa: E402
from futurnal.storage.postgres.fencing import LeaseLost, check_tokens  # noqa: E402
from futurnal.storage.postgres.schema import connect  # noqa: E402


class TokenFence:
    """This process as lease holder ``owner`` with the tokens it believes it holds."""

    def __init__(self, owner: str, tokens: dict[str, int]) -> None:
        self.owner, self.tokens = owner, tokens

    def check(self, db: psycopg.Connection[Any], mailboxes: Collection[str]) -> None:
        check_tokens(db, self.owner, self.tokens, mailboxes)


@pytest.fixture
def controls(postgres_url: str) -> Iterator[list[SharedControl]]:
    opened: list[SharedControl] = []
    yield opened
    for control in opened:
        control.close()


def _control(controls: list[SharedControl], url: str, fence: TokenFence | None = None) -> SharedControl:
    """A control on ``url``, its schema in place (a control connects at its first use)."""
    connect(url).close()
    control = SharedControl(url, fence)
    controls.append(control)
    return control


def _record(mailbox_id: str = "alice", **changes: Any) -> MailboxRecord:
    return MailboxRecord(id=mailbox_id, email=f"{mailbox_id}@example.com", host="imap.example.com",
                         username=mailbox_id, **{"port": 993, **changes})


def _body(url: str, name: str) -> Any:
    with psycopg.connect(url) as db:
        row = db.execute("SELECT body FROM documents WHERE name = %s", (name,)).fetchone()
    return None if row is None else row[0]


def test_the_registry_of_a_shared_data_directory_is_a_document_and_no_file(
        tmp_path: Path, postgres_url: str, controls: list[SharedControl]) -> None:
    data_dir = DataDir(tmp_path, shared=_control(controls, postgres_url))
    with data_dir.registry() as registry:
        registry.add(_record("alice"))
        registry.add(_record("bob"))
        with pytest.raises(ValueError, match="already registered"):
            registry.add(_record("alice"))
        registry.update(_record("alice", port=1993))
        registry.remove("bob")
    with data_dir.registry(read_only=True) as registry:
        assert [r.id for r in registry.all()] == ["alice"]
        assert registry.get("alice@example.com").port == 1993
        with pytest.raises(UnknownMailbox):
            registry.get("bob")
        with pytest.raises(PermissionError, match="read-only"):
            registry.add(_record("carol"))
    stored = _body(postgres_url, "registry")
    assert [doc["id"] for doc in stored["mailboxes"].values()] == ["alice"]
    assert not data_dir.registry_path.exists()
    assert DataDir(tmp_path).registry(read_only=True).all() == []  # the files are another data directory's


def test_folder_states_round_trip_through_their_mailboxs_document(
        tmp_path: Path, postgres_url: str, controls: list[SharedControl]) -> None:
    data_dir = DataDir(tmp_path, shared=_control(controls, postgres_url))
    assert not data_dir.has_state("alice")
    states = data_dir.folder_states("alice")
    states.put(FolderState(folder="INBOX", uidvalidity=7, last_uid=42, known_uids="1:42", extensions=("IDLE",)))
    states.set_needs_reauth("login refused", "2026-01-01T00:00:00Z")
    states.set_downloads({"100": 5})
    states.close()
    assert data_dir.has_state("alice") and not data_dir.has_state("bob")
    assert not data_dir.state_path("alice").exists()
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT mailbox FROM documents WHERE name = 'state/alice'").fetchone() == ("alice",)
    again = data_dir.folder_states("alice", read_only=True)
    assert again.get("INBOX") == FolderState(folder="INBOX", uidvalidity=7, last_uid=42, known_uids="1:42",
                                             extensions=("IDLE",))
    assert again.needs_reauth() == {"reason": "login refused", "since": "2026-01-01T00:00:00Z"}
    assert again.downloads() == {"100": 5}
    again.close()
    writable = data_dir.folder_states("alice")
    writable.set_needs_reauth(None)
    assert data_dir.folder_states("alice").needs_reauth() is None


def test_a_damaged_state_document_is_named_and_left_untouched(
        tmp_path: Path, postgres_url: str, controls: list[SharedControl]) -> None:
    data_dir = DataDir(tmp_path, shared=_control(controls, postgres_url))
    data_dir.folder_states("alice").put(FolderState(folder="INBOX", last_uid=3))
    with psycopg.connect(postgres_url) as db:
        db.execute("UPDATE documents SET body = jsonb_set(body, '{folders,1,last_uid}', '\"three\"')"
                   " WHERE name = 'state/alice'")
    with pytest.raises(CorruptStateFile, match="document 'state/alice'.*last_uid"):
        data_dir.folder_states("alice").get("INBOX")


def test_consent_is_granted_revoked_and_required_through_the_shared_document(
        tmp_path: Path, postgres_url: str, controls: list[SharedControl]) -> None:
    data_dir = DataDir(tmp_path, shared=_control(controls, postgres_url))
    consent = data_dir.consent()
    with pytest.raises(NoConsent, match="no consent is recorded"):
        consent.require("alice")
    consent.grant("alice", "Alice", ("content", "metadata"))
    consent.grant("bob", "Bob", SCOPES, expires_at="2000-01-01T00:00:00Z")
    assert data_dir.consent().require("alice").scopes == ("metadata", "content")
    with pytest.raises(NoConsent, match="expired"):
        data_dir.consent().require("bob")
    assert consent.revoke("alice") is True
    assert consent.revoke("alice") is False
    assert data_dir.consent().get("alice") is None
    assert set(_body(postgres_url, "consent")) == {"bob"}
    assert not data_dir.consent_path.exists()


def test_two_processes_see_each_others_writes(tmp_path: Path, postgres_url: str,
                                              controls: list[SharedControl]) -> None:
    one = DataDir(tmp_path / "one", shared=_control(controls, postgres_url))
    two = DataDir(tmp_path / "two", shared=_control(controls, postgres_url))
    with one.registry() as registry:
        registry.add(_record("alice"))
    with two.registry() as registry:
        assert [r.id for r in registry.all()] == ["alice"]
        registry.add(_record("bob"))
    one.consent().grant("bob", "Bob", SCOPES)
    two.folder_states("bob").put(FolderState(folder="INBOX", last_uid=9))
    assert [r.id for r in one.registry(read_only=True).all()] == ["alice", "bob"]
    assert two.consent().require("bob").granted_by == "Bob"
    assert one.folder_states("bob", read_only=True).get("INBOX").last_uid == 9


def test_a_write_over_another_process_write_since_the_read_is_refused_and_writes_nothing(
        postgres_url: str, controls: list[SharedControl]) -> None:
    first = _control(controls, postgres_url).document("registry")
    second = _control(controls, postgres_url).document("registry")
    first.write({"mailboxes": {}})
    seen = first.read()
    assert second.read() == {"mailboxes": {}}
    second.write({"mailboxes": {"1": {"id": "bob"}}})
    with pytest.raises(DocumentChanged, match="changed by another process meanwhile; nothing was written") as caught:
        first.write({**(seen or {}), "other": {}})
    assert isinstance(caught.value, StorageError)
    assert _body(postgres_url, "registry") == {"mailboxes": {"1": {"id": "bob"}}}
    assert first.read() == {"mailboxes": {"1": {"id": "bob"}}}  # read again: the write goes through
    first.write({"mailboxes": {}})
    assert _body(postgres_url, "registry") == {"mailboxes": {}}


def test_two_first_writes_of_a_new_document_do_not_overwrite_each_other(
        postgres_url: str, controls: list[SharedControl]) -> None:
    first = _control(controls, postgres_url).document("consent")
    second = _control(controls, postgres_url).document("consent")
    assert first.read() is None and second.read() is None
    first.write({"alice": {}})
    with pytest.raises(DocumentChanged):
        second.write({"bob": {}})
    assert _body(postgres_url, "consent") == {"alice": {}}


def test_updates_from_many_threads_and_two_processes_lose_nothing(
        postgres_url: str, controls: list[SharedControl]) -> None:
    ones = [_control(controls, postgres_url), _control(controls, postgres_url)]

    def count(control: SharedControl) -> None:
        document = control.document("counter")
        for _ in range(25):
            document.update(lambda data: data.__setitem__("n", data.get("n", 0) + 1))

    threads = [threading.Thread(target=count, args=(ones[n % 2],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _body(postgres_url, "counter") == {"n": 100}


def test_a_stale_owners_state_write_is_refused_by_the_database(
        tmp_path: Path, postgres_url: str, controls: list[SharedControl]) -> None:
    owner = DataDir(tmp_path / "one", shared=_control(controls, postgres_url, TokenFence("p1", {"alice": 3})))
    with psycopg.connect(postgres_url) as db:  # the schema was made by _control
        db.execute("INSERT INTO mailbox_leases (mailbox, owner, token) VALUES ('alice', 'p1', 3), ('bob', 'p1', 1)")
    owner.folder_states("alice").put(FolderState(folder="INBOX", last_uid=10))
    stale = DataDir(tmp_path / "two", shared=_control(controls, postgres_url, TokenFence("p1", {"alice": 2})))
    states = stale.folder_states("alice")
    assert states.get("INBOX").last_uid == 10
    with pytest.raises(LeaseLost, match="alice"):
        states.put(FolderState(folder="INBOX", last_uid=99))
    with pytest.raises(LeaseLost):
        stale.remove_state("alice")
    assert owner.folder_states("alice").get("INBOX").last_uid == 10
    with pytest.raises(LeaseLost, match="no lease"):  # bob is leased, but not with a token this process got
        owner.folder_states("bob").put(FolderState(folder="INBOX"))
    assert not owner.has_state("bob")
    # The registry and consent are no one mailbox's: not fenced.
    stale.consent().grant("alice", "Alice", SCOPES)
    assert owner.consent().get("alice") is not None


def test_purge_deletes_the_state_document(tmp_path: Path, postgres_url: str, controls: list[SharedControl]) -> None:
    data_dir = DataDir(tmp_path, shared=_control(controls, postgres_url))
    with data_dir.registry() as registry:
        registry.add(_record("alice"))
        data_dir.consent().grant("alice", "Alice", SCOPES)
        data_dir.folder_states("alice").put(FolderState(folder="INBOX", last_uid=4))
        counts = remove_mailbox(data_dir, registry, "alice", purge=True)
        assert registry.all() == []
    assert counts["elements"] == 0
    assert not data_dir.has_state("alice")
    assert _body(postgres_url, "state/alice") is None
    assert data_dir.consent().get("alice") is None
    assert [e["event"] for e in data_dir.audit_log().entries()] == ["mailbox-purged"]
    assert not data_dir.audit_path.exists()


def test_audit_appends_from_two_processes_at_once_keep_one_chain(
        postgres_url: str, controls: list[SharedControl]) -> None:
    logs = [_control(controls, postgres_url).audit_log(), _control(controls, postgres_url).audit_log()]
    start = threading.Barrier(len(logs))

    def append(n: int) -> None:
        start.wait()
        for k in range(40):
            logs[n].append(AuditEvent.SYNC, mailbox=f"m{n}", fetched=k)

    threads = [threading.Thread(target=append, args=(n,)) for n in range(len(logs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = list(logs[0].entries())
    assert len(entries) == 80
    assert {e["mailbox"] for e in entries} == {"m0", "m1"}
    assert all(after["prev"] == before["hash"] for before, after in zip(entries, entries[1:]))
    check = logs[1].verify()
    assert check.ok and check.entries == 80


def test_audit_entries_are_those_of_the_file_masked_alike(
        tmp_path: Path, postgres_url: str, controls: list[SharedControl]) -> None:
    shared = DataDir(tmp_path, shared=_control(controls, postgres_url)).audit_log()
    local = AuditLog(tmp_path / "audit.jsonl")
    fields = {"mailbox": "alice", "who": "Alice <alice@example.com>", "to": ["bob@example.org", "x"],
              "detail": {"from": "carol@example.net"}, "folder": "a\u2028b"}
    in_db = shared.append(AuditEvent.CONSENT_GRANTED, **fields)
    in_file = local.append(AuditEvent.CONSENT_GRANTED, **fields)
    assert {k: v for k, v in in_db.items() if k not in ("time", "hash")} == \
           {k: v for k, v in in_file.items() if k not in ("time", "hash")}
    assert in_db["who"] == "Alice <[email]>" and in_db["to"] == ["[email]", "x"]
    assert in_db["detail"] == {"from": "[email]"}
    with psycopg.connect(postgres_url) as db:
        row = db.execute("SELECT entry FROM audit_log WHERE seq = 1").fetchone()
    assert row is not None and "@" not in row[0] and "\u2028" not in row[0]
    assert json.loads(row[0]) == in_db
    assert list(shared.entries()) == [in_db]


@pytest.mark.parametrize("tamper", ["edit", "delete", "garbage"])
def test_verify_finds_a_changed_audit_row(postgres_url: str, controls: list[SharedControl], tamper: str) -> None:
    log = _control(controls, postgres_url).audit_log()
    for n in range(4):
        log.append(AuditEvent.SYNC, mailbox="alice", fetched=n)
    assert log.verify().ok
    with psycopg.connect(postgres_url) as db:
        if tamper == "edit":
            db.execute("UPDATE audit_log SET entry = replace(entry, '\"fetched\": 2', '\"fetched\": 20') WHERE seq = 3")
        elif tamper == "delete":
            db.execute("DELETE FROM audit_log WHERE seq = 2")
        else:
            db.execute("UPDATE audit_log SET entry = 'not json' WHERE seq = 3")
    check = log.verify()
    assert not check.ok
    assert check.problem is not None and "entry" in check.problem
    assert check.entries == {"edit": 2, "delete": 1, "garbage": 2}[tamper]
    log.append(AuditEvent.SYNC, mailbox="alice", fetched=5)  # appends go on after a damaged entry
    assert not log.verify().ok


def test_without_shared_the_data_directory_keeps_its_files(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path)
    with data_dir.registry() as registry:
        registry.add(_record("alice"))
    data_dir.folder_states("alice").put(FolderState(folder="INBOX", last_uid=1))
    data_dir.consent().grant("alice", "Alice", SCOPES)
    data_dir.audit_log().append(AuditEvent.MAILBOX_ADDED, mailbox="alice")
    for path in (data_dir.registry_path, data_dir.state_path("alice"), data_dir.consent_path, data_dir.audit_path):
        assert path.is_file()
    assert data_dir.has_state("alice")
    data_dir.remove_state("alice")
    assert not data_dir.state_path("alice").exists() and not data_dir.has_state("alice")
    assert data_dir.audit_log().location == str(data_dir.audit_path)
