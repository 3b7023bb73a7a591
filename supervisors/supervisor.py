"""Supervisor: OTP-style restarts of the children it started, in order, with back-off.

Pykka has no supervision of its own, so this follows Erlang/OTP's supervisor (OTP Design
Principles, "Supervisor Behaviour"; docs/ARCHITECTURE.md, "The actor tree"): child specs, the
one_for_one / one_for_all / rest_for_one strategies, the permanent / transient / temporary
restart types, a restart intensity past which the supervisor stops its children in reverse
order and fails upward, start in order and stop in reverse.

Two additions OTP lacks: a back-off between restart attempts, scheduled rather than slept so the
supervisor keeps answering while it waits, and poison counting (a unit of work that was in flight
at ``poison_threshold`` deaths of the same child is named to every child, so its owner sets it
aside instead of dying on it again).

Children can only report *abnormal* ends (``ChildExited``, from ``on_failure``): Pykka does not
tell a supervisor when a child stops itself normally. Such a child is simply not restarted, for
every restart type, as OTP does for a transient or temporary child's normal end; the directory
no longer returns it because it checks liveness. A later one_for_all or rest_for_one restart of
its group starts it again unless it is temporary.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, NoReturn, get_args

import pykka
from loguru import logger

from .backoff import BackoffPolicy, RestartBackoff, Schedule, call_later, fault_retry_policy
from .directory import ActorDirectory
from .poison import PoisonCounter
from .protocol import ActorRestarting, ChildExited, DescribeChildren, Ping, PoisonMessage, SiblingRestarted
from .restart_intensity import RestartIntensity
from .strategy import RestartType, Strategy, restart_group
from .supervised import SupervisedActor, inbox_size

__all__ = ["ActorRestarting", "ChildSpec", "RestartType", "Strategy", "Supervisor", "SupervisorGaveUp"]

_DEFAULT_BACKOFF = BackoffPolicy()


class SupervisorGaveUp(RuntimeError):
    """Children kept dying faster than the restart intensity allows."""


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to start one child. ``start`` gets the supervisor's ref and returns the child's.

    ``id`` is also the child's name in the :class:`ActorDirectory`. ``restart`` is OTP's restart
    type: ``permanent`` and ``transient`` children are restarted after a crash (the only end a
    child can report, see the module docstring), ``temporary`` ones never are and are forgotten.
    """

    id: str
    start: Callable[[pykka.ActorRef[Any]], pykka.ActorRef[Any]]
    restart: RestartType = "permanent"
    shutdown_timeout: float = 10.0
    start_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.restart not in get_args(RestartType):
            raise ValueError(f"{self.id}: unknown restart type {self.restart!r}")


@dataclass(frozen=True, slots=True)
class _RestartDue:
    """Told to itself once a back-off is over: start the children waiting on ``ticket``."""

    ticket: int


