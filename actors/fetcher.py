"""FetcherActor: runs folder syncs for one mailbox over its own IMAP connection."""

from __future__ import annotations

import threading
from typing import Any

from loguru import logger

from futurnal.attachments.plan import AttachmentWork
from futurnal.attachments.settings import AttachmentSettings
from futurnal.config import ServiceSettings
from futurnal.events import EventBus
from futurnal.faults import crash_hook_from_env
from futurnal.mail.connector import MailboxConnector
from futurnal.mail.errors import AuthenticationFailed, ConnectionFailed, MailError
from futurnal.mail.folder_plan import plan_folders
from futurnal.mail.folder_selection import FolderSpec
from futurnal.mail.folder_sync import FolderSync, FolderSyncResult, PendingWrite, SyncInterrupted
from futurnal.mail.parse_pool import ParsePool
from futurnal.mail.session import ImapSession
from futurnal.mail.uidset import UidSet
from futurnal.storage.audit_log import AuditLog
from futurnal.storage.clock import utc_now
from futurnal.storage.consent import ConsentRegistry, NoConsent
from futurnal.storage.data_dir import DataDir
from futurnal.storage.errors import StorageError
from futurnal.storage.element_store import ElementKey
from futurnal.storage.gmail_index import GmailMessageIndex
from futurnal.storage.quarantine import QuarantineStore
from futurnal.storage.registry import MailboxRecord
from futurnal.storage.sync_state import FolderStateStore

from .directory import ActorDirectory
from .messages import (
    FolderSynced,
    FoldersResolved,
    FolderWatchSeen,
    MarkDeleted,
    PoisonMessage,
    SubmitAttachments,
    ResolveFolders,
    SyncFolder,
    UpdateFlags,
    WriteElements,
)
from .supervised import SupervisedActor

__all__ = ["FetcherActor"]


