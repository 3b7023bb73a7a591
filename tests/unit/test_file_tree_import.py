"""Moving an old data directory's one-file-per-element tree into the database: once, and losing nothing."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from futurnal.storage.data_dir import DataDir
from futurnal.storage.lock import DataDirLock
from futurnal.storage.sqlite import open_element_reader, open_element_store

ROOT = Path(__file__).resolve().parents[2]


def _old_tree(data_dir: DataDir, count: int) -> None:
    """Elements laid out as the old store wrote them: <mailbox>/<folder>/<uidvalidity>/<uid>.json."""
    folder = data_dir.legacy_elements_root / "alice" / "INBOX" / "7"
    folder.mkdir(parents=True)
    for uid in range(1, count + 1):
        element = {"id": f"{uid:032x}", "mailbox": "alice", "folder": "INBOX", "uidvalidity": 7, "uid": uid,
                   "subject": f"message {uid}", "text": "body", "from": [], "attachments": [], "deleted": False}
        (folder / f"{uid:010d}.json").write_text(json.dumps(element))


def _stored(path: Path) -> int:
    try:
        with sqlite3.connect(path, timeout=10) as db:
            return int(db.execute("SELECT count(*) FROM elements").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_an_import_killed_half_way_resumes_and_moves_every_element_exactly_once(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path)
    _old_tree(data_dir, 20_000)
    code = ("import sys; from futurnal.storage.data_dir import DataDir; "
            "from futurnal.storage.sqlite import open_element_store; "
            "open_element_store(DataDir(__import__('pathlib').Path(sys.argv[1]))).close()")
    importer = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while _stored(data_dir.element_db_path) == 0:  # the first batch committed
            assert importer.poll() is None and time.monotonic() < deadline, "the import never committed"
            time.sleep(0.005)
    finally:
        importer.send_signal(signal.SIGKILL)
        importer.wait(timeout=30)
    committed = _stored(data_dir.element_db_path)
    assert 0 < committed < 20_000  # killed half-way: some moved, some not
    left = sum(1 for _ in data_dir.legacy_elements_root.rglob("*.json"))
    assert left >= 20_000 - committed  # no file went before its element was committed

    reports: list[str] = []
    store = open_element_store(data_dir, report=reports.append)
    try:
        assert store.count() == 20_000
        assert sorted(e["uid"] for e in store.iter_elements()) == list(range(1, 20_001))
        assert [c.op for c in store.changes()] == ["upsert"] * 20_000  # no element twice in the feed
    finally:
        store.close()
    assert not data_dir.legacy_elements_root.exists()
    assert reports == [
        f"importing the old file tree {data_dir.legacy_elements_root} into {data_dir.element_db_path} (done once)",
        f"moved {left} element(s) from the old file tree {data_dir.legacy_elements_root} into "
        f"{data_dir.element_db_path}"]


def test_files_that_cannot_be_read_are_kept_aside_and_the_rest_moved(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path)
    _old_tree(data_dir, 3)
    broken = data_dir.legacy_elements_root / "alice" / "INBOX" / "7" / "0000000009.json"
    broken.write_text("{half an elem")
    reports: list[str] = []
    steps: list[tuple[int, int]] = []
    open_element_store(data_dir, report=reports.append, progress=lambda done, total: steps.append((done, total))).close()
    assert steps[0] == (0, 4) and steps[-1] == (4, 4)  # every file counted, the unreadable one too
    kept = tmp_path / "elements.unreadable" / "alice" / "INBOX" / "7" / "0000000009.json"
    assert kept.read_text() == "{half an elem" and not data_dir.legacy_elements_root.exists()
    assert "moved 3 element(s)" in reports[-1] and "1 file(s) that could not be read" in reports[-1]
    open_element_store(data_dir, report=reports.append).close()
    assert len(reports) == 2  # done once: nothing is tried again


def test_a_reader_imports_only_when_no_process_owns_the_directory(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path)
    _old_tree(data_dir, 2)
    with DataDirLock(tmp_path):  # a running process: it imports at its own start, not a reader
        with open_element_reader(data_dir) as reader:
            assert reader.count() == 0
    assert data_dir.legacy_elements_root.exists()
    with open_element_reader(data_dir, report=lambda line: None) as reader:
        assert reader.count() == 2
    assert not data_dir.legacy_elements_root.exists()
