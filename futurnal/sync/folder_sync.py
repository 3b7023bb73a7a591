"""One folder's sync, as plain code: SELECT, then new mail, flag changes and deletions.

The actor around it only supplies a connected session and a sink; everything that decides *what*
to fetch and *when the watermark may move* lives here and is tested without threads.

Per sync, in order (DESIGN.md section 4):

1. SELECT (EXAMINE). A new UIDVALIDITY tombstones every element of the old one and starts over.
2. Nothing changed (same UIDNEXT and HIGHESTMODSEQ, all known UIDs accounted for): done.
3. New mail: UIDs above the watermark, in windows and bounded batches, written before the
   watermark moves past them.
4. Flag changes: ``CHANGEDSINCE`` the stored MODSEQ (with QRESYNC, ``VANISHED`` comes along);
   without CONDSTORE, every flag is fetched and compared by digest.
5. Deletions: vanished UIDs, or (when the message count says something is missing) a UID SEARCH
   diffed against the known set. Deleted messages become tombstones, never silent removals.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from loguru import logger

from futurnal.attachments.plan import AttachmentWork, plan_attachments
from futurnal.attachments.settings import AttachmentSettings
from futurnal.storage.clock import utc_now
from futurnal.storage.element_store import ElementKey
from futurnal.storage.gmail_index import GmailMessageIndex
from futurnal.storage.quarantine import QuarantineStore
from futurnal.storage.sync_state import FolderState, FolderStateStore

from futurnal.element.build import ALL_SCOPES, build_element, stored_flags
from futurnal.imap.errors import ConnectionFailed, MailError, ServerError, ServerHungUp
from .fetch_plan import BatchLimits, UidWindows, plan_batches
from futurnal.parse.parse_pool import ParseBatch, ParseFailure, ParseOutcome, ParsePool
from futurnal.parse.parser import parse_message
from futurnal.imap.fetched import FetchedMessage
from futurnal.imap.session import FolderStatus, ImapSession
from futurnal.imap.uidset import UidSet

__all__ = [
    "AttachmentPort",
    "FolderSync",
    "FolderSyncResult",
    "header_block",
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

    def get(self, timeout: float | None = None) -> Any: ...


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


@dataclass(slots=True)
class _InFlight:
    pending: PendingWrite
    uids: list[int]
    watermark: int


class _Both:
    """Two writes that must both be durable before the watermark moves."""

    def __init__(self, first: PendingWrite, second: PendingWrite) -> None:
        self._first, self._second = first, second

    def get(self, timeout: float | None = None) -> Any:
        self._second.get(timeout=timeout)
        return self._first.get(timeout=timeout)


@dataclass(slots=True)
class _Parsing:
    """A fetched batch on its way through the parser; ``parses`` is None when parsed in-process."""

    messages: list[FetchedMessage]
    poisoned: UidSet
    watermark: int
    parses: ParseBatch | None
    #: Asked for and not delivered whole (too large, refused, never sent), with why: quarantined.
    undelivered: list[_Undelivered]

    @property
    def uids(self) -> list[int]:
        return [m.uid for m in self.messages] + [u.message.uid for u in self.undelivered]


@dataclass(frozen=True, slots=True)
class _Undelivered:
    """A message the server did not deliver whole; ``message.raw`` is what came (headers, or nothing)."""

    message: FetchedMessage
    reason: str


@dataclass(slots=True)
class _Batch:
    """What fetching one planned batch brought: messages, and those set aside with a reason."""

    messages: list[FetchedMessage]
    undelivered: list[_Undelivered]


class _Done:
    """An already-complete write, used to move the watermark to a window's end in order."""

    def get(self, timeout: float | None = None) -> None:
        return None


