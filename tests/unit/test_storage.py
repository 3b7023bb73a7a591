from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from futurnal.storage.atomic import AtomicJSONStorage, atomic_write_bytes
from futurnal.storage.errors import CorruptStateFile, DataDirLocked
from futurnal.storage.lock import DataDirLock
from futurnal.storage.registry import (
    MailboxRecord,
    MailboxRegistry,
    UnknownMailbox,
    default_mailbox_id,
    validate_mailbox_id,
)
from futurnal.storage.sync_state import FolderState, FolderStateStore


def _record(mailbox_id: str = "alice", email: str = "alice@example.org") -> MailboxRecord:
    return MailboxRecord(id=mailbox_id, email=email, host="imap.example.org", port=993, username=email)


def test_atomic_write_leaves_no_temp_files_and_private_permissions(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "file.json"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["file.json"]
    assert target.stat().st_mode & 0o777 == 0o600


def test_a_temp_file_left_by_a_crashed_process_with_the_same_pid_is_stepped_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import itertools
    import os
    import threading

    from futurnal.storage import atomic

    monkeypatch.setattr(atomic, "_temp_numbers", itertools.count())
    stale = tmp_path / f".file.json.{os.getpid()}.{threading.get_native_id()}.0.tmp"
    stale.write_bytes(b"left by a crash")
    atomic_write_bytes(tmp_path / "file.json", b"new")
    assert (tmp_path / "file.json").read_bytes() == b"new"
    assert stale.read_bytes() == b"left by a crash"


def test_a_bare_file_name_is_written_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.chdir(tmp_path)  # `--data-dir .` turns into bare names like this one
    renamed: list[str] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (renamed.append(str(src)), real_replace(src, dst)))
    atomic_write_bytes(Path("state.json"), b"here", make_parent=False)
    assert (tmp_path / "state.json").read_bytes() == b"here"
    assert [os.path.dirname(os.path.abspath(src)) for src in renamed] == [str(tmp_path)]  # not "/" (root could)


