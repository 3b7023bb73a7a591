"""The data directory: one absolute path, private to the user, and no temp files left by crashes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from futurnal.cli.main import main
from futurnal.storage.atomic import _TEMP_NAME, atomic_write_bytes
from futurnal.storage.attachment_queue import AttachmentJob, AttachmentJobQueue, ExtractionItem
from futurnal.storage.audit_log import AuditLog
from futurnal.storage.blob_store import BlobStore
from futurnal.storage.consent import ConsentRegistry
from futurnal.storage.data_dir import DataDir
from futurnal.storage.element_store import ElementKey
from futurnal.storage.gmail_index import GmailMessageIndex
from futurnal.storage.lock import DataDirLock
from futurnal.storage.quarantine import QuarantineStore
from futurnal.storage.sqlite import open_element_store
from futurnal.storage.sync_state import FolderState, FolderStateStore


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most users have, under which a bare ``mkdir`` makes 0755 directories."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_relative_data_dir_becomes_absolute_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    layout = DataDir(Path("data"))
    monkeypatch.chdir("/")  # an extraction server's working directory
    assert layout.root == tmp_path / "data"
    assert layout.state_path("alice") == tmp_path / "data" / "state" / "alice.json"


def test_an_existing_data_dir_open_to_others_is_tightened_by_a_cli_command(
    tmp_path: Path, usual_umask: None, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "state").mkdir(mode=0o755)  # made by a copy under a usual umask, say
    (data / "blobs" / "objects").mkdir(mode=0o750, parents=True)
    (data / "state" / "alice.json").write_text("{}")
    assert main(["--data-dir", str(data), "quarantine", "retry", "--all"]) == 0
    assert {str(p.relative_to(data)): oct(p.stat().st_mode & 0o777) for p in [data, *data.rglob("*")] if p.is_dir()} \
        == {".": "0o700", "state": "0o700", "blobs": "0o700", "blobs/objects": "0o700"}
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings == [  # on the user's terminal, each names its directory
        f"futurnal-actors: warning: data directory {data} was open to other users (mode 0755); made it 0700",
        f"futurnal-actors: warning: directory {data / 'blobs'} was open to other users (mode 0755); made it 0700",
        f"futurnal-actors: warning: directory {data / 'blobs' / 'objects'} was open to other users (mode 0750); "
        "made it 0700",
        f"futurnal-actors: warning: directory {data / 'state'} was open to other users (mode 0755); made it 0700",
    ]
    assert main(["--data-dir", str(data), "quarantine", "retry", "--all"]) == 0
    assert "warning" not in capsys.readouterr().err  # once private, nothing more to say


def test_a_directory_of_another_user_open_to_others_is_named_with_its_fix(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data").ensure()
    shared = data.root / "attachment-queue"
    shared.mkdir(mode=0o700)
    if os.getuid() != 0:
        pytest.skip("only root can give a directory to another user")
    os.chown(shared, 65534, -1)
    shared.chmod(0o755)
    assert data.make_private() == [f"directory {shared} is open to other users (mode 0755) and is not yours to "
                                   f"change: chmod 700 {shared}"]
    assert shared.stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize("command", [["imap", "list"], ["quarantine", "retry", "--all"], ["elements", "export"],
                                     ["top", "--once"], ["console"], ["run"]])
def test_a_data_dir_that_is_a_file_is_one_error_saying_so(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.write_text("not a directory")
    assert main(["--data-dir", str(data), *command]) == 1
    assert capsys.readouterr().err == (f"futurnal-actors: error: data directory {data} is a file: move it away, or "
                                       "choose another one (--data-dir)\n")
    assert main(["--data-dir", str(data / "sub"), *command]) == 1
    assert capsys.readouterr().err == (f"futurnal-actors: error: data directory {data / 'sub'} cannot be made: {data} "
                                       "is a file; choose another one (--data-dir)\n")
    assert data.read_text() == "not a directory"


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory this process cannot write in, and why: its mode, or (for root, whom modes do not
    stop) a read-only file system."""
    path = tmp_path / "read-only"
    path.mkdir(mode=0o700)
    if os.getuid() != 0:
        path.chmod(0o500)
        yield path, f"read-only (mode 0500): chmod 700 {path}"
        path.chmod(0o700)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k,mode=0700", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"root, and no read-only tmpfs can be mounted here: {mounted.stderr.strip()}")
    try:
        yield path, "on a read-only file system: mount it read-write"
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.mark.parametrize("command", [["imap", "list"], ["quarantine", "retry", "--all"], ["elements", "export"]])
def test_a_read_only_data_dir_is_one_error_saying_so(
    read_only_dir: tuple[Path, str], command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, why = read_only_dir
    assert main(["--data-dir", str(path), *command]) == 1
    assert capsys.readouterr().err == (f"futurnal-actors: error: data directory {path} is {why}, or choose "
                                       "another one (--data-dir)\n")
    assert main(["--data-dir", str(path / "sub"), *command]) == 1
    why_not_made = why.split(":")[0]
    assert capsys.readouterr().err == (f"futurnal-actors: error: data directory {path / 'sub'} cannot be made: "
                                       f"{path} is {why_not_made}; choose another one (--data-dir)\n")


def test_every_directory_the_stores_create_is_private(tmp_path: Path, usual_umask: None) -> None:
    layout = DataDir(tmp_path / "new" / "data").ensure()
    key = ElementKey("alice", "INBOX", 1, 1)
    with DataDirLock(layout.root):
        FolderStateStore(layout.state_path("alice")).put(FolderState(folder="INBOX"))
        GmailMessageIndex(layout.gmail_index_root("alice")).claim("123", key)
        QuarantineStore(layout.quarantine_root).add(mailbox="alice", folder="INBOX", uidvalidity=1, uid=1,
                                                    reason="test", raw=b"x", now="")
        BlobStore(layout.blobs_root).put("alice", b"attachment")
        AttachmentJobQueue(layout.attachment_queue_root).put(
            AttachmentJob(key, "0" * 32, (ExtractionItem(0, "0" * 64, "text"),)), [b"attachment"])
        AuditLog(layout.audit_path).append("test")
        ConsentRegistry(layout.consent_path).grant("alice", "test", ("metadata",))
        store = open_element_store(layout)
        store.upsert_many([{"id": "e1", "mailbox": "alice", "folder": "INBOX", "uidvalidity": 1, "uid": 1}])
        directories = [layout.root.parent, layout.root, *(p for p in layout.root.rglob("*") if p.is_dir())]
        files = [p for p in layout.root.rglob("*") if p.is_file()]  # the store's WAL too, while it is open
        store.close()
    assert len(directories) > 10 and layout.root / "elements.sqlite-wal" in files
    assert {str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777) for p in directories
            if p.stat().st_mode & 0o777 != 0o700} == {}
    assert {str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777) for p in files if p.exists()
            if p.stat().st_mode & 0o777 != 0o600} == {}


