from __future__ import annotations

from futurnal.sync.fetch_plan import BatchLimits, UidWindows, plan_batches


def _walk(after: int, uidnext: int | None, limits: BatchLimits, present: set[int]) -> list[tuple[int, int | None]]:
    windows = UidWindows(after, uidnext, limits)
    seen = []
    while (window := windows.next_window()) is not None:
        seen.append((window.first, window.last))
        top = window.last if window.last is not None else max(present, default=0)
        windows.record(sum(1 for uid in present if window.first <= uid <= top))
    return seen


def test_windows_cover_every_uid_above_the_watermark_exactly_once() -> None:
    limits = BatchLimits(window_uids=100)
    windows = _walk(250, 1000, limits, set(range(1, 1000)))
    covered = [uid for first, last in windows for uid in range(first, last + 1)]
    assert covered == list(range(251, 1000))


def test_nothing_new_means_no_window_at_all() -> None:
    assert _walk(999, 1000, BatchLimits(), set(range(1, 1000))) == []


def test_sparse_uid_space_widens_windows_so_round_trips_stay_few() -> None:
    limits = BatchLimits(window_uids=100, max_window_uids=10_000)
    present = {1_000_000 + i for i in range(10)}  # ten messages left after mass deletion
    windows = _walk(0, 1_000_011, limits, present)
    assert len(windows) < 120  # fixed 100-UID windows would take 10,000 round trips
    assert windows[-1][1] == 1_000_010


def test_without_uidnext_one_open_ended_window_is_used() -> None:
    assert _walk(41, None, BatchLimits(), {42, 43}) == [(42, None)]


def test_batches_respect_the_message_count_limit() -> None:
    sizes = {uid: 10 for uid in range(1, 12)}
    batches = plan_batches(sizes, BatchLimits(max_messages=5, max_bytes=10_000))
    assert batches == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11]]


def test_batches_respect_the_byte_limit_and_a_huge_message_travels_alone() -> None:
    sizes = {1: 400, 2: 400, 3: 5000, 4: 100, 5: 100}
    batches = plan_batches(sizes, BatchLimits(max_messages=100, max_bytes=1000))
    assert batches == [[1, 2], [3], [4, 5]]
    assert sorted(uid for batch in batches for uid in batch) == [1, 2, 3, 4, 5]
