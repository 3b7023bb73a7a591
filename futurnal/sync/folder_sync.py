"""One folder's sync, as plain code: SELECT, then new mail, flag changes and deletions.

The actor around it only supplies a connected session (anything with the :class:`ImapPort`'s
operations) and a sink; everything that decides *what* to fetch and *when the watermark may move*
lives here and is tested without threads. The work on each message is done by the pipeline's
steps: a message goes one way, fetched bytes -> parse -> element -> sink, and this module only
sequences those steps and owns the watermark.

Per sync, in order (docs/ARCHITECTURE.md, "One folder's sync"):

1. SELECT (EXAMINE). A new UIDVALIDITY tombstones every element of the old one and starts over.
2. Nothing changed (same UIDNEXT and HIGHESTMODSEQ, all known UIDs accounted for): done.
3. New mail: UIDs above the watermark, in windows and bounded batches: plan -> fetch -> parse
   (:mod:`futurnal.parse`) -> build (:mod:`.batch_elements`) -> hand to the sink -> commit the
   watermark, which moves past a batch only once the sink has it durably. A first sync goes
   newest first: the watermark starts at UIDNEXT - 1 and the older mail is the backfill, in
   windows and batches going down, each commit lowering the backfill floor.
4. Flag changes: ``CHANGEDSINCE`` the stored MODSEQ (with QRESYNC, ``VANISHED`` comes along);
   without CONDSTORE, every flag is fetched and compared by digest.
5. Deletions: vanished UIDs, or (when the message count says something is missing) a UID SEARCH
   diffed against the known set. Deleted messages become tombstones, never silent removals.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from loguru import logger

from futurnal.attachments.plan import AttachmentWork
from futurnal.attachments.settings import AttachmentSettings
from futurnal.element.build import ALL_SCOPES, stored_flags
from futurnal.imap.errors import CommandTimedOut, ConnectionFailed, MailError, ServerError, ServerHungUp
from futurnal.imap.session import FolderStatus
from futurnal.imap.uidset import UidSet
from futurnal.parse.parse_pool import ParsePool
from futurnal.storage.clock import utc_iso, utc_now
from futurnal.storage.element_store import ElementKey
from futurnal.storage.gmail_index import GmailMessageIndex
from futurnal.storage.quarantine import Quarantine
from futurnal.storage.sync_state import FolderState, FolderStateStore

from .batch_elements import (
    BatchElements,
    FetchedBatch,
    ParsingBatch,
    SetAside,
    Undelivered,
    placeholder,
    start_parsing,
)
from .download_budget import DownloadBudget
from .fetch_plan import BatchLimits, DescendingWindows, UidWindows, plan_batches
from .imap_port import ImapPort
from .message_key import MessageKey

__all__ = [
    "AttachmentPort",
    "FolderSync",
    "FolderSyncResult",
    "header_block",
    "MessageKey",
    "PendingWrite",
    "SinkPort",
    "SyncInterrupted",
    "MessageQuarantined",
    "SyncProgress",
]


class SyncInterrupted(Exception):
    """The service is stopping; what was written so far is kept and the watermark says so."""


class PendingWrite(Protocol):
    """A write handed to the sink; ``get`` returns once it is durable (a Pykka future fits)."""

    def get(self, *, timeout: float | None = None) -> Any: ...


class SinkPort(Protocol):
    """How a folder sync hands changes to the sink; each call returns a pending write."""

    def write(self, elements: list[dict[str, Any]]) -> PendingWrite: ...

    def update_flags(self, updates: list[tuple[ElementKey, list[str]]]) -> PendingWrite: ...

    def mark_deleted(self, keys: list[ElementKey]) -> PendingWrite: ...


class AttachmentPort(Protocol):
    """How a folder sync hands attachments to the attachment processor (see :mod:`futurnal.attachments`).

    ``submit`` returns once the work is durable (queued extractions, kept blobs); the watermark
    waits for it like for the sink's write, so a stop before that re-fetches the message.
    """

    settings: AttachmentSettings

    def submit(self, work: list[AttachmentWork]) -> PendingWrite: ...


@dataclass(frozen=True, slots=True)
class SyncProgress:
    """How far one folder's sync has come; ``total`` is the number of new messages expected."""

    mailbox: str
    folder: str
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class MessageQuarantined:
    """A message was set aside with its raw bytes (``quarantine list`` shows it); the folder went on."""

    mailbox: str
    folder: str
    uid: int
    reason: str


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
    flags_changed: int = 0
    deleted: int = 0
    #: Older mail still to come below this UID (newest first), when the backfill is not done.
    backfill_floor: int = 0
    #: When the download budget lets the backfill go on, if the budget is what stopped it.
    budget_frees_at: str | None = None


