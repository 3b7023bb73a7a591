"""One folder's sync, as plain code: SELECT, plan, fetch in batches, hand to the sink, advance.

The actor around it only supplies a connected session and a way to write elements; everything
that decides *what* to fetch and *when the watermark may move* lives here and is tested without
threads.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from loguru import logger

from futurnal.storage.quarantine import QuarantineStore
from futurnal.storage.sync_state import FolderState, FolderStateStore

from .element import build_element
from .errors import MailError
from .fetch_plan import BatchLimits, UidWindows, plan_batches
from .parser import parse_message
from .session import FetchedMessage, FolderStatus, ImapSession

__all__ = ["FolderSync", "FolderSyncResult", "PendingWrite", "SyncInterrupted", "SyncProgress"]


class SyncInterrupted(Exception):
    """The service is stopping; what was written so far is kept and the watermark says so."""


class PendingWrite(Protocol):
    """A write handed to the sink; ``get`` returns once it is durable (a Pykka future fits)."""

    def get(self, timeout: float | None = None) -> Any: ...


@dataclass(frozen=True, slots=True)
class SyncProgress:
    """How far one folder's sync has come; ``total`` is the number of new messages expected."""

    mailbox: str
    folder: str
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class FolderSyncResult:
    """What one folder sync did."""

    mailbox: str
    folder: str
    fetched: int
    quarantined: int
    unchanged: bool
    uidvalidity: int
    last_uid: int
    uidvalidity_changed: bool = False


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class _InFlight:
    pending: PendingWrite
    watermark: int
    count: int


class FolderSync:
    """Syncs folders of one mailbox into the sink, resuming from the stored watermark.

    Back-pressure: at most ``max_in_flight`` batches wait on the sink at once. The watermark only
    moves when the sink has acknowledged a batch, so a crash anywhere re-fetches rather than loses.
    """

    def __init__(
        self,
        *,
        mailbox: str,
        session: ImapSession,
        states: FolderStateStore,
        write: Callable[[list[dict[str, Any]]], PendingWrite],
        quarantine: QuarantineStore,
        limits: BatchLimits = BatchLimits(),
        max_in_flight: int = 2,
        write_timeout: float = 120.0,
        progress: Callable[[SyncProgress], None] | None = None,
        clock: Callable[[], str] = utc_now,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.mailbox = mailbox
        self._session = session
        self._states = states
        self._write = write
        self._quarantine = quarantine
        self._limits = limits
        self._max_in_flight = max(1, max_in_flight)
        self._write_timeout = write_timeout
        self._progress = progress or (lambda _: None)
        self._clock = clock
        self._should_stop = should_stop
        self._log = logger.bind(mailbox=mailbox)

    def run(self, folder: str) -> FolderSyncResult:
        state = self._states.get(folder).with_changes(last_attempt=self._clock())
        try:
            status = self._session.select(folder)
            return self._sync(state, status)
        except MailError as exc:
            latest = self._states.get(folder)
            self._states.put(latest.with_changes(last_attempt=state.last_attempt, last_error=str(exc)))
            raise

    def _sync(self, state: FolderState, status: FolderStatus) -> FolderSyncResult:
        folder = status.name
        validity_changed = state.uidvalidity is not None and state.uidvalidity != status.uidvalidity
        if validity_changed:
            # UIDs of the old incarnation mean nothing now: start the folder again from scratch.
            self._log.warning(
                "UIDVALIDITY of a folder changed ({old} -> {new}); syncing it again from scratch",
                old=state.uidvalidity,
                new=status.uidvalidity,
            )
            state = FolderState(folder=folder, last_attempt=state.last_attempt)
        if not validity_changed and state.uidvalidity is not None and _nothing_new(state, status):
            self._states.put(
                state.with_changes(messages=status.exists, last_success=self._clock(), last_error=None)
            )
            return FolderSyncResult(
                self.mailbox, folder, 0, 0, True, status.uidvalidity, state.last_uid, validity_changed
            )

        state = state.with_changes(
            uidvalidity=status.uidvalidity, uidnext=status.uidnext, highestmodseq=status.highestmodseq
        )
        self._states.put(state)
        total = max(status.exists - (state.messages if state.last_uid else 0), 0)
        fetched = quarantined = 0
        in_flight: deque[_InFlight] = deque()
        windows = UidWindows(state.last_uid, status.uidnext, self._limits)
        try:
            while (window := windows.next_window()) is not None:
                sizes = self._session.sizes(window.criteria)
                windows.record(len(sizes))
                for batch in plan_batches(sizes, self._limits):
                    if self._should_stop():
                        raise SyncInterrupted(f"sync of {folder!r} interrupted by shutdown; it resumes next time")
                    messages = self._session.fetch_messages(batch)
                    elements, bad = self._to_elements(messages, folder, status.uidvalidity)
                    quarantined += bad
                    fetched += len(messages)
                    in_flight.append(_InFlight(self._write(elements), batch[-1], len(messages)))
                    while len(in_flight) >= self._max_in_flight:
                        state = self._commit(state, in_flight.popleft())
                    self._progress(SyncProgress(self.mailbox, folder, fetched, max(total, fetched)))
                if window.last is not None:
                    # Every UID up to the window's end that existed has been handed over.
                    in_flight.append(_InFlight(_Done(), window.last, 0))
        finally:
            while in_flight:
                state = self._commit(state, in_flight.popleft())
        state = state.with_changes(
            messages=status.exists, last_success=self._clock(), last_error=None,
            parse_failures=state.parse_failures + quarantined,
        )
        self._states.put(state)
        self._progress(SyncProgress(self.mailbox, folder, fetched, fetched))
        return FolderSyncResult(
            self.mailbox, folder, fetched, quarantined, False, status.uidvalidity, state.last_uid, validity_changed
        )

    def _commit(self, state: FolderState, flight: _InFlight) -> FolderState:
        """Wait until the sink has the batch durably, then move the watermark past it."""
        flight.pending.get(timeout=self._write_timeout)
        if flight.watermark > state.last_uid:
            state = state.with_changes(last_uid=flight.watermark)
            self._states.put(state)
        return state

    def _to_elements(
        self, messages: list[FetchedMessage], folder: str, uidvalidity: int
    ) -> tuple[list[dict[str, Any]], int]:
        elements: list[dict[str, Any]] = []
        bad = 0
        for message in messages:
            try:
                parsed = parse_message(message.raw)
            except Exception as exc:  # a parser bug must not stop the folder: set the message aside
                self._log.exception("message could not be parsed; quarantined")
                self._quarantine.add(
                    mailbox=self.mailbox, folder=folder, uidvalidity=uidvalidity, uid=message.uid,
                    reason=f"parse failed: {exc.__class__.__name__}", raw=message.raw, now=self._clock(),
                )
                bad += 1
                continue
            elements.append(build_element(parsed, message, mailbox=self.mailbox, folder=folder, uidvalidity=uidvalidity))
        return elements, bad


def _nothing_new(state: FolderState, status: FolderStatus) -> bool:
    """Same UIDNEXT (and HIGHESTMODSEQ when known), and the last sync got to the end of it."""
    if status.uidnext is None or status.uidnext != state.uidnext or state.last_uid < status.uidnext - 1:
        return False
    return status.highestmodseq is None or status.highestmodseq == state.highestmodseq


class _Done:
    """An already-complete write, used to move the watermark to a window's end in order."""

    def get(self, timeout: float | None = None) -> None:
        return None
