"""imap status and imap sync over one MAILBOX or --all (every registered mailbox), without a
process running: a status says "not running" rather than what a process would do, --all reports
each mailbox and goes on past one that fails, and a schedule polling too often is warned about."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from futurnal.cli.main import main
from futurnal.config import ServiceSettings
from futurnal.mailboxes.status import mailbox_status
from futurnal.storage.data_dir import DataDir
from futurnal.storage.registry import MailboxRecord, MailboxRegistry
from futurnal.storage.sync_state import FolderState, FolderStateStore


@pytest.fixture
def data(tmp_path: Path) -> DataDir:
    """Mailboxes alice (synced once, watching INBOX) and bob (never synced)."""
    layout = DataDir(tmp_path / "data").ensure()
    with MailboxRegistry(layout.registry_path) as registry:
        for name in ("alice", "bob"):
            registry.add(MailboxRecord(id=name, email=f"{name}@example.org", host="imap.example.org", port=993,
                                       username=name, folders=("INBOX",), watch=("INBOX",)))
    states = FolderStateStore(layout.state_path("alice"))
    states.put(FolderState(folder="INBOX", uidvalidity=7, last_uid=3, messages=3, watch_mode="idle",
                           last_success="2026-03-03T00:00:00Z"))
    states.close()
    return layout


def test_status_without_a_process_says_not_running_instead_of_what_it_would_do(
    data: DataDir, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data-dir", str(data.root), "imap", "status", "alice"]) == 0
    out = capsys.readouterr().out
    assert "schedule: @interval 300, priority normal; not running, so nothing is scheduled\n" in out
    assert "watching by IDLE" not in out and "next run" not in out
    assert [line.split()[:3] for line in out.splitlines() if line.startswith("INBOX ")][-1] == ["INBOX", "not", "running"]
    assert main(["--data-dir", str(data.root), "imap", "status", "alice", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["running"] is False and shown["schedule"]["next_run"] is None
    assert [f["watch"] for f in shown["folders"]] == ["not running"]
    assert shown["folders"][0]["watch_mode"] == "idle"  # what its watcher last found is still told


def test_status_of_a_running_mailbox_says_how_it_is_watched_and_when_it_syncs_next(data: DataDir) -> None:
    record = MailboxRegistry(data.registry_path, read_only=True).get("alice")
    shown = mailbox_status(data, record, ServiceSettings(), running=True)
    assert shown["running"] is True and shown["schedule"]["next_run"]
    assert [f["watch"] for f in shown["folders"]] == ["watching by IDLE"]


def test_status_all_shows_every_mailbox_and_as_json_one_document(data: DataDir,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(data.root), "imap", "status", "--all"]) == 0
    out = capsys.readouterr().out
    assert "alice <alice@example.org> at imap.example.org:993" in out
    assert "\n\nbob <bob@example.org> at imap.example.org:993" in out
    assert main(["--data-dir", str(data.root), "imap", "status", "--all", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["ok"] is True
    assert [doc["mailbox"]["id"] for doc in shown["mailboxes"]] == ["alice", "bob"]


def test_status_all_reports_a_mailbox_it_cannot_read_and_goes_on(data: DataDir,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data.state_path("alice").write_text("{not json")
    assert main(["--data-dir", str(data.root), "imap", "status", "--all", "--json"]) == 1
    captured = capsys.readouterr()
    shown = json.loads(captured.out)
    assert shown["ok"] is False
    assert [(doc["mailbox"]["id"], "error" in doc) for doc in shown["mailboxes"]] == [("alice", True), ("bob", False)]
    assert captured.err.startswith("futurnal-actors: error: alice: ")


def test_sync_all_without_consent_fails_each_mailbox_in_one_document(data: DataDir,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(data.root), "imap", "sync", "--all", "--json"]) == 1
    captured = capsys.readouterr()
    shown = json.loads(captured.out)
    assert shown["ok"] is False
    assert [(r["mailbox"], r["ok"], r["errors"][0]["folder"]) for r in shown["mailboxes"]] == [
        ("alice", False, None), ("bob", False, None)]
    assert "consent" in shown["mailboxes"][0]["errors"][0]["error"]
    assert [line.split(":")[2] for line in captured.err.splitlines()] == [" alice", " bob"]
    assert main(["--data-dir", str(data.root), "imap", "sync", "--all"]) == 1
    assert capsys.readouterr().out == "0 of 2 mailbox(es) synced, 2 failed\n"


@pytest.mark.parametrize(("argv", "said"), [
    (["imap", "sync"], "name a MAILBOX, or give --all for every registered mailbox"),
    (["imap", "status", "alice", "--all"], "give a MAILBOX or --all, not both"),
    (["imap", "sync", "--all", "--folder", "INBOX"], "--folder names folders of one mailbox"),
])
def test_a_mailbox_and_all_are_one_or_the_other(data: DataDir, capsys: pytest.CaptureFixture[str], argv: list[str],
                                                said: str) -> None:
    assert main(["--data-dir", str(data.root), *argv]) == 2
    assert said in capsys.readouterr().err


def test_all_with_no_mailbox_registered_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(tmp_path / "data"), "imap", "sync", "--all", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "mailboxes": []}
    assert main(["--data-dir", str(tmp_path / "data"), "imap", "status", "--all"]) == 0
    assert capsys.readouterr().out.startswith("no mailboxes registered")


def test_a_schedule_syncing_more_often_than_every_30_s_is_kept_with_a_warning_saying_why(
    data: DataDir, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data-dir", str(data.root), "imap", "schedule", "alice", "@interval", "1"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ("futurnal-actors: warning: '@interval 1' syncs every 1 s: each scheduled sync logs in and "
                            "looks at every folder, and a server may throttle or lock an account polled more often "
                            "than every 30 s; the folders it watches (--watch) get new mail within seconds without it\n")
    assert "alice: @interval 1, priority normal" in captured.out
    assert main(["--data-dir", str(data.root), "imap", "schedule", "alice", "@interval", "30"]) == 0
    assert capsys.readouterr().err == ""
