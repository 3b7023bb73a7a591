"""Folder freshness and watch plans, as ``imap status`` shows them, driven by an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from futurnal.storage.clock import utc_iso
from futurnal.sync.freshness import (
    WATCH_IDLE,
    WATCH_NONE,
    WATCH_OVER_BUDGET,
    describe_watch,
    freshness,
    watch_plan,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def ago(seconds: float) -> str:
    return utc_iso(NOW - timedelta(seconds=seconds))


def test_a_folder_synced_within_the_threshold_is_fresh() -> None:
    result = freshness(ago(3599), now=NOW, stale_after_seconds=3600)
    assert not result.stale
    assert result.age_seconds == 3599
    assert result.describe() == "fresh (60 min ago)"


def test_a_folder_whose_last_success_is_past_the_threshold_is_stale() -> None:
    result = freshness(ago(3601), now=NOW, stale_after_seconds=3600)
    assert result.stale
    assert result.describe().startswith("stale")


def test_a_folder_never_synced_is_stale() -> None:
    result = freshness(None, now=NOW, stale_after_seconds=3600)
    assert result.stale and result.age_seconds is None
    assert result.describe() == "stale (never synced)"


def test_a_clock_behind_the_stamp_counts_as_just_synced() -> None:
    assert freshness(utc_iso(NOW + timedelta(seconds=30)), now=NOW, stale_after_seconds=10).age_seconds == 0


def test_watched_folders_beyond_the_connection_budget_fall_back_to_polling() -> None:
    plan = watch_plan(("INBOX", "Sent", "Lists", "Work"), connection_limit=3)
    assert plan == {"INBOX": WATCH_IDLE, "Sent": WATCH_IDLE, "Lists": WATCH_OVER_BUDGET, "Work": WATCH_OVER_BUDGET}


def test_a_budget_of_one_connection_leaves_nothing_for_watchers() -> None:
    assert set(watch_plan(("INBOX",), connection_limit=1).values()) == {WATCH_OVER_BUDGET}


def test_what_the_watcher_found_on_the_server_refines_the_plan() -> None:
    assert describe_watch(WATCH_IDLE, None) == WATCH_IDLE
    assert describe_watch(WATCH_IDLE, "polling") == "polling (server has no IDLE)"
    assert describe_watch(WATCH_IDLE, "notify") == "watching by NOTIFY"
    assert describe_watch(WATCH_OVER_BUDGET, "idle") == WATCH_OVER_BUDGET
    assert describe_watch(WATCH_OVER_BUDGET, "notify") == "watching by NOTIFY"  # one connection for all
    assert describe_watch(WATCH_NONE, "idle") == WATCH_NONE
