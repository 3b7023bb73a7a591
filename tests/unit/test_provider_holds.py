"""How long a mailbox waits after each limiting answer, and how throttling slows it down."""

from __future__ import annotations

from futurnal.imap.server_answers import BackoffFor, OverQuota, TooManyConnections, Unavailable
from futurnal.sync.fetch_plan import BatchLimits
from futurnal.sync.provider_holds import HoldPolicy, Slowdown


def test_overquota_waits_the_window_doubling_while_repeated_up_to_a_day() -> None:
    policy = HoldPolicy(overquota_wait=3600, rng=lambda: 0.0)
    verdict = OverQuota("[OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)")
    assert [policy.hold(verdict, "q", n).seconds for n in (0, 1, 2, 5, 10)] == [3600, 7200, 14400, 86400, 86400]
    assert policy.hold(verdict, "q", 2).repeats == 3


def test_office365_backoff_is_what_it_suggests_and_jitter_spreads_logins() -> None:
    verdict = BackoffFor(92.415, "Request is throttled. Suggested Backoff Time: 92415 milliseconds")
    assert HoldPolicy(rng=lambda: 0.0).hold(verdict, "b").seconds == 92.415
    late = HoldPolicy(rng=lambda: 0.999).hold(verdict, "b").seconds
    assert 92.415 < late < 92.415 + 9.3  # a tenth more at most
    assert HoldPolicy(overquota_wait=3600, rng=lambda: 1.0).hold(OverQuota("q"), "q").seconds == 3960


def test_unavailable_limit_and_connections_back_off_growing_to_ten_minutes() -> None:
    policy = HoldPolicy(retry_seconds=5, rng=lambda: 0.0)
    assert [policy.hold(Unavailable("u"), "u", n).seconds for n in (0, 1, 2, 10)] == [5, 10, 20, 600]
    assert policy.hold(TooManyConnections("t"), "t").seconds == 5


def test_throttling_halves_batches_and_doubles_the_pause_then_decays() -> None:
    slow = Slowdown(pause=1.0)
    limits = BatchLimits(max_messages=200)
    assert (slow.limits(limits), slow.pause()) == (limits, 0.0)
    slow.heard(1)
    assert (slow.limits(limits).max_messages, slow.pause()) == (100, 1.0)
    slow.heard(2)
    slow.heard(1)
    assert (slow.limits(limits).max_messages, slow.pause()) == (25, 4.0)
    for _ in range(20):
        slow.heard(1)
    assert slow.limits(limits).max_messages == 3 and slow.level == slow.max_level  # floor: never below 1
    deep = Slowdown(max_level=9)
    for _ in range(9):
        deep.heard(1)
    assert deep.limits(BatchLimits(max_messages=300)).max_messages == 1
    for _ in range(Slowdown.QUIET_BATCHES_PER_STEP * slow.max_level):
        slow.heard(0)
    assert (slow.level, slow.pause()) == (0, 0.0)
