"""``top``: its messages-per-second figure, from progress events (an injected clock), and its frame,
which fits the terminal it is given."""

from __future__ import annotations

import collections
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from futurnal.cli.top_command import RateMeter, _frame


def test_the_rate_counts_new_messages_within_the_window_only() -> None:
    rates = RateMeter(window=10)
    rates.progress("alice", "INBOX", 100, now=0)
    rates.progress("alice", "INBOX", 300, now=5)
    rates.progress("alice", "Archive", 50, now=6)
    assert rates.rate("alice", now=9) == 35.0  # (100 + 200 + 50) / 10 s
    assert rates.rate("alice", now=12) == 25.0  # the first sample left the window
    assert rates.rate("bob", now=12) == 0.0


def test_a_new_sync_run_counts_its_folders_from_zero_again() -> None:
    rates = RateMeter(window=10)
    rates.progress("alice", "INBOX", 400, now=0)
    rates.started("alice")
    rates.progress("alice", "INBOX", 20, now=1)
    assert rates.rate("alice", now=2) == 42.0  # 400 + 20, not 400 and then nothing until 400 again


def _status(mailboxes: int, folders: int) -> dict[str, Any]:
    return {
        "mailboxes": [{
            "mailbox": {"id": f"mailbox-{m}.example.org"},
            "live": {"state": "syncing" if m == 0 else "idle", "inbox": m},
            "folders": [{"folder": "INBOX" if f == 0 else f"Archive/{2020 + f}", "messages": 12345, "stored": 12000,
                         "last_success": "2026-12-04T08:12:03Z", "freshness": "fresh (12 min ago)"}
                        for f in range(folders)],
        } for m in range(mailboxes)],
        "queues": {"sink": 2},
        "summary": {"mailboxes": mailboxes, "connected": mailboxes, "waiting_to_connect": 0, "syncing": 1,
                    "idle": mailboxes - 1, "connections_open": mailboxes, "logins_waiting": 0},
    }


def _tree(mailboxes: int) -> list[dict[str, Any]]:
    def node(name: str, *children: dict[str, Any], restarts: int = 0) -> dict[str, Any]:
        return {"id": name, "state": "running", "restarts": restarts, "inbox": 0, "children": list(children)}

    return [node("root/sink"), *(node(f"root/m{m}", node(f"supervisor/m{m}", node(f"fetcher/m{m}", restarts=m),
                                                           node(f"mailbox/m{m}"))) for m in range(mailboxes)),
            node("root/scheduler")]


def _render(frame: Any, width: int, height: int) -> list[str]:
    console = Console(width=width, height=height, color_system=None, force_terminal=False)
    with console.capture() as captured:
        console.print(frame)
    return captured.get().splitlines()


EVENTS = [f"08:1{i}:00 mailbox-0.example.org: sync finished, {i} new" for i in range(8)]


@pytest.mark.parametrize(("mailboxes", "folders"), [(1, 2), (3, 5), (40, 3)])
def test_a_frame_fits_80_by_24_with_whole_columns_and_the_latest_events(mailboxes: int, folders: int) -> None:
    client = SimpleNamespace(server_pid=7, call=lambda command: {
        "status": _status(mailboxes, folders), "actors": {"tree": _tree(mailboxes)}}[command])
    lines = _render(_frame(client, RateMeter(), collections.deque(EVENTS), width=80, height=24), 80, 24)
    assert len(lines) < 24 and max(map(len, lines)) <= 80, "\n".join(lines)
    header = next(line for line in lines if line.startswith("mailbox "))
    assert header.split() == ["mailbox", "state", "folder", "server", "stored", "freshness", "msg/s", "inbox"]
    rows = [line for line in lines if "fresh (12 min ago)" in line]  # never cut, nor a date
    assert rows and all(re.search(r" 12345 +12000  fresh \(12 min ago\) ", row) for row in rows), "\n".join(lines)
    assert "2026-12" not in "\n".join(lines)
    shown_events = lines[lines.index("latest events:") + 1:]
    assert shown_events and shown_events == EVENTS[-len(shown_events):], "\n".join(lines)  # the latest, whole
    if mailboxes * folders + 2 + 4 * mailboxes < 12:  # room for the tree
        assert "actors" in lines and any("fetcher/m0 running" in line for line in lines)
    else:  # folders that do not fit are counted, and the tree is one line
        assert any(line.startswith("actors: ") and "fetcher/m1 1 restart(s)" in line for line in lines)
        assert any(re.search(r"… \d+ more folder\(s\)", line) for line in lines), "\n".join(lines)


def test_a_folder_backfilling_shows_how_far_and_the_time_left_in_place_of_its_freshness() -> None:
    status = _status(1, 2)
    eta = datetime.now(UTC) + timedelta(hours=5, minutes=1)
    status["mailboxes"][0]["folders"][1]["backfill"] = {
        "floor": 4001, "done": 6000, "total": 10_000, "left": 4000, "mb_done": 600, "per_minute": 600,
        "eta": eta.strftime("%Y-%m-%dT%H:%M:%SZ"), "limited_by": "budget",
    }
    client = SimpleNamespace(server_pid=7, call=lambda command: {"status": status, "actors": {"tree": _tree(1)}}[command])
    lines = _render(_frame(client, RateMeter(), collections.deque(EVENTS), width=80, height=24), 80, 24)
    assert max(map(len, lines)) <= 80
    assert any("backfill 60% 5.0h" in line for line in lines), "\n".join(lines)
    assert sum("fresh (12 min ago)" in line for line in lines) == 1  # the other folder keeps its freshness
