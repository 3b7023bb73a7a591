"""The daily download budget: a rolling 24 hours counted by the hour, and the backfill it pauses."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from futurnal.cli.output import UserError
from futurnal.storage.sync_state import FolderStateStore
from futurnal.sync.download_budget import GMAIL_DAILY_DOWNLOAD_MB, DownloadBudget
from futurnal.sync.fetch_plan import BatchLimits
from tests.unit.memory_imap import note
from tests.unit.test_folder_sync_core import Core, MemoryServer

HOUR = 3600.0


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def test_bytes_count_for_24_hours_then_leave_the_window() -> None:
    clock = Clock(1000 * HOUR + 10)
    budget = DownloadBudget(100, clock=clock)
    budget.spend(60)
    clock.at += 5 * HOUR
    budget.spend(50)
    assert budget.used() == 110 and budget.exhausted()
    # Enough leaves the window when the first hour's 60 bytes do: 24 hours after that hour began.
    assert budget.resets_at() == datetime.fromtimestamp((1000 + 24) * HOUR, tz=UTC)
    clock.at = (1000 + 24) * HOUR
    assert budget.used() == 50 and not budget.exhausted() and budget.resets_at() is None


def test_the_counts_survive_a_restart_through_the_state_file(tmp_path: Path) -> None:
    clock = Clock(2000 * HOUR)
    states = FolderStateStore(tmp_path / "state.json")
    DownloadBudget(10**6, states.downloads(), save=states.set_downloads, clock=clock).spend(1234)
    states.close()
    again = FolderStateStore(tmp_path / "state.json")
    assert DownloadBudget(10**6, again.downloads(), clock=clock).used() == 1234
    clock.at += 30 * HOUR  # a day later the old hours are dropped from the file at the next spend
    DownloadBudget(10**6, again.downloads(), save=again.set_downloads, clock=clock).spend(1)
    assert again.downloads() == {str(int(clock.at // HOUR)): 1}


def test_a_spent_budget_pauses_the_backfill_but_not_new_mail(tmp_path: Path) -> None:
    size = len(note(1))
    server = MemoryServer(list(range(1, 21)))
    clock = Clock(3000 * HOUR)
    budget = DownloadBudget(size * 8, clock=clock)  # room for two batches of four a day
    core = Core(tmp_path, server, limits=BatchLimits(max_messages=4), budget=budget)
    core.sync.run("INBOX")

    state = core.states.get("INBOX")
    assert set(core.live()) == {(7, uid) for uid in range(13, 21)}  # the newest first, then it paused
    assert (state.last_uid, state.backfill_floor) == (20, 13)
    assert budget.exhausted()

    server.messages[21] = note(21)
    server.uidnext = 22
    asked = len(server.commands)
    core.sync.run("INBOX")  # new mail still comes in (and counts); the older mail still waits
    # ... without even the sizes of the window below the floor: they cost bandwidth too.
    assert [c for c in server.commands[asked:] if c.startswith("SIZES")] == ["SIZES 21:21"]
    assert (7, 21) in core.live() and (7, 12) not in core.live()
    assert core.states.get("INBOX").backfill_floor == 13

    clock.at += 25 * HOUR  # the window has passed: another day's worth, going down
    core.sync.run("INBOX")
    assert set(core.live()) == {(7, uid) for uid in range(5, 22)}
    assert core.states.get("INBOX").backfill_floor == 5
    clock.at += 25 * HOUR
    core.sync.run("INBOX")
    assert set(core.live()) == {(7, uid) for uid in range(1, 22)}
    assert core.states.get("INBOX").backfill_floor == 0


def _prepared(tmp_path: Path, *options: str) -> Any:
    from futurnal.cli import add_mailbox
    from futurnal.cli.context import CommandContext
    from futurnal.cli.main import build_parser

    args = build_parser().parse_args(["imap", "add", "--email", "me@example.org", "--consent", *options])
    ctx = CommandContext.create(tmp_path / "data", debug=False)
    return add_mailbox.prepare(args, ctx).record


def test_gmail_gets_a_budget_below_googles_limit_and_other_servers_none(tmp_path: Path) -> None:
    assert _prepared(tmp_path, "--host", "imap.gmail.com").daily_download_mb == GMAIL_DAILY_DOWNLOAD_MB < 2500
    assert _prepared(tmp_path, "--host", "imap.example.org").daily_download_mb is None
    assert _prepared(tmp_path, "--host", "imap.example.org", "--daily-download-mb", "300").daily_download_mb == 300
    assert _prepared(tmp_path, "--host", "imap.gmail.com", "--daily-download-mb", "0").daily_download_mb is None
    with pytest.raises(UserError, match="daily-download-mb"):
        _prepared(tmp_path, "--host", "imap.example.org", "--daily-download-mb", "-1")
