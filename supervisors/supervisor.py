"""Supervisor: starts children in order, stops them in reverse, restarts the one that died."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka
from loguru import logger

from futurnal.actors.directory import ActorDirectory
from futurnal.actors.messages import ChildExited, Ping, SiblingRestarted
from futurnal.actors.supervised import SupervisedActor

from .restart_intensity import RestartIntensity

__all__ = ["ChildSpec", "Supervisor", "SupervisorGaveUp"]


class SupervisorGaveUp(RuntimeError):
    """Children kept dying faster than the restart intensity allows."""


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to start one child. ``start`` gets the supervisor's ref and returns the child's.

    ``id`` is also the child's name in the :class:`ActorDirectory`.
    """

    id: str
    start: Callable[[pykka.ActorRef[Any]], pykka.ActorRef[Any]]
    restart: str = "permanent"  # only "permanent" so far; transient/temporary come with the full tree
    shutdown_timeout: float = 10.0
    start_timeout: float = 10.0


class Supervisor(SupervisedActor):
    """A one_for_one supervisor, itself supervisable (it reports its own death upwards).

    Past the restart intensity it stops every child in reverse order and fails, which its parent
    sees as a dead child; a root supervisor calls ``on_give_up`` instead so the process can exit
    non-zero and let the service manager restart it.
    """

    def __init__(
        self,
        *,
        child_id: str,
        specs: list[ChildSpec],
        directory: ActorDirectory,
        intensity: RestartIntensity,
        supervisor: pykka.ActorRef[Any] | None = None,
        on_give_up: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(child_id=child_id, supervisor=supervisor)
        self._specs = list(specs)
        self._directory = directory
        self._intensity = intensity
        self._on_give_up = on_give_up
        self._children: dict[str, pykka.ActorRef[Any]] = {}

    def on_start(self) -> None:
        try:
            for spec in self._specs:
                self._start_child(spec)
        except Exception as exc:
            self._stop_children()
            if self._on_give_up is not None:
                self._on_give_up(f"{self.child_id} could not start: {exc}")
            raise

    def handle(self, message: Any) -> Any:
        if isinstance(message, ChildExited):
            return self._on_child_exited(message)
        return super().handle(message)

    def _start_child(self, spec: ChildSpec) -> None:
        """Start, then ping: a child whose ``on_start`` failed never answers, and that is seen here."""
        ref = spec.start(self.actor_ref)
        try:
            ref.ask(Ping(), timeout=spec.start_timeout)
        except Exception as exc:
            ref.stop(block=False)
            raise RuntimeError(f"{spec.id} did not start: {exc.__class__.__name__}: {exc}") from exc
        self._children[spec.id] = ref
        self._directory.set(spec.id, ref)

    def _on_child_exited(self, exited: ChildExited) -> None:
        current = self._children.get(exited.child_id)
        if current is None or current.actor_urn != exited.actor_urn:
            return  # an old incarnation, already replaced
        spec = next(s for s in self._specs if s.id == exited.child_id)
        logger.warning("{child} died ({reason}); restarting it", child=exited.child_id, reason=exited.reason)
        while True:
            if not self._intensity.allow():
                self._give_up(f"{exited.child_id} keeps failing ({exited.reason})")
                return
            try:
                self._start_child(spec)
                break
            except Exception as exc:
                logger.warning("restart of {child} failed: {error}", child=spec.id, error=str(exc))
        for sibling_id, ref in self._children.items():
            if sibling_id != spec.id:
                ref.tell(SiblingRestarted(spec.id))

    def _give_up(self, reason: str) -> None:
        logger.error("{supervisor} gives up: {reason}", supervisor=self.child_id, reason=reason)
        self._stop_children()
        if self._on_give_up is not None:
            self._on_give_up(reason)
        raise SupervisorGaveUp(reason)

    def _stop_children(self) -> None:
        for spec in reversed(self._specs):
            ref = self._children.pop(spec.id, None)
            if ref is None:
                continue
            self._directory.remove(spec.id)
            try:
                ref.stop(block=True, timeout=spec.shutdown_timeout)
            except pykka.Timeout:
                logger.warning("{child} did not stop within {s}s; abandoned", child=spec.id, s=spec.shutdown_timeout)

    def on_stop(self) -> None:
        self._stop_children()
