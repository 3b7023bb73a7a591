"""The messages of supervision: between a supervisor and its children, and the event it publishes.

Every actor started under a :class:`~futurnal.supervisors.supervisor.Supervisor` speaks this
protocol (its base :class:`~futurnal.supervisors.supervised.SupervisedActor` does the child's
part). The work a child reports in flight is any hashable key: the supervisor only counts deaths
per key and names a key back; what it means is for the child that set it.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

__all__ = ["ActorRestarting", "ChildExited", "DescribeChildren", "Ping", "PoisonMessage", "SiblingRestarted"]


@dataclass(frozen=True, slots=True)
class Ping:
    """Asked right after start: an answer proves ``on_start`` succeeded."""


@dataclass(frozen=True, slots=True)
class ChildExited:
    """A supervised actor died; sent by the child itself from ``on_failure``.

    ``in_flight`` names the unit of work it was on when it died (for the fetcher, one message),
    so the supervisor can tell a poison message from bad luck.
    """

    child_id: str
    actor_urn: str
    reason: str
    in_flight: Hashable | None = None
    #: It died of a fault of this machine's (a full disk...), said this way: no message is to
    #: blame and restarting soon will not help, so it is neither poison nor counted as a crash.
    local_fault: str | None = None


@dataclass(frozen=True, slots=True)
class PoisonMessage:
    """From a supervisor to its children: ``key`` was in flight at ``crashes`` deaths of
    ``child_id``; whoever owns that work must set it aside instead of retrying it."""

    child_id: str
    key: Hashable
    crashes: int


@dataclass(frozen=True, slots=True)
class SiblingRestarted:
    """Told to the other children after a restart, so they re-drive work the dead one lost."""

    child_id: str


@dataclass(frozen=True, slots=True)
class DescribeChildren:
    """Query to a supervisor: each child's id, state, restart count and inbox depth, in start order."""


@dataclass(frozen=True, slots=True)
class ActorRestarting:
    """Published when a child died: ``restarted`` False for a temporary child, which stays down."""

    child_id: str
    reason: str
    deaths: int
    restarted: bool