class FolderSync:
    """Syncs folders of one mailbox into the sink, resuming from the stored state.

    Back-pressure: at most ``max_in_flight`` batches wait on the sink at once. The watermark and
    the known-UID set only move when the sink has acknowledged a batch, so a crash anywhere
    re-fetches rather than loses.
    """

    def __init__(
        self,
        *,
        mailbox: str,
        session: ImapSession,
        states: FolderStateStore,
        sink: SinkPort,
        quarantine: QuarantineStore,
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
        reconnect: Callable[[], ImapSession] | None = None,
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
        self._gmail_index = gmail_index
        self._fault_hook = fault_hook
        self._scopes = scopes
        self._attachments = attachments
        self._parse_pool = parse_pool
        self._reconnect = reconnect
        #: UIDs that, asked for alone, made the server hang up once in this sync.
        self._hung_up_on: set[int] = set()
        self._status: FolderStatus | None = None
        #: The message being turned into an element, as ``folder\x00uidvalidity\x00uid``: what a
        #: crash right now would be blamed on.
        self.in_flight: str | None = None
        self._log = logger.bind(mailbox=mailbox)

    def run(self, folder: str) -> FolderSyncResult:
        attempt = self._clock()
        try:
            status = self._session.select(folder)
            return self._sync(self._states.get(folder).with_changes(last_attempt=attempt), status)
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
        self._log.warning("a synced folder is gone from the server; {n} element(s) tombstoned", n=len(known))
        return len(known)

    # -- the algorithm -------------------------------------------------------------------------

    def _sync(self, state: FolderState, status: FolderStatus) -> FolderSyncResult:
        self._status = status
        validity_changed = state.uidvalidity is not None and state.uidvalidity != status.uidvalidity
        if validity_changed:
            state = self._start_over(state, status)
        elif state.uidvalidity is not None and self._nothing_changed(state, status):
            self._states.put(state.with_changes(last_success=self._clock(), last_error=None))
            return FolderSyncResult(self.mailbox, status.name, 0, 0, True, status.uidvalidity, state.last_uid)

        previous_watermark, previous_modseq = state.last_uid, state.highestmodseq
        state = state.with_changes(uidvalidity=status.uidvalidity, extensions=tuple(sorted(self._session.extensions)))
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
        self._progress(SyncProgress(self.mailbox, status.name, fetched, fetched))
        return FolderSyncResult(
            self.mailbox, status.name, fetched, quarantined, False, status.uidvalidity, state.last_uid,
            validity_changed, flags_changed, deleted,
        )

    def _nothing_changed(self, state: FolderState, status: FolderStatus) -> bool:
        """One SELECT's worth of facts prove nothing happened, whatever the folder's size."""
        if status.uidnext is None or status.uidnext != state.uidnext or state.last_uid < status.uidnext - 1:
            return False
        if not self._session.condstore or status.highestmodseq is None:
            return False  # flag changes are invisible without MODSEQ: the fallback path must look
        return status.highestmodseq == state.highestmodseq and status.exists == len(UidSet.parse(state.known_uids))

    def _start_over(self, state: FolderState, status: FolderStatus) -> FolderState:
        """A new UIDVALIDITY: old UIDs mean nothing now, so their elements become tombstones."""
        old = UidSet.parse(state.known_uids)
        self._log.warning(
            "UIDVALIDITY of a folder changed ({old} -> {new}); {n} element(s) tombstoned, syncing it afresh",
            old=state.uidvalidity, new=status.uidvalidity, n=len(old),
        )
        assert state.uidvalidity is not None
        self._tombstone(status.name, state.uidvalidity, old)
        return FolderState(
            folder=status.name, last_attempt=state.last_attempt, deleted=state.deleted + len(old),
            parse_failures=state.parse_failures, watch_mode=state.watch_mode,
        )

    def _fetch_new(self, state: FolderState, status: FolderStatus) -> tuple[FolderState, int, int]:
        folder = status.name
        known = UidSet.parse(state.known_uids)
        total = max(status.exists - len(known), 0)
        fetched = quarantined = 0
        in_flight: deque[_InFlight] = deque()
        windows = UidWindows(state.last_uid, status.uidnext, self._limits)
        # One batch is parsed (in the pool's processes) while the next one is read from IMAP.
        parsing: _Parsing | None = None

        def hand_over(batch: _Parsing) -> None:
            nonlocal state, quarantined
            elements, bad, work = self._to_elements(batch, folder, status.uidvalidity)
            quarantined += len(bad)
            pending = self._sink.write(elements)
            if work and self._attachments is not None:
                # Told after the write, so the processor's results reach the sink after the element.
                pending = _Both(pending, self._attachments.submit(work))
            # Known: every fetched UID, whether stored, quarantined or a Gmail duplicate.
            in_flight.append(_InFlight(pending, batch.uids, batch.watermark))
            while len(in_flight) >= self._max_in_flight:
                state = self._commit(state, in_flight.popleft())

        try:
            while (window := windows.next_window()) is not None:
                sizes = self._session.sizes(window.criteria)
                windows.record(len(sizes))
                if not sizes and window.last is not None:
                    # Nothing exists below where the gap ends: the watermark may pass it.
                    gap_end = self._skip_gap(windows, window.last, status.uidnext)
                    in_flight.append(_InFlight(_Done(), [], gap_end))
                for uids in plan_batches(sizes, self._limits):
                    if self._should_stop():
                        raise SyncInterrupted(f"sync of {folder!r} interrupted by shutdown; it resumes next time")
                    batch = self._fetch_batch(uids, sizes)
                    started = self._start_parsing(batch, UidSet.parse(state.poisoned_uids), uids[-1])
                    if parsing is not None:
                        hand_over(parsing)
                    parsing = started
                    fetched += len(batch.messages)
                    self._progress(SyncProgress(self.mailbox, folder, fetched, max(total, fetched)))
                if parsing is not None:
                    hand_over(parsing)
                    parsing = None
                if window.last is not None:
                    # Every UID up to the window's end that existed has been handed over.
                    in_flight.append(_InFlight(_Done(), [], window.last))
        finally:
            while in_flight:
                state = self._commit(state, in_flight.popleft())
        return state, fetched, quarantined

    def _skip_gap(self, windows: UidWindows, after: int, uidnext: int | None) -> int:
        """An empty window: where UIDs are sparse (old mail deleted, a server that numbers from
        2**31), one UID SEARCH finds the next message instead of thousands of empty windows.
        Returns the last UID known to hold nothing."""
        if uidnext is None or uidnext - 1 - after <= self._limits.max_window_uids:
            return after
        rest = self._session.uids_between(after + 1, uidnext - 1)
        next_uid = rest.min if rest else uidnext
        windows.skip_to(next_uid)
        return next_uid - 1

    def _fetch_batch(self, uids: list[int], sizes: dict[int, int]) -> _Batch:
        """Fetch one planned batch so that every UID ends stored, set aside with a reason, or gone.

        A message over the size limit is not downloaded (its headers are kept in the quarantine);
        a batch the server refuses is fetched in halves down to single messages, and the one it
        still refuses is set aside with the server's answer; a UID answered without its body is
        asked for again alone, and set aside if the body still does not come.
        """
        limit = self._limits.max_message_bytes
        too_large = {uid: sizes[uid] for uid in uids if sizes.get(uid, 0) > limit}
        batch = _Batch([], [])
        missing = self._fetch_halving([uid for uid in uids if uid not in too_large], batch, too_large)
        for uid in missing:
            again = self._fetch_halving([uid], batch, too_large)
            if again and uid in self._session.uids_between(uid, uid):
                batch.undelivered.append(_Undelivered(
                    _placeholder(uid), "the server did not send the message although it lists it (asked twice)"
                ))
            # Otherwise it was expunged meanwhile: nothing to store, nothing lost.
        if too_large:
            self._set_aside_too_large(too_large, batch)
        batch.messages.sort(key=lambda m: m.uid)
        batch.undelivered.sort(key=lambda u: u.message.uid)
        return batch

    def _fetch_halving(self, uids: list[int], batch: _Batch, too_large: dict[int, int]) -> list[int]:
        """Fetch ``uids`` into ``batch``, halving on a refusal; returns the UIDs that came without a body."""
        if not uids:
            return []
        try:
            answer = self._session.fetch_messages(uids)
        except (ServerError, ServerHungUp) as exc:
            if isinstance(exc, ServerHungUp):
                # Dovecot says BYE and hangs up when it cannot read one message of a FETCH: it is
                # found like a refused batch's, on a new connection each time.
                self._reopen(str(exc))
                if len(uids) == 1 and uids[0] not in self._hung_up_on:
                    self._hung_up_on.add(uids[0])  # once more, alone: a server restarting says BYE too
                    return self._fetch_halving(uids, batch, too_large)
            if len(uids) == 1:
                self._log.warning("the server cannot send one message; it is quarantined: {error}", error=str(exc))
                batch.undelivered.append(_Undelivered(_placeholder(uids[0]), f"the server could not send it: {exc}"))
                return []
            self._log.info("the server refused a batch of {n}; fetching it in halves", n=len(uids))
            half = len(uids) // 2
            return self._fetch_halving(uids[:half], batch, too_large) + self._fetch_halving(uids[half:], batch, too_large)
        batch.messages.extend(answer.messages)
        too_large.update(answer.too_large)
        return answer.missing

    def _reopen(self, why: str) -> None:
        """A new connection with the folder selected again, or the sync stops (it resumes later)."""
        status = self._status
        if self._reconnect is None or status is None:
            raise ConnectionFailed(why)
        self._session = self._reconnect()
        again = self._session.select(status.name)
        if again.uidvalidity != status.uidvalidity:
            raise ConnectionFailed(f"{why}; meanwhile the folder's UIDVALIDITY changed: it is synced afresh next time")

    def _set_aside_too_large(self, too_large: dict[int, int], batch: _Batch) -> None:
        headers = {m.uid: m for m in self._session.fetch_headers(sorted(too_large))}
        limit = self._limits.max_message_bytes
        for uid, size in sorted(too_large.items()):
            reason = (
                f"message too large: {size} bytes, over the limit of {limit} ([sync] max_message_bytes); "
                "only its headers were fetched"
            )
            batch.undelivered.append(_Undelivered(headers.get(uid) or _placeholder(uid, size), reason))

    def _start_parsing(self, batch: _Batch, poisoned: UidSet, watermark: int) -> _Parsing:
        """Hand a batch to the parse pool (when there is one) and return at once."""
        wanted = [m.raw for m in batch.messages if m.uid not in poisoned]
        parses = None
        if self._parse_pool is not None and wanted:
            parses = self._parse_pool.submit(wanted)
        return _Parsing(batch.messages, poisoned, watermark, parses, batch.undelivered)

    def _commit(self, state: FolderState, flight: _InFlight) -> FolderState:
        """Wait until the sink has the batch durably, then move the watermark past it."""
        flight.pending.get(timeout=self._write_timeout)
        known = UidSet.parse(state.known_uids).union(flight.uids) if flight.uids else None
        if flight.watermark > state.last_uid or known is not None:
            state = state.with_changes(
                last_uid=max(state.last_uid, flight.watermark),
                known_uids=str(known) if known is not None else state.known_uids,
            )
            self._states.put(state)
        return state

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
            up_to = (status.uidnext - 1) if status.uidnext else (known.max or 0)
            if up_to > 0:
                gone = known.difference(self._session.uids(up_to))
        if not gone:
            return state, 0
        self._tombstone(status.name, status.uidvalidity, gone)
        self._log.info("{n} message(s) deleted on the server; tombstoned", n=len(gone))
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

    def _to_elements(self, batch: _Parsing, folder: str, uidvalidity: int) -> tuple[list[dict[str, Any]], list[int], list[AttachmentWork]]:
        elements: list[dict[str, Any]] = []
        bad: list[int] = []
        work: list[AttachmentWork] = []
        outcomes = iter(batch.parses.outcomes()) if batch.parses is not None else None
        for undelivered in batch.undelivered:
            self._set_aside(undelivered.message, folder, uidvalidity, undelivered.reason, complete=False)
            bad.append(undelivered.message.uid)
        for message in batch.messages:
            if message.uid in batch.poisoned:
                self._set_aside(message, folder, uidvalidity, "crashed the fetcher repeatedly")
                bad.append(message.uid)
                continue
            self.in_flight = f"{folder}\x00{uidvalidity}\x00{message.uid}"
            if self._fault_hook is not None:
                self._fault_hook(message.raw)
            outcome = next(outcomes) if outcomes is not None else self._parse_here(message)
            if isinstance(outcome, ParseFailure):
                # The class name only: a parser traceback can quote header text (subjects, addresses).
                self._log.error("a message could not be parsed ({reason}); quarantined", reason=outcome.reason)
                self._set_aside(message, folder, uidvalidity, outcome.reason)
                bad.append(message.uid)
                continue
            if self._already_stored_elsewhere(message, folder, uidvalidity):
                continue
            element = build_element(
                outcome, message, mailbox=self.mailbox, folder=folder, uidvalidity=uidvalidity, scopes=self._scopes
            )
            if self._attachments is not None and outcome.attachments:
                planned = plan_attachments(element, outcome.attachments, self._attachments.settings)
                if planned is not None:
                    work.append(planned)
            elements.append(element)
        self.in_flight = None
        return elements, bad, work

    @staticmethod
    def _parse_here(message: FetchedMessage) -> ParseOutcome:
        """Parse in this process: without a pool, or when the pool could not go on."""
        try:
            return parse_message(message.raw)
        except Exception as exc:  # a parser bug must not stop the folder: set the message aside
            return ParseFailure(f"parse failed: {exc.__class__.__name__}")

    def _set_aside(
        self, message: FetchedMessage, folder: str, uidvalidity: int, reason: str, *, complete: bool = True
    ) -> None:
        self._quarantine.add(complete=complete,
            mailbox=self.mailbox, folder=folder, uidvalidity=uidvalidity, uid=message.uid, reason=reason,
            raw=message.raw if "content" in self._scopes else header_block(message.raw), now=self._clock(),
            flags=stored_flags(message.flags),
            internal_date=message.internal_date.isoformat() if message.internal_date else None,
        )
        self._progress(MessageQuarantined(self.mailbox, folder, message.uid, reason))

    def _already_stored_elsewhere(self, message: FetchedMessage, folder: str, uidvalidity: int) -> bool:
        """Gmail shows one message under every label: store it once, where it was first seen.

        The skipped copy still counts as known in its folder, so it is not fetched again.
        """
        if self._gmail_index is None or message.gmail is None:
            return False
        key = ElementKey(self.mailbox, folder, uidvalidity, message.uid)
        owner = self._gmail_index.owner(message.gmail.msgid)
        if owner is not None and owner != key:
            return True
        self._gmail_index.claim(message.gmail.msgid, key)
        return False


def _placeholder(uid: int, size: int = 0) -> FetchedMessage:
    """Stands for a message of which nothing arrived, so it can be quarantined by its UID."""
    return FetchedMessage(uid=uid, raw=b"", flags=(), internal_date=None, size=size)


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