class _Both:
    """Two writes that must both be durable before the watermark moves."""

    def __init__(self, first: PendingWrite, second: PendingWrite) -> None:
        self._first, self._second = first, second

    def get(self, timeout: float | None = None) -> Any:
        self._second.get(timeout=timeout)
        return self._first.get(timeout=timeout)


class _Done:
    """An already-complete write, used to move the watermark to a window's end in order."""

    def get(self, timeout: float | None = None) -> None:
        return None


@dataclass(slots=True)
class _Handed:
    """A write handed to the sink, with what its commit makes known and where the watermark may go."""

    pending: PendingWrite
    uids: list[int]
    watermark: int
    #: Newest first: every UID from here up is then accounted for (None: the floor stays).
    floor: int | None = None
    #: Bytes of the messages it stores (counted for the backfill's rate).
    size: int = 0


@dataclass(slots=True)
class _Parsing:
    """A batch being parsed, and the watermark its commit allows (its last planned UID)."""

    batch: ParsingBatch
    watermark: int
    floor: int | None = None


@dataclass(slots=True)
class _Tally:
    """What one folder's fetch of new mail has done so far, for its progress and its result."""

    total: int
    poisoned: UidSet
    fetched: int = 0
    quarantined: int = 0


class _Commits:
    """Writes handed to the sink, oldest first; the folder's watermark follows them, never overtakes.

    The watermark and the known-UID set move only when the sink has acknowledged a write, so a
    crash anywhere re-fetches rather than loses. A write the sink fails stops every later commit
    too: a later write may well succeed, but the watermark would then jump over the failed one.
    Back-pressure: once ``limit`` writes wait, the oldest is waited for before the next batch is
    fetched.
    """

    def __init__(self, states: FolderStateStore, state: FolderState, limit: int, timeout: float) -> None:
        self.state = state
        self._states = states
        self._limit = limit
        self._timeout = timeout
        self._waiting: deque[_Handed] = deque()

    def written(
        self, pending: PendingWrite, uids: list[int], watermark: int, floor: int | None = None, size: int = 0,
    ) -> None:
        self._waiting.append(_Handed(pending, uids, watermark, floor, size))
        while len(self._waiting) >= self._limit:
            self._commit_oldest()

    def passed(self, watermark: int, floor: int | None = None) -> None:
        """Nothing up to ``watermark`` (or, newest first, from ``floor`` up) is left to write: the
        watermark (the floor) may get there in its turn."""
        self._waiting.append(_Handed(_Done(), [], watermark, floor))

    def drain(self) -> FolderState:
        while self._waiting:
            self._commit_oldest()
        return self.state

    def _commit_oldest(self) -> None:
        """Wait until the sink has the oldest write durably, then move the watermark past it."""
        handed = self._waiting.popleft()
        try:
            handed.pending.get(timeout=self._timeout)
        except BaseException:
            self._waiting.clear()  # what came after it is fetched again next time
            raise
        state = self.state
        known = UidSet.parse(state.known_uids).union(handed.uids) if handed.uids else None
        floor, fetched, size = state.backfill_floor, state.backfill_fetched, state.backfill_bytes
        if handed.floor is not None and floor > 1:
            fetched, size = fetched + len(handed.uids), size + handed.size
            if handed.floor < floor:
                floor = handed.floor if handed.floor > 1 else 0  # 0: nothing older is missing any more
        if handed.watermark > state.last_uid or known is not None or floor != state.backfill_floor:
            self.state = state.with_changes(
                last_uid=max(state.last_uid, handed.watermark),
                known_uids=str(known) if known is not None else state.known_uids,
                backfill_floor=floor, backfill_fetched=fetched, backfill_bytes=size,
            )
            self._states.put(self.state)


