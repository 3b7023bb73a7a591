"""A fault hook for crash tests, off unless ``FUTURNAL_TEST_CRASH_ON`` is set.

Tests need an actor that dies on one specific message, every time, to prove the supervisor
quarantines poison. Production never sets the variable, so the hook is None and costs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["InjectedFault", "crash_hook_from_env"]

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
