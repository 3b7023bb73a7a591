"""Schedules and priorities from the command line: `imap add --schedule`, `imap schedule`, `imap status`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from futurnal.demo.dovecot import DovecotServer

from .cli import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def test_imap_add_keeps_the_schedule_and_priority_and_status_shows_them(cli: Cli, dovecot: DovecotServer) -> None:
    added = cli.add(dovecot, "--schedule", "*/5 * * * *", "--priority", "high")
    assert added.code == 0, added.err

    status = cli("imap", "status", "alice", "--json").json()
    assert status["schedule"]["schedule"] == "*/5 * * * *"
    assert status["schedule"]["priority"] == "high"
    assert status["running"] is False and status["schedule"]["next_run"] is None  # no `run`: nothing scheduled
    assert datetime.fromisoformat(cli("imap", "schedule", "alice", "--json").json()["next_run"]).minute % 5 == 0
    assert ("schedule: */5 * * * *, priority high; not running, so nothing is scheduled"
            in cli("imap", "status", "alice").out)


def test_imap_add_with_an_invalid_schedule_registers_nothing(cli: Cli, dovecot: DovecotServer) -> None:
    refused = cli.add(dovecot, "--schedule", "61 * * * *")
    assert refused.code == 2
    assert refused.err.count("\n") == 1 and "invalid cron expression '61 * * * *'" in refused.err
    assert cli("imap", "list", "--json").json() == []


def test_imap_schedule_shows_sets_and_rejects_schedules(cli: Cli, dovecot: DovecotServer) -> None:
    assert cli.add(dovecot, "--interval", "600").code == 0
    shown = cli("imap", "schedule", "alice", "--json")
    assert shown.code == 0, shown.err
    assert {k: shown.json()[k] for k in ("mailbox", "schedule", "kind", "priority")} == {
        "mailbox": "alice", "schedule": "@interval 600", "kind": "interval", "priority": "normal"}
    assert shown.json()["next_run"]  # never synced: at the start of `run`

    set_cron = cli("imap", "schedule", "alice", "0 */2 * * *", "--priority", "low")
    assert set_cron.code == 0, set_cron.err
    assert "alice: 0 */2 * * *, priority low" in set_cron.out
    cron = cli("imap", "schedule", "alice", "--json").json()
    when = datetime.fromisoformat(cron["next_run"])
    assert (cron["kind"], cron["priority"], when.minute, when.hour % 2) == ("cron", "low", 0, 0)

    # Unquoted words are joined; --priority alone keeps the schedule.
    assert cli("imap", "schedule", "alice", "@interval", "90").code == 0
    assert cli("imap", "schedule", "alice", "--priority", "high").code == 0
    assert cli("imap", "list", "--json").json()[0]["schedule"] == "@interval 90"
    assert cli("imap", "schedule", "alice", "--json").json()["priority"] == "high"
    assert cli("imap", "sync", "alice").code == 0
    after_sync = cli("imap", "schedule", "alice", "--json").json()
    next_at, last_at = (datetime.fromisoformat(after_sync[k]) for k in ("next_run", "last_sync"))
    assert (next_at - last_at).total_seconds() == 90

    for bad, reason in [("@every 5", "unknown schedule keyword '@every'"), ("@interval 0", "at least 1 second"),
                        ("* * * *", "needs 5 fields")]:
        refused = cli("imap", "schedule", "alice", bad)
        assert refused.code == 2, bad
        assert refused.err.count("\n") == 1 and reason in refused.err, refused.err
    assert cli("imap", "list", "--json").json()[0]["schedule"] == "@interval 90"

    assert cli("imap", "schedule", "alice", "@manual").code == 0
    manual = cli("imap", "schedule", "alice")
    assert "never by schedule" in manual.out
    assert cli("imap", "schedule", "alice", "--json").json()["next_run"] is None


def test_imap_schedule_of_an_unknown_mailbox_fails_with_one_line(cli: Cli) -> None:
    failed = cli("imap", "schedule", "nobody", "@manual")
    assert failed.code == 1 and failed.err.count("\n") == 1 and "no mailbox 'nobody'" in failed.err