def _temp_name(target: str, pid: int) -> str:
    """How ``atomic_write_bytes`` names its temp files."""
    return f".{target}.{pid}.{pid}.0.tmp"


def test_temp_files_left_by_killed_writers_are_removed_when_the_lock_is_taken(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data").ensure().root
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid, live_pid = int(gone.stdout), os.getpid()
    (data / "state").mkdir()
    (data / "blobs" / "objects" / "ab").mkdir(parents=True)
    stale = [data / "state" / _temp_name("alice.json", dead_pid),  # its writer is gone
             data / "blobs" / "objects" / "ab" / _temp_name("ab" * 32, dead_pid),
             data / _temp_name("mailboxes.json", live_pid)]  # its writer runs, but it is two minutes old
    kept = [data / "state" / _temp_name("bob.json", live_pid),  # a write in progress
            data / "state" / ".notes.tmp", data / "state" / "alice.json.tmp",  # not names the service makes
            data / "state" / "alice.json"]
    for path in stale + kept:
        path.write_bytes(b"partial")
    two_minutes_ago = time.time() - 120
    os.utime(stale[2], (two_minutes_ago, two_minutes_ago))

    assert main(["--data-dir", str(data), "quarantine", "retry", "--all"]) == 0  # takes the lock
    assert [p.name for p in stale if p.exists()] == []
    assert [p.name for p in kept if not p.exists()] == []


def test_temp_files_are_left_alone_while_another_process_owns_the_data_dir(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data").ensure().root
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = data / _temp_name("mailboxes.json", int(gone.stdout))
    with DataDirLock(data):
        stale.write_bytes(b"partial")
        with pytest.raises(Exception, match="in use by another futurnal-actors process"):
            DataDirLock(data).acquire()
        assert stale.exists()


def test_an_atomic_write_names_its_temp_file_as_the_sweep_expects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (seen.append(os.path.basename(src)), real_replace(src, dst)))
    atomic_write_bytes(tmp_path / "alice.json", b"{}")
    assert len(seen) == 1 and _TEMP_NAME.fullmatch(seen[0])
