"""Fault hooks for crash tests, off unless ``FUTURNAL_TEST_CRASH_ON`` (or, for the parser worker
processes, ``FUTURNAL_TEST_PARSER_EXIT_ON`` / ``FUTURNAL_TEST_PARSER_HANG_ON``) is set.

Tests need an actor that dies on one specific message, every time, to prove the supervisor
quarantines poison, and a parser process that dies or hangs on one, to prove the pool contains
it. Production never sets the variables, so the hooks are None and cost nothing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

__all__ = [
    "PARSER_EXIT_ENV",
    "PARSER_HANG_ENV",
    "InjectedFault",
    "crash_hook_from_env",
    "parser_fault_hook_from_env",
]

ENV = "FUTURNAL_TEST_CRASH_ON"


class InjectedFault(RuntimeError):
    """Raised by the test hook; deliberately not a MailError, so it kills the actor."""


def crash_hook_from_env() -> Callable[[bytes], None] | None:
    marker = os.environ.get(ENV)
    if not marker:
        return None
    needle = marker.encode()

    def crash_on_marker(raw: bytes) -> None:
        if needle in raw:
            raise InjectedFault(f"test fault: message contains {marker!r}")

    return crash_on_marker


#: Crash tests for the parser worker processes: a message holding this marker makes the worker
#: exit at once (as a segfault or the OOM killer would), or hang (as a pathological input would).
PARSER_EXIT_ENV = "FUTURNAL_TEST_PARSER_EXIT_ON"
PARSER_HANG_ENV = "FUTURNAL_TEST_PARSER_HANG_ON"


def parser_fault_hook_from_env() -> Callable[[bytes], None] | None:
    """The worker-side fault hook; None (no cost) unless a test set one of the variables."""
    exit_on = os.environ.get(PARSER_EXIT_ENV, "").encode()
    hang_on = os.environ.get(PARSER_HANG_ENV, "").encode()
    if not exit_on and not hang_on:
        return None

    def misbehave(raw: bytes) -> None:
        if exit_on and exit_on in raw:
            os._exit(70)
        if hang_on and hang_on in raw:
            threading.Event().wait()

    return misbehave
