"""Which message a fetcher is working on, as a value rather than a string to take apart."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["MessageKey"]


class MessageKey(NamedTuple):
    """One message of one folder incarnation: what a crash while working on it is blamed on.

    Hashable and comparable by value, so a supervisor can count deaths per key without knowing
    what it names; only the fetcher that set it looks inside.
    """

    folder: str
    uidvalidity: int
    uid: int