class Supervisor(SupervisedActor):
    """Starts its children in order, restarts them by ``strategy``, and is itself supervisable.

    Past the restart intensity it stops every child in reverse order and fails, which its parent
    sees as a dead child; a root supervisor calls ``on_give_up`` first so the process can exit
    non-zero and let the service manager restart it.

    Args:
        child_id: this supervisor's own id (and name in the directory, set by its parent).
        specs: the children, in start order.
        directory: where the current ref of each child is published.
        intensity: at most R restarts in T seconds; every death counts, poison or not, except
            deaths of a local fault (a full disk): no restart cures those sooner, so they wait
            for ``fault_backoff`` instead and never make the supervisor give up.
        supervisor: the parent to report this supervisor's own death to.
        on_give_up: called with the reason before failing upward (the root's way out).
        strategy: which children restart when one dies (see :func:`restart_group`).
        backoff: the delays between restart attempts of one child.
        fault_backoff: the delays after deaths of a local fault (default: 5 s doubling to 5 min,
            see :func:`~.backoff.fault_retry_policy`, reset once the child stays up like ``backoff``).
        poison_threshold: deaths of a child with the same work in flight that make it poison.
        clock: for the back-off's uptime; pass the intensity's clock in tests.
        schedule: ``schedule(delay, fn)`` runs ``fn`` later on another thread; tests drive it.
        unit_random: draws in [0, 1) for the back-off's jitter.
        publish: called with an :class:`ActorRestarting` at every death (e.g. an event bus's
            ``publish``, which the admin console's subscribers hear); it must not block.
    """

    def __init__(
        self,
        *,
        child_id: str,
        specs: Sequence[ChildSpec],
        directory: ActorDirectory,
        intensity: RestartIntensity,
        supervisor: pykka.ActorRef[Any] | None = None,
        on_give_up: Callable[[str], None] | None = None,
        strategy: Strategy = "one_for_one",
        backoff: BackoffPolicy = _DEFAULT_BACKOFF,
        fault_backoff: BackoffPolicy | None = None,
        poison_threshold: int = 3,
        clock: Callable[[], float] = time.monotonic,
        schedule: Schedule = call_later,
        unit_random: Callable[[], float] = random.random,
        publish: Callable[[ActorRestarting], None] | None = None,
    ) -> None:
        super().__init__(child_id=child_id, supervisor=supervisor)
        if strategy not in get_args(Strategy):
            raise ValueError(f"unknown strategy {strategy!r}")
        ids = [spec.id for spec in specs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"child ids must be unique, got {ids}")
        self._specs = list(specs)  # start order; temporary children leave it when they end
        self._strategy: Strategy = strategy
        self._directory = directory
        self._intensity = intensity
        self._on_give_up = on_give_up
        self._schedule = schedule
        self._backoffs = {spec.id: RestartBackoff(backoff, clock, unit_random) for spec in specs}
        fault_policy = fault_backoff or replace(fault_retry_policy(), reset_after=backoff.reset_after)
        self._fault_backoffs = {spec.id: RestartBackoff(fault_policy, clock, unit_random) for spec in specs}
        self._faults: dict[str, str] = {}  # child id -> the local fault it last died of, said once
        self._poison = PoisonCounter(poison_threshold)
        self._children: dict[str, pykka.ActorRef[Any]] = {}  # the running ones: id -> current ref
        self._pending: dict[str, int] = {}  # children waiting for a restart: id -> ticket
        self._crashed: set[str] = set()  # died on their own; the others hear of it once they are back
        self._notices: dict[str, list[PoisonMessage]] = {}  # told to all once that child is back
        self._tickets = itertools.count(1)
        self._deaths: dict[str, int] = {}  # child id -> deaths seen, for the admin console
        self._publish = publish

    # -- Pykka hooks ------------------------------------------------------------------------

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
        if isinstance(message, _RestartDue):
            return self._restart(message.ticket)
        if isinstance(message, DescribeChildren):
            return self._describe_children()
        return super().handle(message)

    def _describe_children(self) -> list[dict[str, Any]]:
        """Each child in start order; ``ref`` is there so a caller can ask a child supervisor in turn."""
        children = []
        for spec in self._specs:
            ref = self._children.get(spec.id)
            state = "running" if ref is not None else "restarting" if spec.id in self._pending else "stopped"
            children.append({
                "id": spec.id, "state": state, "restarts": self._deaths.get(spec.id, 0),
                "restart_type": spec.restart, "inbox": inbox_size(ref.actor_inbox) if ref is not None else 0,
                "ref": ref,
            })
        return children

    def on_stop(self) -> None:
        self._stop_children()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Pykka skips on_stop after a failure; children left running would be doubled when the
        # parent starts a new supervisor. After a give-up they are already stopped.
        self._stop_children()
        super().on_failure(exception_type, exception_value, traceback)

    # -- a child died ----------------------------------------------------------------------

    def _on_child_exited(self, exited: ChildExited) -> None:
        current = self._children.get(exited.child_id)
        if current is None or current.actor_urn != exited.actor_urn:
            return  # an old incarnation, or one a sibling's restart already stopped
        self._forget(exited.child_id)
        spec = self._spec(exited.child_id)
        self._deaths[spec.id] = self._deaths.get(spec.id, 0) + 1
        local = exited.local_fault is not None
        notice = None if local else self._poison.record(exited.child_id, exited.in_flight)
        allowed = spec.restart != "temporary" and (local or self._intensity.allow())
        if self._publish is not None:
            self._publish(ActorRestarting(spec.id, exited.reason, self._deaths[spec.id], restarted=allowed))
        if spec.restart == "temporary":
            logger.warning("{child} died ({reason}); temporary, not restarted", child=spec.id, reason=exited.reason)
            self._drop(spec)
            if notice is not None:
                self._tell_all(notice)
            return
        if notice is not None:
            self._notices.setdefault(spec.id, []).append(notice)
        if not allowed:
            self._give_up(f"{spec.id} keeps failing ({exited.reason})")
        group = restart_group(self._strategy, [s.id for s in self._specs], spec.id)
        if exited.local_fault is not None:
            delay = self._fault_backoffs[spec.id].next_delay()
            self._say_fault(spec.id, exited.local_fault, delay)
        else:
            delay = self._backoffs[spec.id].next_delay()
            logger.warning("{child} died ({reason}); restarting {group}", child=spec.id, reason=exited.reason,
                           group=group)
        for child_id in reversed(group):
            self._stop_child(child_id)  # the dead one and those already waiting are not running
        ticket = next(self._tickets)
        for child_id in group:
            sibling = self._spec(child_id)
            if sibling.restart == "temporary":
                self._drop(sibling)  # OTP: never restarted, not even for a sibling's death
            else:
                self._pending[child_id] = ticket  # joins this restart, leaving any earlier one
        self._crashed.add(spec.id)
        self._schedule_restart(ticket, delay)

    def _say_fault(self, child_id: str, fault: str, delay: float) -> None:
        """One warning per fault and child (it may kill the child at every restart); debug after."""
        log = logger.debug if self._faults.get(child_id) == fault else logger.warning
        self._faults[child_id] = fault
        log("{child} stopped: {fault}; restarting it in {delay:.0f} s", child=child_id, fault=fault, delay=delay)

    def _schedule_restart(self, ticket: int, delay: float) -> None:
        """Restart later by a message to itself, so the wait blocks neither this thread nor others."""
        ref = self.actor_ref

        def due() -> None:
            try:
                ref.tell(_RestartDue(ticket))
            except pykka.ActorDeadError:
                pass  # stopped or gave up meanwhile: nothing left to restart

        self._schedule(delay, due)

    def _restart(self, ticket: int) -> None:
        """Start the children waiting on ``ticket`` in start order; retry the rest after a failure.

        Children of the group that did start stay up (for one_for_all OTP would stop and restart
        them all again); the failed one and those after it wait for the next attempt, which counts
        against the restart intensity like a death.
        """
        for spec in [s for s in self._specs if self._pending.get(s.id) == ticket]:
            try:
                self._start_child(spec)
            except Exception as exc:
                logger.warning("restart of {child} failed: {error}", child=spec.id, error=str(exc))
                if not self._intensity.allow():
                    self._give_up(f"{spec.id} cannot be restarted ({exc})")
                self._schedule_restart(ticket, self._backoffs[spec.id].next_delay())
                return
            del self._pending[spec.id]
        self._announce_restarts()

    def _announce_restarts(self) -> None:
        """Tell every child about each crashed child that is back: poison first, then the restart.

        Poison goes first so that the work a sibling re-drives on ``SiblingRestarted`` reaches an
        owner that already knows to set it aside.
        """
        for spec in list(self._specs):
            if spec.id not in self._crashed or spec.id not in self._children:
                continue
            self._crashed.discard(spec.id)
            for notice in self._notices.pop(spec.id, []):
                self._tell_all(notice)
            for sibling_id, ref in list(self._children.items()):
                if sibling_id != spec.id:
                    self._tell(ref, SiblingRestarted(spec.id))

    def _give_up(self, reason: str) -> NoReturn:
        logger.error("{supervisor} gives up: {reason}", supervisor=self.child_id, reason=reason)
        self._stop_children()
        if self._on_give_up is not None:
            self._on_give_up(reason)
        raise SupervisorGaveUp(reason)

    # -- children --------------------------------------------------------------------------

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
        self._backoffs[spec.id].started()

    def _stop_children(self) -> None:
        for spec in reversed(self._specs):
            self._stop_child(spec.id)

    def _stop_child(self, child_id: str) -> None:
        ref = self._forget(child_id)
        if ref is None:
            return
        timeout = self._spec(child_id).shutdown_timeout
        try:
            ref.stop(block=True, timeout=timeout)
        except pykka.Timeout:
            logger.warning("{child} did not stop within {s}s; abandoned", child=child_id, s=timeout)

    def _forget(self, child_id: str) -> pykka.ActorRef[Any] | None:
        """Take a child out of the running set and the directory; its ref, if it was running."""
        ref = self._children.pop(child_id, None)
        if ref is not None:
            self._directory.remove(child_id)
        return ref

    def _drop(self, spec: ChildSpec) -> None:
        """Forget a temporary child for good: it is neither restarted nor stopped again."""
        self._specs.remove(spec)
        self._pending.pop(spec.id, None)
        self._crashed.discard(spec.id)
        self._notices.pop(spec.id, None)

    def _spec(self, child_id: str) -> ChildSpec:
        return next(spec for spec in self._specs if spec.id == child_id)

    def _tell_all(self, message: Any) -> None:
        for ref in list(self._children.values()):
            self._tell(ref, message)

    @staticmethod
    def _tell(ref: pykka.ActorRef[Any], message: Any) -> None:
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            pass  # it died meanwhile; its own ChildExited is on the way