class FetcherActor(SupervisedActor):
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
        supervisor: Any = None,
    ) -> None:
        super().__init__(child_id=f"fetcher/{record.id}", supervisor=supervisor)
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
        self._parse_pool: ParsePool | None = None
        self._log = logger.bind(mailbox=record.id)

    def on_start(self) -> None:
        self._states = FolderStateStore(self._data_dir.state_path(self._record.id))
        self._states.set_parked(None)  # a new start is a new chance
        self._audit = AuditLog(self._data_dir.audit_path)
        self._consent = ConsentRegistry(self._data_dir.consent_path)

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

    def in_flight(self) -> str | None:
        return self._active.in_flight if self._active is not None else None

    def _record_watch(self, seen: FolderWatchSeen) -> None:
        """Freshness facts from a watcher, written here because this actor is the file's one writer."""
        assert self._states is not None
        state = self._states.get(seen.folder)
        if seen.server_event:
            state = state.with_changes(last_server_event=max(seen.at, state.last_server_event or ""))
        if seen.mode is not None:
            state = state.with_changes(watch_mode=seen.mode)
        self._states.put(state)

    def _mark_poisoned(self, poison: PoisonMessage) -> None:
        """The supervisor saw this message in flight at every recent crash: never parse it again."""
        assert self._states is not None
        folder, uidvalidity, uid = poison.key.split("\x00")
        state = self._states.get(folder)
        if state.uidvalidity != int(uidvalidity):
            return  # the folder started over meanwhile; the key means nothing now
        poisoned = UidSet.parse(state.poisoned_uids).union([int(uid)])
        self._states.put(state.with_changes(poisoned_uids=str(poisoned)))
        self._audit.append("poison-quarantined", mailbox=self._record.id, folder=folder, uid=int(uid),
                           crashes=poison.crashes)
        self._log.warning("a message crashed the fetcher {n} times; it will be quarantined", n=poison.crashes)

    def _resolve_folders(self, job: ResolveFolders) -> None:
        """LIST, pick the folders the spec selects, and tombstone folders gone from the server."""
        assert self._states is not None
        try:
            self._consent.require(self._record.id)
        except (NoConsent, StorageError) as exc:
            return self._reply(FoldersResolved(job.run_id, (), (("*", str(exc)),)))
        try:
            session = self._connected_session()
            spec = FolderSpec(self._record.folders, self._record.exclude)
            plan = plan_folders(
                spec, session.list_folders(), (s.folder for s in self._states.all()), gmail=session.gmail
            )
            for folder in plan.gone:
                self._folder_sync().forget(folder)
        except AuthenticationFailed as exc:
            self._close_session()
            return self._reply(FoldersResolved(job.run_id, (), (("*", str(exc)),), needs_reauth=True))
        except (MailError, StorageError) as exc:
            self._close_session()
            return self._reply(FoldersResolved(job.run_id, (), (("*", str(exc)),)))
        missing = tuple((name, f"folder {name!r} does not exist on the server") for name in plan.missing)
        if not plan.folders and not missing:
            missing = (("*", f"no folder on the server matches {', '.join(self._record.folders)}"),)
        return self._reply(FoldersResolved(job.run_id, plan.folders, missing))

    def _sync_folder(self, job: SyncFolder) -> None:
        try:
            scopes = self._consent.require(self._record.id).scopes  # checked at every sync: revocable
        except (NoConsent, StorageError) as exc:
            return self._reply(FolderSynced(job.run_id, job.folder, error=str(exc)))
        try:
            result = self._run_on_live_connection(job.folder, scopes)
            # Only expected outcomes clear the in-flight marker: after a crash, on_failure reports it.
            self._active = None
            self._close_parse_pool()  # idle mailboxes keep no worker processes around
        except AuthenticationFailed as exc:
            self._active = None
            self._close_parse_pool()
            self._close_session()
            return self._reply(FolderSynced(job.run_id, job.folder, error=str(exc), needs_reauth=True))
        except (MailError, SyncInterrupted, StorageError) as exc:
            # StorageError: e.g. the keyring is locked; reported like a network failure, not a crash.
            self._active = None
            self._close_parse_pool()
            if isinstance(exc, ConnectionFailed | SyncInterrupted):
                self._close_session()
            self._log.warning("folder sync failed: {error}", error=str(exc))
            return self._reply(FolderSynced(job.run_id, job.folder, error=str(exc)))
        self._log.info(
            "folder synced: {fetched} new, {quarantined} quarantined", fetched=result.fetched, quarantined=result.quarantined
        )
        if not result.unchanged and (result.fetched or result.deleted or result.flags_changed or result.quarantined
                                     or result.uidvalidity_changed):
            self._audit.append(
                "sync", mailbox=self._record.id, folder=result.folder, fetched=result.fetched,
                deleted=result.deleted, flags_changed=result.flags_changed, quarantined=result.quarantined,
                uidvalidity=result.uidvalidity, uidvalidity_changed=result.uidvalidity_changed,
            )
        return self._reply(FolderSynced(job.run_id, job.folder, result=result))

    def _run_on_live_connection(self, folder: str, scopes: tuple[str, ...]) -> FolderSyncResult:
        """Sync, and if a kept-open connection turns out dead (the server restarted, a NAT forgot
        it), reconnect and try once more: the sync resumes from its watermark, nothing repeats."""
        reused = self._session is not None
        try:
            self._active = self._folder_sync(scopes)
            return self._active.run(folder)
        except ConnectionFailed:
            if not reused:
                raise
            self._log.info("the kept connection was dead; reconnecting")
            self._close_session()
            self._active = self._folder_sync(scopes)
            return self._active.run(folder)

    def _folder_sync(self, scopes: tuple[str, ...] = ("metadata", "content", "attachments")) -> FolderSync:
        assert self._states is not None
        session = self._connected_session()
        return FolderSync(
            mailbox=self._record.id,
            session=session,
            states=self._states,
            sink=_SinkPort(self._directory),
            quarantine=QuarantineStore(self._data_dir.quarantine_root),
            limits=self._settings.batch,
            max_in_flight=self._settings.max_batches_in_flight,
            write_timeout=self._settings.write_timeout_seconds,
            progress=self._events.publish,
            should_stop=self._stopping.is_set,
            gmail_index=GmailMessageIndex(self._data_dir.gmail_index_root(self._record.id)) if session.gmail else None,
            fault_hook=self._fault_hook,
            scopes=scopes,
            attachments=_AttachmentPort(self._directory, self._settings.attachments),
            parse_pool=self._pool(),
        )

    def _pool(self) -> ParsePool | None:
        """The mailbox's parser processes, started on the first batch that uses them."""
        if self._parse_pool is None and self._settings.parse_workers > 0:
            self._parse_pool = ParsePool(self._settings.parse_workers, self._settings.parse_timeout_seconds)
        return self._parse_pool

    def _close_parse_pool(self) -> None:
        if self._parse_pool is not None:
            self._parse_pool.close()
            self._parse_pool = None

    def _connected_session(self) -> ImapSession:
        if self._session is None:
            try:
                self._session = self._connect()
            except AuthenticationFailed as exc:
                assert self._states is not None
                if self._states.needs_reauth() is None:
                    self._states.set_needs_reauth(str(exc), utc_now())
                    self._audit.append("needs-reauth", mailbox=self._record.id, reason=str(exc))
                raise
            assert self._states is not None
            self._states.set_needs_reauth(None)
        return self._session

    def _reply(self, message: FolderSynced | FoldersResolved) -> None:
        mailbox = self._directory.get(f"mailbox/{self._record.id}")
        if mailbox is not None:
            mailbox.tell(message)

    def _close_session(self) -> None:
        if self._session is not None:
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


class _SinkPort:
    """Hands a folder sync's changes to the current sink actor, as asks (futures) for back-pressure."""

    def __init__(self, directory: ActorDirectory) -> None:
        self._directory = directory

    def write(self, elements: list[dict[str, Any]]) -> PendingWrite:
        return self._ask(WriteElements(tuple(elements)))

    def update_flags(self, updates: list[tuple[ElementKey, list[str]]]) -> PendingWrite:
        return self._ask(UpdateFlags(tuple((key, tuple(flags)) for key, flags in updates)))

    def mark_deleted(self, keys: list[ElementKey]) -> PendingWrite:
        return self._ask(MarkDeleted(tuple(keys), utc_now()))

    def _ask(self, message: Any) -> PendingWrite:
        sink = self._directory.get("sink")
        if sink is None:
            raise ConnectionFailed("the sink is restarting; the folder will be synced again")
        return sink.ask(message, block=False)  # type: ignore[no-any-return]


class _AttachmentPort:
    """Hands new elements' attachments to the attachment processor (an ask: the watermark waits)."""

    def __init__(self, directory: ActorDirectory, settings: AttachmentSettings) -> None:
        self._directory = directory
        self.settings = settings

    def submit(self, work: list[AttachmentWork]) -> PendingWrite:
        processor = self._directory.get("attachments")
        if processor is None:
            raise ConnectionFailed("the attachment processor is restarting; the folder will be synced again")
        return processor.ask(SubmitAttachments(tuple(work)), block=False)  # type: ignore[no-any-return]
