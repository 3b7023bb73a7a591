"""A backfill's progress and its end: at the rate it goes, or at what the download budget allows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from futurnal.storage.clock import utc_iso
from futurnal.sync.backfill_progress import backfill_progress
from futurnal.sync.download_budget import DownloadBudget

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def state(**fields: object) -> dict[str, object]:
    return {"backfill_floor": 4001, "messages": 10_000, "backfill_started": utc_iso(NOW - timedelta(minutes=10)),
            "backfill_fetched": 6000, "backfill_bytes": 600_000_000, **fields}


def test_no_backfill_under_way_says_nothing() -> None:
    assert backfill_progress(state(backfill_floor=0), 10_000, NOW) is None
    assert backfill_progress(state(backfill_floor=1), 10_000, NOW) is None


def test_the_time_left_at_the_rate_so_far() -> None:
    progress = backfill_progress(state(), 6000, NOW)
    assert progress is not None
    # 6,000 in 10 minutes: the 4,000 left take 6 minutes 40 seconds more.
    assert (progress["done"], progress["total"], progress["left"], progress["per_minute"]) == (6000, 10_000, 4000, 600)
    assert progress["eta"] == utc_iso(NOW + timedelta(seconds=400)) and progress["limited_by"] == "rate"
    assert progress["mb_done"] == 600 and progress["mb_total"] == 1000  # 4,000 more at 100 kB each


def test_a_download_budget_that_ends_it_later_is_what_the_end_is_told_by() -> None:
    clock = NOW.timestamp()
    budget = DownloadBudget(200_000_000, clock=lambda: clock)  # 200 MB a day; 400 MB to go at 100 kB each
    budget.spend(200_000_000)  # and today's is used up: it frees in a day
    progress = backfill_progress(state(), 6000, NOW, budget)
    assert progress is not None and progress["limited_by"] == "budget"
    frees = budget.resets_at()
    assert frees is not None and progress["eta"] == utc_iso(frees + timedelta(days=2))


def test_before_anything_was_stored_there_is_no_rate_to_tell_an_end_by() -> None:
    progress = backfill_progress(state(backfill_fetched=0, backfill_bytes=0), 0, NOW)
    assert progress is not None and progress["eta"] is None and progress["per_minute"] is None
