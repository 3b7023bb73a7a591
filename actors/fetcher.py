"""FetcherActor: runs folder syncs for one mailbox over its own IMAP connection."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from loguru import logger

from futurnal.attachments.plan import AttachmentWork
from futurnal.attachments.settings import AttachmentSettings
from futurnal.config import ServiceSettings
from futurnal.events import EventBus
from futurnal.imap.connector import MailboxConnector
from futurnal.imap.errors import AuthenticationFailed, ConnectionFailed, MailError, ProviderLimited
from futurnal.imap.fetched import FetchAnswer
from futurnal.imap.server_answers import TooManyConnections
from futurnal.imap.session import ImapSession
from futurnal.imap.uidset import UidSet
from futurnal.parse.parse_pool import ParsePool, PoolUnavailable
from futurnal.parse.parse_pools import ParsePools
from futurnal.process import stage_cpu
from futurnal.process.faults import crash_hook_from_env
from futurnal.storage.audit_log import AuditEvent
from futurnal.storage.clock import parse_utc, utc_now
from futurnal.storage.consent import SCOPES, NoConsent
from futurnal.storage.data_dir import DataDir
from futurnal.storage.element_store import ElementKey
from futurnal.storage.errors import LocalFault, StorageError, local_fault
from futurnal.storage.gmail_index import GmailMessageIndex
from futurnal.storage.registry import MailboxRecord
from futurnal.storage.sync_state import FolderStateStore
from futurnal.supervisors.directory import ActorDirectory
from futurnal.supervisors.protocol import PoisonMessage
from futurnal.sync.download_budget import BYTES_PER_MB, DownloadBudget
from futurnal.sync.folder_plan import missing_folders, plan_folders
from futurnal.sync.folder_selection import FolderSpec, is_pattern
from futurnal.sync.folder_sync import FolderSync, FolderSyncResult, PendingWrite, SyncInterrupted
from futurnal.sync.message_key import MessageKey
from futurnal.sync.provider_holds import HoldPolicy, MailboxHold, MailboxThrottled, Slowdown, held_text

from . import actor_names
from .messages import (
    FoldersResolved,
    FolderSynced,
    FolderWatchSeen,
    MarkDeleted,
    ResolveFolders,
    SubmitAttachments,
    SyncFolder,
    UpdateFlags,
    WriteElements,
)
from .service_actor import ServiceActor

__all__ = ["FetcherActor"]

_T = TypeVar("_T")

# Said after a local fault's own text ("disk full at /data: free space"): what becomes of the sync.
_RESUMES = "; nothing was lost: the sync resumes where it stopped (`run` retries by itself)"


class FetcherActor(ServiceActor):
    """Owns the mailbox's sync connection and its folder-state file (the file's only writer)."""

    def __init__(
        self,
        *,
        record: MailboxRecord,
        settings: ServiceSettings,
        data_dir: DataDir,
        connect: MailboxConnector,
        directory: ActorDirectory,
        events: EventBus,
        stopping: threading.Event,
        parse_pools: ParsePools,
        supervisor: Any = None,
    ) -> None:
        super().__init__(child_id=actor_names.fetcher(record.id), supervisor=supervisor)
        self._record = record
        self._settings = settings
        self._data_dir = data_dir
        self._connect = connect
        self._directory = directory
        self._events = events
        self._stopping = stopping
        self._session: ImapSession | None = None
        self._active: FolderSync | None = None
        self._fault_hook = crash_hook_from_env()
        self._states: FolderStateStore | None = None
        self._parse_pools = parse_pools
        self._parse_pool: ParsePool | None = None  # borrowed for the folder sync in progress
        self._log = logger.bind(mailbox=record.id)
        self._hold: MailboxHold | None = None
        #: Gmail's THROTTLED, across the folder syncs of this fetcher: smaller FETCHes, paused.
        self._slowdown = Slowdown(settings.throttle_pause_seconds)

    def on_start(self) -> None:
        self._states = self._data_dir.folder_states(self._record.id)
        self._audit = self._data_dir.audit_log()
        self._consent = self._data_dir.consent()
        self._hold = MailboxHold(self._states, HoldPolicy(self._settings.overquota_wait_seconds))
        try:
            self._states.set_parked(None)  # a new start is a new chance
        except Exception as exc:  # a full disk must not keep the fetcher from starting: syncs report it
            self._unless_local(exc, "could not clear the parked mark")

    def handle(self, message: Any) -> Any:
        if isinstance(message, SyncFolder):
            return self._sync_folder(message)
        if isinstance(message, ResolveFolders):
            return self._resolve_folders(message)
        if isinstance(message, FolderWatchSeen):
            return self._record_watch(message)
        if isinstance(message, PoisonMessage) and message.child_id == self.child_id:
            return self._mark_poisoned(message)
        return super().handle(message)

    def in_flight(self) -> MessageKey | None:
        return self._active.in_flight if self._active is not None else None

    def _record_watch(self, seen: FolderWatchSeen) -> None:
        """Freshness facts from a watcher, written here because this actor is the file's one writer.

        Best effort: on a full disk the stamp is lost, which only makes the folder look staler.
        """
        assert self._states is not None
        try:
            state = self._states.get(seen.folder)
            if seen.server_event:
                state = state.with_changes(last_server_event=max(seen.at, state.last_server_event or ""))
            if seen.mode is not None:
                state = state.with_changes(watch_mode=seen.mode)
            self._states.put(state)
        except Exception as exc:
            self._unless_local(exc, "could not record what a watcher saw")

    def _mark_poisoned(self, poison: PoisonMessage) -> None:
        """The supervisor saw this message in flight at every recent crash: never parse it again."""
        assert self._states is not None
        folder, uidvalidity, uid = cast(MessageKey, poison.key)  # the fetcher made it
        state = self._states.get(folder)
        if state.uidvalidity != uidvalidity:
            return  # the folder started over meanwhile; the key means nothing now
        poisoned = UidSet.parse(state.poisoned_uids).union([uid])
        try:
            self._states.put(state.with_changes(poisoned_uids=str(poisoned)))
        except Exception as exc:
            if (fault := local_fault(exc, path=self._data_dir.root)) is None:
                raise
            # Not kept: if the message kills the fetcher again, the supervisor names it again.
            self._log.warning("a poison message (folder {folder!r}, UID {uid}) could not be set aside: {fault}",
                              folder=folder, uid=uid, fault=str(fault))
            return
        self._audit.append(AuditEvent.POISON_QUARANTINED, mailbox=self._record.id, folder=folder, uid=uid,
                           crashes=poison.crashes)
        self._log.warning("a message (folder {folder!r}, UID {uid}) crashed the fetcher {n} times; it will be "
                          "quarantined", folder=folder, uid=uid, n=poison.crashes)

    def _resolve_folders(self, job: ResolveFolders) -> None:
        """LIST, pick the folders the spec selects, and tombstone folders gone from the server."""
        assert self._states is not None
        try:
            self._consent.require(self._record.id)
        except (NoConsent, StorageError) as exc:
            return self._reply(FoldersResolved(job.run_id, (), (("*", str(exc)),)))
        if (hold := self._active_hold()) is not None:
            return self._reply(FoldersResolved(job.run_id, (), (("*", held_text(hold)),), held_until=hold["until"]))
        try:
            listing = self._with_fewer_connections(lambda: self._connected_session().list_folders())
            session = self._connected_session()
            spec = FolderSpec(self._record.folders, self._record.exclude)
            plan = plan_folders(spec, listing, (s.folder for s in self._states.all()), gmail=session.gmail)
            for folder in plan.gone:
                self._folder_sync().forget(folder)
        except Exception as exc:
            return self._resolve_failed(job, exc)
        missing = tuple((name, missing_folders((name,), listing)) for name in plan.missing)
        if not plan.folders and not missing:
            missing = (("*", f"no folder on the server matches {', '.join(self._record.folders)}"),)
        return self._reply(FoldersResolved(job.run_id, plan.folders, missing))

    def _resolve_failed(self, job: ResolveFolders, exc: Exception) -> None:
        """An expected failure of resolving becomes the run's error; anything else kills this actor."""
        fault = local_fault(exc, path=self._data_dir.root)
        if fault is not None:
            self._record_fault(self._known_folders(), fault)
            error = (("*", f"{fault}{_RESUMES}"),)
            return self._reply(FoldersResolved(job.run_id, (), error, local_fault=True))
        if not isinstance(exc, MailError | StorageError):
            raise exc
        if isinstance(exc, ProviderLimited):
            hold = self._held_back(exc)
            return self._reply(FoldersResolved(job.run_id, (), (("*", held_text(hold)),), held_until=hold["until"]))
        self._close_session()
        return self._reply(FoldersResolved(job.run_id, (), (("*", str(exc)),),
                                           needs_reauth=isinstance(exc, AuthenticationFailed)))

    def _sync_folder(self, job: SyncFolder) -> None:
        try:
            scopes = self._consent.require(self._record.id).scopes  # checked at every sync: revocable
        except (NoConsent, StorageError) as exc:
            return self._reply(FolderSynced(job.run_id, job.folder, error=str(exc)))
        if (hold := self._active_hold()) is not None:  # not one command to the server before its end
            return self._reply(FolderSynced(job.run_id, job.folder, error=held_text(hold), held_until=hold["until"]))
        try:
            self._parse_pool = self._parse_pools.borrow()
        except PoolUnavailable as exc:  # the system is stopping
            return self._reply(FolderSynced(job.run_id, job.folder, error=str(exc)))
        try:
            return self._sync_with_parsers(job, scopes)
        finally:
            self._give_back_parse_pool()

    def _sync_with_parsers(self, job: SyncFolder, scopes: tuple[str, ...]) -> None:
        try:
            result = self._run_on_live_connection(job.folder, scopes)
            # Only expected outcomes clear the in-flight marker: after a crash, on_failure reports it.
            self._active = None
            self._audit_sync(result)
            self._after_success()
        except LocalFault as exc:
            return self._folder_fault(job, exc)
        except ProviderLimited as exc:
            self._active = None
            hold = self._held_back(exc)
            return self._reply(FolderSynced(job.run_id, job.folder, error=held_text(hold), held_until=hold["until"]))
        except AuthenticationFailed as exc:
            self._active = None
            self._close_session()
            return self._reply(FolderSynced(job.run_id, job.folder, error=str(exc), needs_reauth=True))
        except (MailError, SyncInterrupted, StorageError, PoolUnavailable) as exc:
            # StorageError: e.g. the keyring is locked; PoolUnavailable: no parser process can
            # start. Reported like a network failure and retried, not a crash.
            self._active = None
            if isinstance(exc, PoolUnavailable):
                self._close_parse_pool()
            if isinstance(exc, ConnectionFailed | SyncInterrupted):
                self._close_session()
            self._log.warning("sync of folder {folder!r} failed: {error}", folder=job.folder, error=str(exc))
            return self._reply(FolderSynced(job.run_id, job.folder, error=str(exc)))
        except Exception as exc:
            fault = local_fault(exc, path=self._data_dir.root)
            if fault is None:
                raise  # a bug, or a message that kills the parser: the supervisor counts it
            return self._folder_fault(job, fault)
        self._log.info("folder {folder!r} synced: {fetched} new, {quarantined} quarantined", folder=job.folder,
                       fetched=result.fetched, quarantined=result.quarantined)
        return self._reply(FolderSynced(job.run_id, job.folder, result=result))

    def _audit_sync(self, result: FolderSyncResult) -> None:
        if not result.unchanged and (result.fetched or result.deleted or result.flags_changed or result.quarantined
                                     or result.uidvalidity_changed):
            self._audit.append(
                AuditEvent.SYNC, mailbox=self._record.id, folder=result.folder, fetched=result.fetched,
                deleted=result.deleted, flags_changed=result.flags_changed, quarantined=result.quarantined,
                uidvalidity=result.uidvalidity, uidvalidity_changed=result.uidvalidity_changed,
            )

    def _folder_fault(self, job: SyncFolder, fault: LocalFault) -> None:
        """A local fault stopped the folder's sync: report it as the folder's error, not a crash.

        Nothing was acknowledged past the watermark, so the retry the mailbox actor schedules
        picks up where this stopped. The connection is kept: nothing is wrong with it.
        """
        self._active = None
        self._record_fault((job.folder,), fault)
        self._reply(FolderSynced(job.run_id, job.folder, error=f"{fault}{_RESUMES}", local_fault=True))

    def _record_fault(self, folders: tuple[str, ...], fault: LocalFault) -> None:
        """The fault as the folders' last error, where the disk still lets it be written (the
        mailbox actor keeps it in memory too, for ``imap status`` while the disk is full)."""
        assert self._states is not None
        self._log.debug("local fault: {fault}", fault=str(fault))
        now = utc_now()
        try:
            for folder in folders:
                self._states.put(self._states.get(folder).with_changes(last_error=f"{fault}{_RESUMES}",
                                                                        last_attempt=now))
        except Exception as exc:
            self._unless_local(exc, "could not record the last error")

    def _known_folders(self) -> tuple[str, ...]:
        """The folders a mailbox-wide fault is recorded on: those synced before, else the folder
        names of the selection (as ``imap status`` lists them)."""
        assert self._states is not None
        try:
            synced = tuple(state.folder for state in self._states.all())
        except StorageError:
            synced = ()
        return synced or tuple(folder for folder in self._record.folders
                               if not is_pattern(folder) and not folder.startswith(("\\", "special:")))

    def _unless_local(self, exc: Exception, what: str) -> None:
        """Log a local fault met in passing (at debug: the sync reports it); re-raise anything else."""
        if local_fault(exc, path=self._data_dir.root) is None and not isinstance(exc, StorageError):
            raise exc
        self._log.debug("{what}: {error}", what=what, error=str(exc))

    # -- the provider's limits (issue #20) ----------------------------------------------------

    def _active_hold(self) -> dict[str, Any] | None:
        """The provider's hold on this mailbox while it lasts (a state file that cannot be read
        holds nothing back: the sync reports that itself)."""
        assert self._hold is not None
        try:
            hold = self._hold.active()
        except StorageError:
            return None
        if hold is not None and (budget := self._connect.budget) is not None:  # as kept across a restart
            budget.hold(parse_utc(hold["until"]).timestamp(), hold["reason"])
        return hold

    def _held_back(self, exc: ProviderLimited) -> dict[str, Any]:
        """The provider limited the mailbox: no command to its server until the hold's end, kept
        in the state file (a restart keeps it), said in the log, the audit log and an event."""
        assert self._hold is not None
        self._close_session()
        reason = getattr(exc.verdict, "text", "") or str(exc)
        try:
            hold = self._hold.limited(exc.verdict, reason)
        except Exception as store_exc:
            self._unless_local(store_exc, "could not record the provider's hold")
            hold = {"reason": reason, "kind": "limited", "until": utc_now(), "repeats": 1}
        self._log.warning("the provider limits this mailbox; nothing is sent to its server until {until}: {error}",
                          until=hold["until"], error=str(exc))
        if (budget := self._connect.budget) is not None:  # the watchers' new connections wait too
            budget.hold(parse_utc(hold["until"]).timestamp(), reason)
        try:
            self._audit.append(AuditEvent.MAILBOX_THROTTLED, mailbox=self._record.id, kind=hold["kind"],
                               until=hold["until"], reason=reason, repeats=hold["repeats"])
        except Exception as audit_exc:
            self._unless_local(audit_exc, "could not write the audit entry of the provider's hold")
        self._events.publish(MailboxThrottled(self._record.id, hold["kind"], hold["until"], reason, hold["repeats"]))
        return hold

    def _after_success(self) -> None:
        """A sync got through: a provider's hold and its repeats are over; the server's alerts are kept."""
        assert self._hold is not None
        if (budget := self._connect.budget) is not None:
            budget.release_hold()
        try:
            self._hold.cleared()
        except Exception as exc:
            self._unless_local(exc, "could not clear the provider's hold")
        if self._session is not None:
            self._keep_alerts(self._session)

    def _keep_alerts(self, session: ImapSession) -> None:
        """The server's [ALERT] texts, as written, for ``imap status`` (the session logged them)."""
        assert self._states is not None
        alerts, session.alerts = session.alerts, []
        if alerts:
            try:
                self._states.set_last_alert(alerts[-1], utc_now())
            except Exception as exc:
                self._unless_local(exc, "could not record the server's alert")

    def _with_fewer_connections(self, call: Callable[[], _T]) -> _T:
        """``call``; refused as one connection too many, again with one connection fewer in the
        mailbox's budget (the watchers share it), down to one, after which it is a hold."""
        while True:
            try:
                return call()
            except ProviderLimited as exc:
                budget = self._connect.budget
                if not isinstance(exc.verdict, TooManyConnections) or budget is None or not budget.lower():
                    raise
                self._close_session()
                self._log.warning("the server refused a connection as one too many; this mailbox uses at most {n} "
                                  "from now on: {error}", n=budget.limit, error=str(exc))

    def _run_on_live_connection(self, folder: str, scopes: tuple[str, ...]) -> FolderSyncResult:
        return self._with_fewer_connections(lambda: self._run_once(folder, scopes))

    def _run_once(self, folder: str, scopes: tuple[str, ...]) -> FolderSyncResult:
        """Sync, and if a kept-open connection turns out dead (the server restarted, a NAT forgot
        it), reconnect and try once more: the sync resumes from its watermark, nothing repeats."""
        reused = self._session is not None
        try:
            self._active = self._folder_sync(scopes, self._borrowed_pool())
            return self._active.run(folder)
        except ProviderLimited:
            raise  # the server said why: no reconnecting until the mailbox's owner says so
        except ConnectionFailed:
            if not reused:
                raise
            self._log.info("the kept connection was dead at folder {folder!r}; reconnecting", folder=folder)
            self._close_session()
            self._active = self._folder_sync(scopes, self._borrowed_pool())
            return self._active.run(folder)

    def _folder_sync(self, scopes: tuple[str, ...] = SCOPES, parse_pool: ParsePool | None = None) -> FolderSync:
        """A folder sync on the live connection; ``parse_pool`` for one that fetches (forgetting a
        folder gone from the server parses nothing)."""
        assert self._states is not None
        session = self._connected_session()
        order = _WriteOrder()  # one per folder sync: its writes and attachment hand-overs, in order
        return FolderSync(
            mailbox=self._record.id,
            session=_counted(self._paced(session)),
            states=self._states,
            sink=_SinkPort(self._directory, order),
            quarantine=self._data_dir.quarantine(),
            limits=self._settings.batch,
            max_in_flight=self._settings.max_batches_in_flight,
            write_timeout=self._settings.write_timeout_seconds,
            progress=self._events.publish,
            should_stop=self._stopping.is_set,
            gmail_index=GmailMessageIndex(self._data_dir.gmail_index_root(self._record.id)) if session.gmail else None,
            fault_hook=self._fault_hook,
            scopes=scopes,
            attachments=_AttachmentPort(self._directory, self._settings.attachments, order),
            parse_pool=parse_pool,
            reconnect=self._reconnect,
            budget=self._download_budget(),
        )

    def _download_budget(self) -> DownloadBudget | None:
        """The mailbox's daily download budget, counted in its state file (this actor writes it)."""
        assert self._states is not None
        if not self._record.daily_download_mb:
            return None
        return DownloadBudget(self._record.daily_download_mb * BYTES_PER_MB, self._states.downloads(),
                              save=self._states.set_downloads)

    def _reconnect(self) -> ImapSession:
        """A fresh connection for a sync whose server hung up on it (see FolderSync)."""
        self._close_session()
        return _counted(self._paced(self._connected_session()))

    def _paced(self, session: ImapSession) -> ImapSession:
        return cast(ImapSession, _Paced(session, self._slowdown, self._settings.batch.max_messages,
                                        self._stopping.wait))

    def _borrowed_pool(self) -> ParsePool:
        assert self._parse_pool is not None, "a folder sync runs with a parser pool borrowed"
        return self._parse_pool

    def _give_back_parse_pool(self) -> None:
        """Return the borrowed parser pool, warm, for whichever mailbox syncs next (a batch a
        stopped sync left half-read does not disturb the next user: see ParsePool)."""
        if self._parse_pool is not None:
            self._parse_pools.give_back(self._parse_pool)
            self._parse_pool = None

    def _close_parse_pool(self) -> None:
        """Return the borrowed pool for closing: it failed, or the fetcher died with it."""
        if self._parse_pool is not None:
            self._parse_pools.give_back(self._parse_pool, healthy=False)
            self._parse_pool = None

    def _connected_session(self) -> ImapSession:
        if self._session is None:
            try:
                self._session = self._connect()
            except AuthenticationFailed as exc:
                assert self._states is not None
                if self._states.needs_reauth() is None:
                    self._states.set_needs_reauth(str(exc), utc_now())
                    self._audit.append(AuditEvent.NEEDS_REAUTH, mailbox=self._record.id, reason=str(exc))
                raise
            assert self._states is not None
            self._states.set_needs_reauth(None)
        return self._session

    def _reply(self, message: FolderSynced | FoldersResolved) -> None:
        mailbox = self._directory.get(actor_names.mailbox(self._record.id))
        if mailbox is not None:
            mailbox.tell(message)

    def _close_session(self) -> None:
        if self._session is not None:
            self._keep_alerts(self._session)
            self._session.close()
            self._session = None

    def on_stop(self) -> None:
        self._close_parse_pool()
        self._close_session()
        if self._states is not None:
            self._states.close()

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self._close_parse_pool()
        self._close_session()
        if self._states is not None:  # Pykka skips on_stop after a failure
            self._states.close()
        super().on_failure(exception_type, exception_value, traceback)


