"""`imap status` shows each folder's freshness and how it is watched, from a running system's state."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from futurnal.cli.main import main
from futurnal.config import load_settings
from futurnal.demo.dovecot import DovecotServer
from futurnal.storage.clock import utc_iso, utc_now
from futurnal.storage.sync_state import FolderState, FolderStateStore

from .sync_harness import ServerClient
from .test_watchers import Watched, wait_for


def status(data_dir: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    capsys.readouterr()
    assert main(["--data-dir", str(data_dir), "imap", "status", "alice", *extra]) == 0
    return capsys.readouterr().out


def test_status_shows_the_last_server_event_and_which_folders_the_budget_leaves_unwatched(
    dovecot: DovecotServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "config.toml").write_text("[network]\nmax_connections_per_mailbox = 2\n[watch]\nnotify = false\n")
    # Without NOTIFY, INBOX takes the one connection the fetcher leaves; Sent is over the budget.
    watched = Watched(tmp_path, dovecot.imap_port, load_settings(data / "config.toml"), watch=("INBOX", "Sent"),
                      folders=("INBOX", "Sent"))
    other = ServerClient(dovecot)
    try:
        wait_for(lambda: bool(watched.watch_events("connected")), what="the watcher to connect")
        before = utc_now()
        other.append(1, tag="live")
        wait_for(lambda: len(watched.stored()) == 1, what="IDLE to deliver the message")
        wait_for(lambda: (inbox(watched).last_server_event or "") >= before, what="the server event to be recorded")
        running = watched.system.status("alice")[0]  # what a running process reports (`ctl status`)
    finally:
        other.close()
        watched.system.stop()

    folders = {f["folder"]: f for f in running["folders"]}
    assert running["running"] is True and running["schedule"]["next_run"]
    assert folders["INBOX"]["watch"] == "watching by IDLE"
    assert folders["Sent"]["watch"] == "polling (over connection budget)"

    # Stopped: the status tells what was found, and that nothing watches the folders now.
    folders = {f["folder"]: f for f in json.loads(status(data, capsys, "--json"))["folders"]}
    assert folders["INBOX"]["watch"] == folders["Sent"]["watch"] == "not running"
    assert folders["INBOX"]["watch_mode"] == "idle"
    assert folders["INBOX"]["last_server_event"] >= before
    assert folders["INBOX"]["stale"] is False
    assert folders["Sent"]["stale"] is True  # never synced

    text = status(data, capsys)
    assert "LAST SERVER EVENT" in text and "not running" in text and "watching by" not in text
    assert "stale (never synced)" in text and "fresh (" in text


def test_status_flags_a_folder_stale_past_the_configured_threshold(
    dovecot: DovecotServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    watched = Watched(tmp_path, dovecot.imap_port, load_settings(tmp_path / "none.toml"))
    try:
        wait_for(lambda: inbox(watched).last_success is not None, what="the catch-up sync")
    finally:
        watched.system.stop()
    # Half an hour since the last success: fresh under the default hour, stale under a minute.
    states = FolderStateStore(watched.data_dir.state_path("alice"))
    half_an_hour_ago = utc_iso(datetime.now(UTC) - timedelta(minutes=30))
    states.put(states.get("INBOX").with_changes(last_success=half_an_hour_ago))
    states.close()
    data = watched.data_dir.root
    assert json.loads(status(data, capsys, "--json"))["folders"][0]["stale"] is False
    monkeypatch.setenv("FUTURNAL_WATCH_STALE_AFTER_SECONDS", "60")
    shown = json.loads(status(data, capsys, "--json"))["folders"][0]
    assert shown["stale"] is True and shown["freshness"] == "stale (30 min ago)"


def inbox(watched: Watched) -> FolderState:
    states = FolderStateStore(watched.data_dir.state_path("alice"), read_only=True)
    try:
        return states.get("INBOX")
    finally:
        states.close()
