"""The platforms futurnal-actors runs on: Linux (x86-64, arm64), and a clear refusal elsewhere.

What ties it to Linux: the admin console lets in only the user running the service, checked by
each connection's peer credentials (``SO_PEERCRED``, which macOS and Windows lack); parser workers
and attachment extraction are held to their memory caps by ``RLIMIT_AS``, which macOS does not
enforce; and the data directory's lock, the change feed's wake-ups and the service's signals are
POSIX. Without the peer check the console would be open to other users, so ``run``, which serves
it, refuses to start.
"""

from __future__ import annotations

import sys

__all__ = ["SUPPORTED", "unsupported_platform"]

SUPPORTED = "Linux (x86-64, arm64)"


def unsupported_platform(platform: str | None = None) -> str | None:
    """Why futurnal-actors does not run on ``platform`` (default: this one), or None on Linux."""
    platform = sys.platform if platform is None else platform
    if platform.startswith("linux"):
        return None
    return (f"futurnal-actors runs on {SUPPORTED} only, not on {platform}: its admin console admits only "
            "your own user by the socket's peer credentials (SO_PEERCRED), which only Linux gives, and its "
            "parsers' memory caps need Linux too (README: Platforms)")