class _WriteOrder:
    """The hand-overs of one folder sync, which count as durable only in order.

    A batch's write that failed (a full disk) may be followed by the next batch's, already on its
    way to the sink, succeeding: once there is room again, or after a passing error. The folder
    sync waits for its writes in order, but on a failure still waits for those after it; were
    one of them acknowledged, the watermark would move past the batch that was never written.
    So from the first failure on, every later hand-over of the sync fails the same way.
    """

    def __init__(self) -> None:
        self.failure: BaseException | None = None

    def track(self, pending: PendingWrite) -> PendingWrite:
        return _InOrder(pending, self)


class _InOrder:
    """One hand-over of a :class:`_WriteOrder`: its own outcome, unless an earlier one failed."""

    def __init__(self, pending: PendingWrite, order: _WriteOrder) -> None:
        self._pending = pending
        self._order = order

    def get(self, timeout: float | None = None) -> Any:
        if self._order.failure is not None:
            raise self._order.failure
        try:
            return self._pending.get(timeout=timeout)
        except BaseException as exc:
            self._order.failure = exc
            raise


class _SinkPort:
    """Hands a folder sync's changes to the current sink actor, as asks (futures) for back-pressure."""

    def __init__(self, directory: ActorDirectory, order: _WriteOrder | None = None) -> None:
        self._directory = directory
        self._order = order or _WriteOrder()

    def write(self, elements: list[dict[str, Any]]) -> PendingWrite:
        return self._ask(WriteElements(tuple(elements)))

    def update_flags(self, updates: list[tuple[ElementKey, list[str]]]) -> PendingWrite:
        return self._ask(UpdateFlags(tuple((key, tuple(flags)) for key, flags in updates)))

    def mark_deleted(self, keys: list[ElementKey]) -> PendingWrite:
        return self._ask(MarkDeleted(tuple(keys), utc_now()))

    def _ask(self, message: Any) -> PendingWrite:
        sink = self._directory.get(actor_names.SINK)
        if sink is None:
            raise ConnectionFailed("the sink is restarting; the folder will be synced again")
        return self._order.track(sink.ask(message, block=False))