class FolderSync:
    """Syncs folders of one mailbox into the sink, resuming from the stored state.

    Back-pressure: at most ``max_in_flight`` batches wait on the sink at once. The watermark and
    the known-UID set only move when the sink has acknowledged a batch, so a crash anywhere
    re-fetches rather than loses.

    ``session`` is typed as the :class:`ImapPort`: the few operations used here, which an
    :class:`~futurnal.imap.session.ImapSession` has, and so can a server kept in memory.
    """

    def __init__(
        self,
        *,
        mailbox: str,
        session: ImapPort,
        states: FolderStateStore,
        sink: SinkPort,
        quarantine: Quarantine,
        limits: BatchLimits = BatchLimits(),
        max_in_flight: int = 2,
        write_timeout: float = 120.0,
        progress: Callable[[SyncProgress | MessageQuarantined], None] | None = None,
        clock: Callable[[], str] = utc_now,
        should_stop: Callable[[], bool] = lambda: False,
        gmail_index: GmailMessageIndex | None = None,
        fault_hook: Callable[[bytes], None] | None = None,
        scopes: tuple[str, ...] = ALL_SCOPES,
        attachments: AttachmentPort | None = None,
        parse_pool: ParsePool | None = None,
        reconnect: Callable[[], ImapPort] | None = None,
        arrivals_check_seconds: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
        budget: DownloadBudget | None = None,
    ) -> None:
        self.mailbox = mailbox
        self._session = session
        self._states = states
        self._sink = sink
        self._quarantine = quarantine
        self._limits = limits
        self._max_in_flight = max(1, max_in_flight)
        self._write_timeout = write_timeout
        self._progress = progress or (lambda _: None)
        self._clock = clock
        self._should_stop = should_stop
        self._scopes = scopes
        self._attachments = attachments
        self._parse_pool = parse_pool
        self._reconnect = reconnect
        self._arrivals_check_seconds = arrivals_check_seconds
        self._monotonic = monotonic
        self._budget = budget
        self._budget_frees_at: str | None = None  # set when the budget stopped the backfill
        self._elements = BatchElements(
            mailbox=mailbox, scopes=scopes, set_aside=self._set_aside, gmail_index=gmail_index,
            attachments=attachments.settings if attachments is not None else None, fault_hook=fault_hook,
        )
        #: UIDs that, asked for alone, made the server hang up once in this sync.
        self._hung_up_on: set[int] = set()
        #: UIDs a FETCH ran out of time on in this sync.
        self._timed_out_on: set[int] = set()
        self._status: FolderStatus | None = None
        self._read_write = False  # the folder is opened by SELECT (see _unless_flapping)
        self._last_progress: tuple[str, int, int] | None = None
        self._log = logger.bind(mailbox=mailbox)

    @property
    def in_flight(self) -> MessageKey | None:
        """The message being turned into an element: what a crash right now would be blamed on."""
        return self._elements.in_flight

    def _folder_name(self) -> str:
        """The folder being synced, for the log lines about it."""
        return self._status.name if self._status is not None else "?"

    def run(self, folder: str) -> FolderSyncResult:
        attempt = self._clock()
        try:
            state = self._states.get(folder)
            status = self._session.select(folder, read_write=state.open_read_write)
            return self._sync(state.with_changes(last_attempt=attempt), status)
        except MailError as exc:
            latest = self._states.get(folder)
            self._states.put(latest.with_changes(last_attempt=attempt, last_error=str(exc)))
            raise

    def forget(self, folder: str) -> int:
        """The folder is gone from the server: tombstone what was stored from it, drop its state."""
        state = self._states.get(folder)
        known = UidSet.parse(state.known_uids)
        if state.uidvalidity is not None and known:
            self._tombstone(folder, state.uidvalidity, known)
        self._states.remove(folder)
        self._log.warning("synced folder {folder!r} is gone from the server; {n} element(s) tombstoned",
                          folder=folder, n=len(known))
        return len(known)

    # -- the algorithm -------------------------------------------------------------------------

    def _report_progress(self, folder: str, done: int, total: int) -> None:
        """A :class:`SyncProgress`, unless it says what the one before it said (the last batch's
        count is often the final one too): each step is told once."""
        if self._last_progress != (folder, done, total):
            self._last_progress = (folder, done, total)
            self._progress(SyncProgress(self.mailbox, folder, done, total))

    def _sync(self, state: FolderState, status: FolderStatus) -> FolderSyncResult:
        self._status = status
        self._last_progress = None
        validity_changed = state.uidvalidity is not None and state.uidvalidity != status.uidvalidity
        if validity_changed:
            state, status = self._unless_flapping(state, status)
            self._status = status  # opened read-write, perhaps
            state = self._start_over(state, status)
        elif state.uidvalidity_flips:
            state = state.with_changes(uidvalidity_flips=0)  # one UIDVALIDITY kept ends a run of new ones
        self._read_write = state.open_read_write
        if not validity_changed and state.uidvalidity is not None and self._nothing_changed(state, status):
            self._states.put(state.with_changes(last_success=self._clock(), last_error=None))
            return FolderSyncResult(self.mailbox, status.name, 0, 0, True, status.uidvalidity, state.last_uid)

        previous_watermark, previous_modseq = state.last_uid, state.highestmodseq
        state = state.with_changes(uidvalidity=status.uidvalidity, extensions=tuple(sorted(self._session.extensions)))
        uidnext = status.uidnext or 0
        if self._limits.newest_first and state.last_uid == 0 and not state.known_uids and uidnext > 1:
            # A first sync, newest mail first: nothing is above UIDNEXT - 1 yet, and everything
            # below is the backfill, fetched in windows going down.
            state = state.with_changes(last_uid=uidnext - 1, backfill_floor=uidnext, messages=status.exists,
                                       backfill_started=self._clock(), backfill_fetched=0, backfill_bytes=0)
        self._states.put(state)
        state, fetched, quarantined = self._fetch_new(state, status)
        state, flags_changed, vanished = self._flag_changes(state, status, previous_watermark, previous_modseq)
        state, deleted = self._deletions(state, status, vanished)
        changed = bool(fetched or quarantined or flags_changed or deleted or validity_changed)
        state = state.with_changes(
            uidnext=status.uidnext, highestmodseq=status.highestmodseq, messages=status.exists,
            last_success=self._clock(), last_error=None, parse_failures=state.parse_failures + quarantined,
            last_server_event=self._clock() if changed else state.last_server_event,
        )
        self._states.put(state)
        self._report_progress(status.name, fetched, fetched)  # done: a bar whose total overshot ends full
        return FolderSyncResult(
            self.mailbox, status.name, fetched, quarantined, False, status.uidvalidity, state.last_uid,
            validity_changed, flags_changed, deleted, state.backfill_floor if state.backfill_floor > 1 else 0,
            self._budget_frees_at,
        )

    def _nothing_changed(self, state: FolderState, status: FolderStatus) -> bool:
        """One SELECT's worth of facts prove nothing happened, whatever the folder's size."""
        if status.uidnext is None or status.uidnext != state.uidnext or state.last_uid < status.uidnext - 1:
            return False
        if not self._session.condstore or status.highestmodseq is None:
            return False  # flag changes are invisible without MODSEQ: the fallback path must look
        return status.highestmodseq == state.highestmodseq and status.exists == len(UidSet.parse(state.known_uids))

    def _unless_flapping(self, state: FolderState, status: FolderStatus) -> tuple[FolderState, FolderStatus]:
        """A new UIDVALIDITY that may be the server's doing rather than the folder's.

        Courier-IMAP, for one, saves a folder's UIDs only when a session opens it read-write, so a
        folder no client ever opened so gets a new UIDVALIDITY at every EXAMINE, and each sync
        would tombstone and download it all again. Two syncs in a row finding a new UIDVALIDITY
        with as many messages as before is taken as that: the folder is opened read-write from
        now on (SELECT; bodies are still fetched with BODY.PEEK, so nothing changes on the
        server), which makes the server save its UIDs; this sync is the last to start over. If it
        goes on even read-write, nothing is downloaded again: the sync fails with the reason.
        """
        flips = state.uidvalidity_flips + 1 if status.exists == state.messages else 0
        state = state.with_changes(uidvalidity_flips=flips)
        if flips < 2:
            return state, status
        if state.open_read_write:
            self._states.put(state)
            raise ServerError(
                f"the server gives folder {status.name!r} a new UIDVALIDITY at every sync ({flips} in a row, "
                f"now {status.uidvalidity}) even when it is opened read-write; its messages are not downloaded "
                "again until it keeps one"
            )
        self._log.warning(
            "folder {folder!r} got a new UIDVALIDITY at {n} syncs in a row with the same {count} message(s): its "
            "server saves UIDs only for read-write sessions, so it is opened read-write from now on (bodies are "
            "still fetched with BODY.PEEK: no flag changes)", folder=status.name, n=flips, count=status.exists,
        )
        return state.with_changes(open_read_write=True), self._session.select(status.name, read_write=True)

    def _start_over(self, state: FolderState, status: FolderStatus) -> FolderState:
        """A new UIDVALIDITY: old UIDs mean nothing now, so their elements become tombstones."""
        old = UidSet.parse(state.known_uids)
        self._log.warning(
            "UIDVALIDITY of folder {folder!r} changed ({old} -> {new}); {n} element(s) tombstoned, syncing it afresh",
            folder=status.name, old=state.uidvalidity, new=status.uidvalidity, n=len(old),
        )
        assert state.uidvalidity is not None
        self._tombstone(status.name, state.uidvalidity, old)
        return FolderState(
            folder=status.name, last_attempt=state.last_attempt, deleted=state.deleted + len(old),
            parse_failures=state.parse_failures, watch_mode=state.watch_mode,
            uidvalidity_flips=state.uidvalidity_flips, open_read_write=state.open_read_write,
        )

    def _fetch_new(self, state: FolderState, status: FolderStatus) -> tuple[FolderState, int, int]:
        """New mail, window by window: plan (sizes) -> fetch -> parse -> build -> sink -> commit.

        The watermark follows the sink's acknowledgements whatever happens meanwhile: on the way
        out, even by an exception, what was handed over is committed in order.
        """
        total = max(status.exists - len(UidSet.parse(state.known_uids)), 0)
        tally = _Tally(total, UidSet.parse(state.poisoned_uids))
        commits = _Commits(self._states, state, self._max_in_flight, self._write_timeout)
        windows = UidWindows(state.last_uid, status.uidnext, self._limits)
        try:
            while (window := windows.next_window()) is not None:
                sizes = self._session.sizes(window.criteria)
                windows.record(len(sizes))
                if not sizes and window.last is not None:
                    # Nothing exists below where the gap ends: the watermark may pass it.
                    commits.passed(self._skip_gap(windows, window.last, status.uidnext))
                self._fetch_window(sizes, status, commits, tally)
                if window.last is not None:
                    # Every UID up to the window's end that existed has been handed over.
                    commits.passed(window.last)
            if commits.state.backfill_floor > 1:
                self._backfill(status, commits, tally)
        finally:
            state = commits.drain()
        return state, tally.fetched, tally.quarantined

    def _backfill(self, status: FolderStatus, commits: _Commits, tally: _Tally) -> None:
        """Older mail, newest first: windows going down from the backfill's floor to UID 1.

        Each batch's commit lowers the floor to its lowest UID (the batches of a window go down
        too), so an interruption re-fetches only what was in flight. Mail that arrives meanwhile
        is fetched before the next window once ``arrivals_check_seconds`` have passed since the
        last look, not after the whole backfill.
        """
        windows = DescendingWindows(commits.state.backfill_floor, self._limits)
        top = max(commits.state.last_uid, (status.uidnext or 1) - 1)
        looked = self._monotonic()
        while (window := windows.next_window()) is not None:
            self._stop_if_asked(status.name)
            if self._monotonic() - looked >= self._arrivals_check_seconds:
                top = self._fetch_arrivals(top, status, commits, tally)
                looked = self._monotonic()
            if self._budget_used_up(status.name):
                return  # not even the window's sizes: they cost the provider's bandwidth too
            sizes = self._session.sizes(window.criteria)
            windows.record(len(sizes))
            if not self._fetch_window(sizes, status, commits, tally, descending=True):
                return  # the budget ran out inside the window
            floor = window.first
            if not sizes and floor - 1 > self._limits.max_window_uids:
                # A sparse UID space (old mail deleted, a server that numbers from 2**31): one UID
                # SEARCH finds the next message down instead of thousands of empty windows.
                below = self._session.uids_between(1, floor - 1).max
                floor = below + 1 if below is not None else 1
                windows.skip_to(floor)
            commits.passed(0, floor=floor)

    def _budget_used_up(self, folder: str) -> bool:
        """The download budget is spent: the backfill stops here; until when is kept for the
        sync's result and said in the log."""
        if self._budget is None or not self._budget.exhausted():
            return False
        frees = self._budget.resets_at()
        self._budget_frees_at = utc_iso(frees) if frees else None
        self._log.info("the mailbox's daily download budget is used up: the older mail of folder {folder!r} waits "
                       "until {at} (new mail still comes in)", folder=folder, at=self._budget_frees_at)
        return True

    def _fetch_arrivals(self, top: int, status: FolderStatus, commits: _Commits, tally: _Tally) -> int:
        """Mail that arrived above ``top`` since the sync began; returns the new top."""
        sizes = self._session.sizes(f"{top + 1}:*")
        if not sizes:
            return top
        tally.total += len(sizes)
        self._fetch_window(sizes, status, commits, tally)
        top = max(sizes)
        commits.passed(top)
        return top

    def _fetch_window(
        self, sizes: dict[int, int], status: FolderStatus, commits: _Commits, tally: _Tally, descending: bool = False,
    ) -> bool:
        """The batches of one window, pipelined: one batch is parsed (in the pool's processes)
        while the next one is read from IMAP, then built and handed to the sink. ``descending``
        (the backfill): the highest batch first, each lowering the floor, not raising the watermark,
        and none once the download budget is used up (returns False: the window was left unfinished)."""
        parsing: _Parsing | None = None
        planned = deque(plan_batches(sizes, self._limits))
        if descending:
            planned.reverse()
        finished = True
        while planned:
            uids = planned.popleft()
            try:
                self._stop_if_asked(status.name)
                if descending and self._budget_used_up(status.name):
                    finished = False
                    break
                batch, rest = self._fetch_batch(uids, sizes)
            except (MailError, SyncInterrupted):
                # The batch before this one arrived whole: store it rather than fetch it again.
                if parsing is not None:
                    tally.quarantined += self._hand_over(parsing, status, commits)
                raise
            if self._budget is not None:
                self._budget.spend(sum(len(message.raw) for message in batch.messages))
            if rest:  # the server sent more than it announced: its sizes cannot plan the rest, one each
                # (in the order of the walk: going down, the highest first, each a floor of its own)
                planned.extendleft([uid] for uid in (rest if descending else reversed(rest)))
            if descending:  # what was cut off the batch lies above it: the floor waits for those
                watermark, floor = 0, (None if rest else uids[0])
            else:
                watermark, floor = (rest[0] - 1 if rest else uids[-1]), None
            started = _Parsing(start_parsing(batch, tally.poisoned, self._parse_pool), watermark, floor)
            if parsing is not None:
                tally.quarantined += self._hand_over(parsing, status, commits)
            parsing = started
            tally.fetched += len(batch.messages)
            self._report_progress(status.name, tally.fetched, max(tally.total, tally.fetched))
        if parsing is not None:
            tally.quarantined += self._hand_over(parsing, status, commits)
        return finished

    def _stop_if_asked(self, folder: str) -> None:
        """Stop at a batch boundary: what was handed over is still committed on the way out."""
        if self._should_stop():
            raise SyncInterrupted(f"sync of {folder!r} interrupted by shutdown; it resumes next time")

    def _hand_over(self, parsing: _Parsing, status: FolderStatus, commits: _Commits) -> int:
        """Build a parsed batch's elements and hand them to the sink; returns how many were set aside.

        Every UID of the batch becomes known at its commit, whether stored, quarantined or a Gmail
        duplicate, so none is fetched again.
        """
        size = sum(len(message.raw) for message in parsing.batch.fetched.messages)  # build lets the bytes go
        built = self._elements.build(parsing.batch, status.name, status.uidvalidity)
        pending = self._sink.write(built.elements)
        if built.attachments and self._attachments is not None:
            # Told after the write, so the processor's results reach the sink after the element.
            pending = _Both(pending, self._attachments.submit(built.attachments))
        commits.written(pending, parsing.batch.fetched.uids, parsing.watermark, parsing.floor, size)
        return len(built.quarantined)

    def _skip_gap(self, windows: UidWindows, after: int, uidnext: int | None) -> int:
        """An empty window: where UIDs are sparse (old mail deleted, a server that numbers from
        2**31), one UID SEARCH finds the next message instead of thousands of empty windows.
        Returns the last UID known to hold nothing."""
        if uidnext is None or uidnext - 1 - after <= self._limits.max_window_uids:
            return after
        rest = self._session.uids_between(after + 1, uidnext - 1)
        next_uid = rest.min if rest.min is not None else uidnext
        windows.skip_to(next_uid)
        return next_uid - 1

    def _fetch_batch(self, uids: list[int], sizes: dict[int, int]) -> tuple[FetchedBatch, list[int]]:
        """Fetch one planned batch so that every UID ends stored, set aside with a reason, or gone.

        A message over the size limit is not downloaded (its headers are kept in the quarantine);
        a batch the server refuses is fetched in halves down to single messages, and the one it
        still refuses is set aside with the server's answer; a UID answered without its body is
        asked for again alone, and set aside if the body still does not come.

        A server whose sizes lie may send far more than the batch was planned for; once the batch
        holds ``max_bytes``, the UIDs from the next one it must ask for again are returned as the
        rest, to be fetched one by one (the first UID is always kept, so each batch makes
        progress), and the batch in memory stays within ``max_bytes`` plus two messages.
        """
        limit = self._limits.max_message_bytes
        too_large = {uid: sizes[uid] for uid in uids if sizes.get(uid, 0) > limit}
        batch = FetchedBatch([], [])
        missing = self._fetch_halving([uid for uid in uids if uid not in too_large], batch, too_large, sizes)
        rest: list[int] = []
        for uid in missing:
            if uid != uids[0] and sum(len(m.raw) for m in batch.messages) >= self._limits.max_bytes:
                rest = [later for later in uids if later >= uid]
                batch.messages[:] = [m for m in batch.messages if m.uid < uid]
                batch.undelivered[:] = [u for u in batch.undelivered if u.message.uid < uid]
                too_large = {big: size for big, size in too_large.items() if big < uid}
                break
            again = self._fetch_halving([uid], batch, too_large, sizes)
            if again and uid in self._session.uids_between(uid, uid):
                batch.undelivered.append(Undelivered(
                    placeholder(uid), "the server did not send the message although it lists it (asked twice)"
                ))
            # Otherwise it was expunged meanwhile: nothing to store, nothing lost.
        if too_large:
            self._set_aside_too_large(too_large, batch)
        batch.messages.sort(key=lambda m: m.uid)
        batch.undelivered.sort(key=lambda u: u.message.uid)
        return batch, rest

    def _fetch_halving(
        self, uids: list[int], batch: FetchedBatch, too_large: dict[int, int], sizes: dict[int, int]
    ) -> list[int]:
        """Fetch ``uids`` into ``batch``, halving on a refusal; returns the UIDs that came without a body
        (or with more bytes than the batch's announced ``sizes`` leave room for: asked for alone)."""
        if not uids:
            return []
        try:
            answer = self._session.fetch_messages(uids, sum(sizes.get(uid, 0) for uid in uids))
        except CommandTimedOut as exc:
            return self._after_timeout(uids, batch, too_large, sizes, exc)
        except (ServerError, ServerHungUp) as exc:
            if isinstance(exc, ServerHungUp):
                # Dovecot says BYE and hangs up when it cannot read one message of a FETCH: it is
                # found like a refused batch's, on a new connection each time.
                self._reopen(str(exc))
                if len(uids) == 1 and uids[0] not in self._hung_up_on:
                    self._hung_up_on.add(uids[0])  # once more, alone: a server restarting says BYE too
                    return self._fetch_halving(uids, batch, too_large, sizes)
            if len(uids) == 1:
                self._log.warning("the server cannot send UID {uid} of folder {folder!r}; it is quarantined: {error}",
                                  uid=uids[0], folder=self._folder_name(), error=str(exc))
                batch.undelivered.append(Undelivered(placeholder(uids[0]), f"the server could not send it: {exc}"))
                return []
            self._log.info("the server refused a batch of {n} of folder {folder!r}; fetching it in halves", n=len(uids),
                           folder=self._folder_name())
            half = len(uids) // 2
            return (self._fetch_halving(uids[:half], batch, too_large, sizes)
                    + self._fetch_halving(uids[half:], batch, too_large, sizes))
        batch.messages.extend(answer.messages)
        too_large.update(answer.too_large)
        return answer.missing

    def _after_timeout(
        self, uids: list[int], batch: FetchedBatch, too_large: dict[int, int], sizes: dict[int, int],
        exc: CommandTimedOut,
    ) -> list[int]:
        """A FETCH ran past its deadline: the connection died, or the server cannot send a message.

        On a new connection the messages are asked for one at a time; one that runs out of time
        again, alone, is not delivered: it is quarantined with the reason, as a UID asked for
        twice and never sent is. A server or network that fails as a whole fails the reconnection
        or its SELECT instead, which stops the sync with nothing of the batch set aside.
        """
        self._reopen(str(exc))
        if len(uids) > 1:
            self._log.info("a FETCH of {n} messages of folder {folder!r} ran out of time; asking for them one at a "
                           "time", n=len(uids), folder=self._folder_name())
            self._timed_out_on.update(uids)
            return [uid for one in uids for uid in self._fetch_halving([one], batch, too_large, sizes)]
        uid = uids[0]
        if uid not in self._timed_out_on:
            self._timed_out_on.add(uid)
            return self._fetch_halving(uids, batch, too_large, sizes)
        self._log.warning("the server did not send UID {uid} of folder {folder!r} in time, twice; it is quarantined: "
                          "{error}", uid=uid, folder=self._folder_name(), error=str(exc))
        batch.undelivered.append(Undelivered(placeholder(uid, sizes.get(uid, 0)),
                                             f"the server did not send it in time, asked twice: {exc}"))
        return []

    def _reopen(self, why: str) -> None:
        """A new connection with the folder selected again, or the sync stops (it resumes later)."""
        status = self._status
        if self._reconnect is None or status is None:
            raise ConnectionFailed(why)
        self._session = self._reconnect()
        again = self._session.select(status.name, read_write=self._read_write)
        if again.uidvalidity != status.uidvalidity:
            raise ConnectionFailed(f"{why}; meanwhile the folder's UIDVALIDITY changed: it is synced afresh next time")

    def _set_aside_too_large(self, too_large: dict[int, int], batch: FetchedBatch) -> None:
        headers = {m.uid: m for m in self._session.fetch_headers(sorted(too_large))}
        limit = self._limits.max_message_bytes
        for uid, size in sorted(too_large.items()):
            reason = (
                f"message too large: {size} bytes, over the limit of {limit} ([sync] max_message_bytes); "
                "only its headers were fetched"
            )
            batch.undelivered.append(Undelivered(headers.get(uid) or placeholder(uid, size), reason))

    def _flag_changes(
        self, state: FolderState, status: FolderStatus, watermark: int, modseq: int | None
    ) -> tuple[FolderState, int, UidSet]:
        """New flags of messages known before this sync; also the UIDs QRESYNC says vanished."""
        if watermark == 0:
            return state, 0, UidSet()
        known = UidSet.parse(state.known_uids)
        if self._session.condstore and modseq is not None and status.highestmodseq is not None:
            if status.highestmodseq == modseq:
                return state, 0, UidSet()
            changes = self._session.changes_since(modseq, watermark)
            flags, vanished = changes.flags, changes.vanished
        else:
            flags = self._session.flags(f"1:{watermark}")
            digest = _flags_digest(flags)
            vanished = UidSet()
            if digest == state.flags_digest:
                return state, 0, vanished
            state = state.with_changes(flags_digest=digest)
        updates = [
            (ElementKey(self.mailbox, status.name, status.uidvalidity, uid), stored_flags(value))
            for uid, value in sorted(flags.items())
            if uid in known
        ]
        changed = self._wait(self._sink.update_flags(updates)) if updates else 0
        return state, int(changed or 0), vanished.intersection(known)

    def _deletions(self, state: FolderState, status: FolderStatus, vanished: UidSet) -> tuple[FolderState, int]:
        known = UidSet.parse(state.known_uids)
        gone = vanished
        if len(known.difference(gone)) != status.exists:
            # The count does not add up: ask the server which UIDs it still has.
            # Up to the highest known UID too: mail that arrived during a backfill is above UIDNEXT's.
            up_to = max((status.uidnext - 1) if status.uidnext else 0, known.max or 0)
            if up_to > 0:
                gone = known.difference(self._session.uids(up_to))
        if not gone:
            return state, 0
        self._tombstone(status.name, status.uidvalidity, gone)
        self._log.info("{n} message(s) of folder {folder!r} deleted on the server; tombstoned", n=len(gone),
                       folder=status.name)
        state = state.with_changes(known_uids=str(known.difference(gone)), deleted=state.deleted + len(gone))
        self._states.put(state)
        return state, len(gone)

    # -- helpers -------------------------------------------------------------------------------

    def _tombstone(self, folder: str, uidvalidity: int, uids: UidSet) -> None:
        keys = [ElementKey(self.mailbox, folder, uidvalidity, uid) for uid in uids]
        for start in range(0, len(keys), self._limits.max_messages):
            self._wait(self._sink.mark_deleted(keys[start : start + self._limits.max_messages]))

    def _wait(self, pending: PendingWrite) -> Any:
        return pending.get(timeout=self._write_timeout)

    def _set_aside(self, entry: SetAside) -> None:
        """Quarantine a message with its bytes (only its header under metadata-only consent)."""
        message = entry.message
        self._quarantine.add(complete=entry.complete,
            mailbox=self.mailbox, folder=entry.key.folder, uidvalidity=entry.key.uidvalidity, uid=message.uid,
            reason=entry.reason, raw=message.raw if "content" in self._scopes else header_block(message.raw),
            now=self._clock(), flags=stored_flags(message.flags),
            internal_date=message.internal_date.isoformat() if message.internal_date else None,
        )
        self._progress(MessageQuarantined(self.mailbox, entry.key.folder, message.uid, entry.reason))


def header_block(raw: bytes) -> bytes:
    """The message's header section only: what a quarantine may keep under metadata-only consent
    (the body is content the user did not agree to have stored)."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(separator)
        if end >= 0:
            return raw[: end + len(separator)]
    return raw  # no blank line: it is all header


def _flags_digest(flags: dict[int, tuple[str, ...]]) -> str:
    digest = hashlib.sha256()
    for uid in sorted(flags):
        digest.update(f"{uid}:{' '.join(stored_flags(flags[uid]))}\n".encode())
    return digest.hexdigest()