def test_failed_write_keeps_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    atomic_write_bytes(target, b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(target, object())  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_registry_survives_reopen_and_finds_by_id_or_email(tmp_path: Path) -> None:
    registry = MailboxRegistry(tmp_path / "mailboxes.json")
    registry.add(_record())
    registry.close()
    reopened = MailboxRegistry(tmp_path / "mailboxes.json", read_only=True)
    assert reopened.get("alice").email == "alice@example.org"
    assert reopened.get("Alice@Example.org").id == "alice"
    with pytest.raises(UnknownMailbox):
        reopened.get("bob")


def test_registry_refuses_duplicates(tmp_path: Path) -> None:
    registry = MailboxRegistry(tmp_path / "mailboxes.json")
    registry.add(_record())
    with pytest.raises(ValueError) as same:
        registry.add(_record())
    assert str(same.value) == "alice@example.org is already registered as alice; an address is registered once"
    for other_id in ("other", "alice2"):  # a new id does not make the same address another mailbox
        with pytest.raises(ValueError) as again:
            registry.add(_record(other_id, "Alice@Example.org"))
        assert str(again.value) == "Alice@Example.org is already registered as alice; an address is registered once"
    with pytest.raises(ValueError) as taken_id:
        registry.add(_record(email="bob@example.org"))
    assert str(taken_id.value) == "a mailbox with id 'alice' is already registered; use --id to choose another"
    registry.add(_record("bob", "bob@example.org"))  # what --id is for
    assert [r.id for r in registry.all()] == ["alice", "bob"]


def test_corrupt_state_file_is_reported_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "mailboxes.json"
    path.write_bytes(b'{"mailboxes": {"1": ')
    with pytest.raises(CorruptStateFile, match="mailboxes.json"):
        MailboxRegistry(path).all()
    assert path.read_bytes() == b'{"mailboxes": {"1": '


def test_read_only_storage_refuses_writes(tmp_path: Path) -> None:
    storage = AtomicJSONStorage(tmp_path / "x.json", read_only=True)
    with pytest.raises(PermissionError):
        storage.write({})


def test_folder_state_round_trips(tmp_path: Path) -> None:
    store = FolderStateStore(tmp_path / "state.json")
    assert store.get("INBOX") == FolderState(folder="INBOX")
    store.put(FolderState(folder="INBOX", uidvalidity=7, last_uid=42, uidnext=43))
    store.close()
    again = FolderStateStore(tmp_path / "state.json")
    assert again.get("INBOX").last_uid == 42
    assert [s.folder for s in again.all()] == ["INBOX"]


def test_default_mailbox_ids_are_path_safe() -> None:
    assert default_mailbox_id("Alice.Smith@Example.com") == "alice.smith-example.com"
    assert "/" not in default_mailbox_id("../../x@y.z")
    assert not default_mailbox_id("../../x@y.z").startswith(".")


def test_a_second_process_cannot_take_the_data_dir_lock(tmp_path: Path) -> None:
    lock = DataDirLock(tmp_path)
    lock.acquire()
    try:
        code = (
            "import sys; from pathlib import Path; from futurnal.storage.lock import DataDirLock\n"
            "from futurnal.storage.errors import DataDirLocked\n"
            f"try:\n    DataDirLock(Path({str(tmp_path)!r})).acquire()\nexcept DataDirLocked as e:\n"
            "    print(e); sys.exit(3)\n"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
        assert done.returncode == 3
        assert f"pid {os.getpid()}" in done.stdout
    finally:
        lock.release()
    DataDirLock(tmp_path).acquire()  # free again once released


def test_lock_is_exclusive_within_a_process_too(tmp_path: Path) -> None:
    with DataDirLock(tmp_path):
        with pytest.raises(DataDirLocked):
            DataDirLock(tmp_path).acquire()


@pytest.mark.parametrize("mailbox_id", ["nl\n", "a\n", "ok\nmore", "UPPER", ".hidden", "a/b", "x" * 65, ""])
def test_mailbox_ids_are_matched_whole(mailbox_id: str) -> None:
    with pytest.raises(ValueError, match="invalid mailbox id"):
        validate_mailbox_id(mailbox_id)


def test_the_registry_refuses_a_record_with_a_field_of_the_wrong_type(tmp_path: Path) -> None:
    registry = MailboxRegistry(tmp_path / "mailboxes.json")
    for bad, field in (({"port": "abc"}, "port"), ({"port": 70000}, "port"), ({"id": "nl\n"}, "mailbox id"),
                       ({"watch": ("",)}, "watch"), ({"sync_interval_seconds": 0}, "sync_interval_seconds"),
                       ({"host": None}, "host")):
        with pytest.raises(ValueError, match=field):
            registry.add(_record().with_changes(**bad))
    with pytest.raises(ValueError, match="folders must be a list"):
        MailboxRecord.from_document({**_record().to_document(), "folders": "INBOX"})
    assert not (tmp_path / "mailboxes.json").exists()


@pytest.mark.parametrize("content", [
    b"", b"  \n", b'{"folders": []}', b'{"folders": {"1": "INBOX"}}', b'{"folders": {"one": {"folder": "INBOX"}}}',
    b'{"folders": {"1": {"folder": "INBOX", "last_uid": "42"}}}', b'{"folders": {"1": {"folder": 7}}}',
    b'{"folders": {"1": {"folder": "INBOX", "extensions": "CONDSTORE"}}}',
])
def test_an_empty_or_wrongly_typed_state_file_is_reported_and_left_untouched(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "state" / "alice.json"
    path.parent.mkdir()
    path.write_bytes(content)
    store = FolderStateStore(path)
    with pytest.raises(CorruptStateFile, match="alice.json is corrupt"):
        store.all()
    with pytest.raises(CorruptStateFile, match="alice.json is corrupt"):
        store.get("INBOX")
        store.put(FolderState(folder="INBOX", last_uid=1))
    assert path.read_bytes() == content


def test_imap_status_names_an_empty_state_file_and_leaves_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from futurnal.cli.main import main
    from futurnal.storage.data_dir import DataDir

    layout = DataDir(tmp_path / "data").ensure()
    with MailboxRegistry(layout.registry_path) as registry:
        registry.add(_record())
    state = layout.state_path("alice")
    state.parent.mkdir()
    state.write_bytes(b"")
    assert main(["--data-dir", str(layout.root), "imap", "status", "alice"]) == 1
    err = capsys.readouterr().err
    assert f"error: state file {state} is corrupt (the file is empty); it was left untouched" in err
    assert state.read_bytes() == b""