class _AttachmentPort:
    """Hands new elements' attachments to the attachment processor (an ask: the watermark waits)."""

    def __init__(self, directory: ActorDirectory, settings: AttachmentSettings,
                 order: _WriteOrder | None = None) -> None:
        self._directory = directory
        self.settings = settings
        self._order = order or _WriteOrder()

    def submit(self, work: list[AttachmentWork]) -> PendingWrite:
        processor = self._directory.get(actor_names.ATTACHMENTS)
        if processor is None:
            raise ConnectionFailed("the attachment processor is restarting; the folder will be synced again")
        return self._order.track(processor.ask(SubmitAttachments(tuple(work)), block=False))


class _CountedFetches:
    """A session whose FETCH of messages counts its CPU time (``FUTURNAL_STAGE_CPU``, bin/benchmark)."""

    def __init__(self, session: ImapSession) -> None:
        self._session = session

    def fetch_messages(self, *args: Any, **kwargs: Any) -> Any:
        stage_cpu.mark("fetch.first")  # what the process used before: start-up, imports, login, SELECT
        with stage_cpu.timed("imap.fetch"):
            return self._session.fetch_messages(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


class _Paced:
    """A session whose FETCH of messages obeys Gmail's ``[THROTTLED]``: while the
    :class:`Slowdown` is up, a batch is asked for in smaller FETCHes with a pause before each;
    every FETCH tells it how many THROTTLED answers came since the one before.

    The FETCHes of one batch hold no more than the batch would: once the bytes received pass the
    sizes announced, the rest is listed missing, to be asked for alone (as the session does)."""

    def __init__(self, session: ImapSession, slowdown: Slowdown, max_messages: int,
                 sleep: Callable[[float], object]) -> None:
        self._session = session
        self._slowdown = slowdown
        self._max_messages = max_messages
        self._sleep = sleep

    def fetch_messages(self, uids: Iterable[int], expected_bytes: int = 0) -> FetchAnswer:
        wanted = sorted(set(uids))
        if not self._slowdown.level:
            answer = self._session.fetch_messages(wanted, expected_bytes)
            self._slowdown.heard(self._session.take_throttled())
            return answer
        whole = FetchAnswer([], [], {})
        received = 0
        while wanted:
            if received > expected_bytes > 0:
                whole.missing.extend(wanted)
                break
            size = max(1, min(self._max_messages >> self._slowdown.level, len(wanted)))
            chunk, wanted = wanted[:size], wanted[size:]
            self._sleep(self._slowdown.pause())
            answer = self._session.fetch_messages(chunk, max(expected_bytes - received, 0))
            self._slowdown.heard(self._session.take_throttled())
            received += sum(len(message.raw) for message in answer.messages)
            whole.messages.extend(answer.messages)
            whole.missing.extend(answer.missing)
            whole.too_large.update(answer.too_large)
        return whole

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def _counted(session: ImapSession) -> ImapSession:
    """``session`` itself, unless the benchmark counts CPU per stage."""
    return cast(ImapSession, _CountedFetches(session)) if stage_cpu.enabled else session
