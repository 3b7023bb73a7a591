"""A mailbox's daily download budget changed after `imap add`: `imap budget`, with and without `run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from futurnal.demo.dovecot import DovecotServer

from .cli import Cli
from .running_process import RunningProcess


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def test_imap_budget_shows_sets_and_refuses_budgets_without_run(cli: Cli, dovecot: DovecotServer) -> None:
    assert cli.add(dovecot, "--daily-download-mb", "5").code == 0
    shown = cli("imap", "budget", "alice")
    assert shown.code == 0, shown.err
    assert shown.out == "alice: 5 MB a day; 0 MB downloaded in the last 24 hours\n"
    assert cli("imap", "budget", "alice", "--json").json() == {
        "mailbox": "alice", "daily_download_mb": 5,
        "download_budget": {"limit_mb": 5, "used_mb": 0, "exhausted": False, "resets_at": None}}

    changed = cli("imap", "budget", "alice@example.org", "1", "--json")  # by address too
    assert changed.code == 0, changed.err
    assert changed.json()["daily_download_mb"] == 1
    assert cli("imap", "status", "alice", "--json").json()["download_budget"]["limit_mb"] == 1
    assert cli("imap", "list", "--json").json()[0]["daily_download_mb"] == 1

    for bad in ("-1", "1.5", "abc", "", "1e3"):
        refused = cli("imap", "budget", "alice", bad)
        assert refused.code == 2, (bad, refused.err)
        assert refused.err.count("\n") == 1 and "MB must be a whole number of megabytes" in refused.err, refused.err
    assert cli("imap", "list", "--json").json()[0]["daily_download_mb"] == 1

    removed = cli("imap", "budget", "alice", "0")
    assert removed.code == 0, removed.err
    assert "alice: no daily download budget" in removed.out
    assert cli("imap", "status", "alice", "--json").json()["download_budget"] is None
    assert cli("imap", "list", "--json").json()[0]["daily_download_mb"] is None

    unknown = cli("imap", "budget", "nobody", "5")
    assert unknown.code == 1 and unknown.err.count("\n") == 1 and "no mailbox 'nobody'" in unknown.err


def _big_messages(server: DovecotServer, count: int) -> None:
    body = ("x" * 76 + "\r\n") * 1300  # about 100 kB a message: 30 of them are 3 MB
    for uid in range(1, count + 1):
        server.deliver("alice", (
            f"From: a@example.net\r\nTo: alice@example.org\r\nSubject: big {uid}\r\n"
            f"Message-ID: <big-{uid}@example.net>\r\n\r\n{body}"
        ).encode())


def test_imap_budget_while_running_takes_effect_at_once(cli: Cli, dovecot_factory: Any) -> None:
    server = dovecot_factory()
    _big_messages(server, 30)
    server.start()
    cli.data_dir.mkdir(parents=True)
    (cli.data_dir / "config.toml").write_text("[sync]\nbatch_messages = 2\n")
    # No budget, no watching, schedule manual: every sync here is one the test asks for.
    assert cli.add(server, "--watch", "", "--schedule", "@manual").code == 0
    running = RunningProcess(cli)
    try:
        set_one = cli("imap", "budget", "alice", "1")  # the data dir is `run`'s: this asks it
        assert set_one.code == 0, set_one.err
        assert "alice: 1 MB a day" in set_one.out
        status = cli("imap", "status", "alice", "--json").json()
        assert status["running"] is True and status["download_budget"]["limit_mb"] == 1, status
        assert status["mailbox"]["daily_download_mb"] == 1

        # The restarted fetcher counts against the new budget: the backfill stops after about a megabyte.
        first = cli("imap", "sync", "alice")
        assert first.code == 0, first.err
        assert "waits for the daily download budget until" in first.out, first.out
        stored = {e["uid"] for e in cli("elements", "export").lines()}
        assert 8 <= len(stored) <= 14 and max(stored) == 30, stored
        shown = cli("imap", "budget", "alice")
        assert shown.code == 0 and "used up: older mail waits until" in shown.out, shown.out

        # No budget any more: the next sync through the same process fetches the rest.
        assert cli("imap", "budget", "alice", "0").code == 0
        assert cli("imap", "status", "alice", "--json").json()["download_budget"] is None
        rest = cli("imap", "sync", "alice")
        assert rest.code == 0, rest.err
        assert sorted(e["uid"] for e in cli("elements", "export").lines()) == list(range(1, 31))
        assert "root/alice" in {node["id"] for node in cli("ctl", "actors", "--json").json()["tree"]}
    finally:
        code, err = running.finish()
    assert code == 0, err
    assert cli("imap", "list", "--json").json()[0]["daily_download_mb"] is None
