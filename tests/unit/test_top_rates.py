"""The messages-per-second figure of ``top``, from progress events (an injected clock)."""

from __future__ import annotations

from futurnal.cli.top_command import RateMeter


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
