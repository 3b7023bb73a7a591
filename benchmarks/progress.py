"""What every benchmark script prints besides its figures: progress lines on stderr, and the
machine's load, which says how far other work may have bent the figures."""

from __future__ import annotations

import os
import sys
import time

__all__ = ["elapsed", "load_average", "log"]

_started = time.perf_counter()


def elapsed() -> float:
    """Seconds since the benchmark started (since this module was imported)."""
    return time.perf_counter() - _started


def log(message: str) -> None:
    """Progress goes to stderr, so the table (or ``--json``) on stdout stays clean."""
    print(f"[{elapsed():6.1f}s] {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    """1/5/15-minute load averages: other work on the machine competes for its CPUs and disk."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())
