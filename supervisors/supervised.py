"""The base of every supervised actor: answers pings and reports its own death."""

from __future__ import annotations

from collections.abc import Hashable
from types import TracebackType
from typing import Any

import pykka
from loguru import logger

from .protocol import ChildExited, Ping

__all__ = ["SupervisedActor", "inbox_size"]


def inbox_size(inbox: Any) -> int:
    """How many messages wait in an actor's inbox (Pykka's threading inbox is a ``queue.Queue``;
    its declared type does not say so)."""
    return int(inbox.qsize())


class SupervisedActor(pykka.ThreadingActor):
    """A Pykka actor that tells its supervisor when it dies.

    Pykka has no supervision of its own: an exception raised while handling a *tell* stops the
    actor for good. Reporting from ``on_failure`` is what lets a supervisor start a replacement.
    """

    # A thread stuck in a socket read must not keep the process alive after a stop was asked for;
    # every read has a timeout and the state on disk is always consistent, so nothing is lost.
    use_daemon_thread = True

    def __init__(self, *, child_id: str, supervisor: pykka.ActorRef[Any] | None = None) -> None:
        super().__init__()
        self.child_id = child_id
        self._supervisor = supervisor

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Ping):
            return "pong"
        return self.handle(message)

    def handle(self, message: Any) -> Any:
        """Subclasses turn their messages into calls on the plain object they own."""
        logger.debug("{actor} ignored an unknown message {kind}", actor=self.child_id, kind=type(message).__name__)
        return None

    def in_flight(self) -> Hashable | None:
        """The unit of work being handled right now, reported if this actor dies (see ChildExited)."""
        return None

    def describe_local_fault(self, exception: BaseException) -> str | None:
        """``exception`` said as a fault of this machine's (a full disk), or None for any other death.

        A death of a local fault is no bug and no message's fault: its supervisor neither counts it
        against the restart intensity nor takes the work in flight for poison, and retries slowly
        (see ``ChildExited.local_fault``). Nothing is one here; applications say what is.
        """
        return None

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        reason = f"{exception_type.__name__ if exception_type else 'failure'}: {exception_value}"
        fault = self.describe_local_fault(exception_value) if exception_value is not None else None
        if self._supervisor is not None:
            self._supervisor.tell(ChildExited(self.child_id, self.actor_urn, reason, self.in_flight(), fault))
