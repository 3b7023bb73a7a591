"""The admin use cases done by the caller itself, on the data directory's files.

For a command when no ``run`` serves the data directory (it takes the data directory's lock to
write the registry), and for :class:`~futurnal.admin.system_admin.SystemAdmin`, which hands in the
running system's way to the registry (it holds the lock while it runs) and adds what its actors must
do on top. A sync or a watch run here starts an actor system of its own for the one mailbox, made
by the ``actor_system`` it is given (:class:`~futurnal.system.ActorSystem`, which depends on this
module, never the other way).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from futurnal.config import ServiceSettings
from futurnal.mailboxes.status import describe_budget, describe_schedule, mailbox_status
from futurnal.storage.audit_log import AuditEvent, AuditTrail
from futurnal.storage.consent import ConsentRecord, ConsentRegistry, NoConsent
from futurnal.storage.credentials import CredentialStore
from futurnal.storage.data_dir import DataDir
from futurnal.storage.lock import DataDirLock
from futurnal.storage.purge import remove_mailbox
from futurnal.storage.quarantine import InvalidRecordId, Quarantine, QuarantineRecord
from futurnal.storage.registry import MailboxRecord, MailboxRegistry

from .errors import AdminError
from .interface import MonitorView, Reauthentication, Removal, RetryResult, SyncProgress

if TYPE_CHECKING:
    from futurnal.storage.element_store import ElementStore
    from futurnal.sync.sync_runs import MailboxSyncReport

__all__ = ["ActorSystemFactory", "LocalAdmin", "OwnActorSystem"]


class OwnActorSystem(Protocol):
    """The actor system a sync or a watch starts for itself: an :class:`~futurnal.system.ActorSystem`.
    Its calls raise :class:`~futurnal.system_operations.SystemNotRunning` when its actors cannot run."""

    failed: threading.Event
    failure: str | None

    def start(self, mailbox_ids: list[str] | None = None, *, schedule: bool = True, watch: bool = True,
              watch_folders: tuple[str, ...] | None = None) -> object: ...

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]: ...

    def sync(self, mailbox_id: str, folders: tuple[str, ...] = (), timeout: float | None = None) -> MailboxSyncReport: ...

    def wait_for_attachments(self, timeout: float | None = None) -> int: ...

    def stop(self) -> None: ...


class ActorSystemFactory(Protocol):
    """Makes an actor system on a data directory (``ActorSystem`` itself is one)."""

    def __call__(self, data_dir: Path, *, settings: ServiceSettings, credentials: CredentialStore) -> OwnActorSystem: ...


class LocalAdmin:
    """:class:`~futurnal.admin.interface.Admin` on the data directory's files.

    ``settings`` and ``element_store`` are called only by the operations that need them (a command
    whose configuration is broken can still grant consent). ``writable_registry`` opens the registry
    for writing; by default under the data directory's lock, taken for the call. ``actor_system``
    makes the actor system a sync or a watch runs in.
    """

    def __init__(
        self,
        data_dir: DataDir,
        *,
        credentials: CredentialStore,
        settings: Callable[[], ServiceSettings],
        actor_system: ActorSystemFactory,
        writable_registry: Callable[[], AbstractContextManager[MailboxRegistry]] | None = None,
        element_store: Callable[[], ElementStore] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.credentials = credentials
        self._settings = settings
        self._actor_system = actor_system
        self._writable_registry = writable_registry or self._locked_registry
        self._element_store = element_store

    # -- mailboxes ----------------------------------------------------------------------------

    def add_mailbox(self, record: MailboxRecord, scopes: tuple[str, ...], granted_by: str,
                    store_secret: Callable[[], None] | None = None) -> None:
        with self._writable_registry() as registry:
            registry.add(record)  # ValueError when the id or the address is taken
            if store_secret is not None:
                try:
                    store_secret()
                except Exception:
                    registry.remove(record.id)  # never leave a mailbox registered without its secret
                    raise
            audit = self._audit()
            audit.append(AuditEvent.MAILBOX_ADDED, mailbox=record.id, host=record.host, security=record.security,
                         auth=record.auth, folders=list(record.folders))
            if scopes:
                granted = self._consent().grant(record.id, granted_by, scopes)
                audit.append(AuditEvent.CONSENT_GRANTED, mailbox=record.id, granted_by=granted_by,
                             scopes=list(granted.scopes))

    def remove_mailbox(self, mailbox_id: str, purge: bool) -> Removal:
        with self._writable_registry() as registry:  # secrets go only once nobody else is at work
            secrets = self.credentials.delete_secrets(mailbox_id)
            counts = remove_mailbox(self.data_dir, registry, mailbox_id, purge=purge, secrets=len(secrets))
        return Removal(counts, tuple(secrets))

    def status(self, record: MailboxRecord) -> dict[str, Any]:
        return mailbox_status(self.data_dir, record, self._settings(), running=False)  # no actors of its own

    def store_schedule(self, mailbox_id: str, schedule: str | None, priority: str | None) -> MailboxRecord:
        """Store a mailbox's (validated) schedule and/or priority; ``UnknownMailbox`` if it is gone."""
        with self._writable_registry() as registry:
            record = registry.get(mailbox_id)  # read under the lock: nobody else changes it now
            record = record.with_changes(schedule=record.schedule if schedule is None else schedule,
                                         priority=record.priority if priority is None else priority)
            registry.update(record)
        return record

    def set_schedule(self, mailbox_id: str, schedule: str | None, priority: str | None) -> dict[str, Any]:
        record = self.store_schedule(mailbox_id, schedule, priority)
        return {"mailbox": record.id, **describe_schedule(record, self.data_dir)}

    def store_budget(self, mailbox_id: str, daily_download_mb: int | None) -> MailboxRecord:
        """Store a mailbox's daily download budget (None: none); ``UnknownMailbox`` if it is gone,
        ``ValueError`` for one the record refuses (below 1 MB)."""
        with self._writable_registry() as registry:
            record = registry.get(mailbox_id).with_changes(daily_download_mb=daily_download_mb)
            registry.update(record)
        return record

    def set_budget(self, mailbox_id: str, daily_download_mb: int | None) -> dict[str, Any]:
        record = self.store_budget(mailbox_id, daily_download_mb)
        return {"mailbox": record.id, **describe_budget(record, self.data_dir)}

    # -- consent and secrets ------------------------------------------------------------------

    def grant_consent(self, mailbox_id: str, granted_by: str, scopes: tuple[str, ...],
                      expires_at: str | None = None) -> ConsentRecord:
        consent = self._consent().grant(mailbox_id, granted_by, scopes, expires_at)
        self._audit().append(AuditEvent.CONSENT_GRANTED, mailbox=mailbox_id, granted_by=granted_by,
                             scopes=list(consent.scopes), expires_at=consent.expires_at)
        return consent

    def revoke_consent(self, mailbox_id: str) -> bool:
        revoked = self._consent().revoke(mailbox_id)
        if revoked:
            self._audit().append(AuditEvent.CONSENT_REVOKED, mailbox=mailbox_id)
        return revoked

    def reauthenticate(self, record: MailboxRecord,
                       renew: Callable[[MailboxRegistry | None], str]) -> Reauthentication:
        with self._writable_registry() as registry:
            secret_kind = renew(registry)
            self.record_reauth(record.id, record.auth)
        return Reauthentication(secret_kind, None)

    def reauthenticated(self, record: MailboxRecord) -> None:
        """The secret was renewed by someone else (a process that stopped meanwhile): record it."""
        with self._writable_registry():
            self.record_reauth(record.id, record.auth)

    def record_reauth(self, mailbox_id: str, auth: str, *, clear_state: bool = True) -> None:
        """Audit a renewed secret and, with ``clear_state`` (no fetcher owns the mailbox's state
        file now), clear its needs-reauth state: the mailbox may sync again."""
        if clear_state and self.data_dir.has_state(mailbox_id):
            with closing(self.data_dir.folder_states(mailbox_id)) as states:
                states.set_needs_reauth(None)
        self._audit().append(AuditEvent.REAUTH, mailbox=mailbox_id, auth=auth)

    # -- quarantine ---------------------------------------------------------------------------

    def retry_quarantined(self, record_id: str | None) -> list[RetryResult]:
        from futurnal.attachments.processing import AttachmentProcessing  # the parser: only for a retry
        from futurnal.storage.attachment_queue import AttachmentJobQueue
        from futurnal.storage.blob_store import BlobStore
        from futurnal.sync.quarantine_retry import retry_quarantined

        store = self.data_dir.quarantine()
        records = store.list() if record_id is None else [self._quarantined(store, record_id)]
        with self._writable_registry():  # the element store gets written: not beside a running process
            attachments = AttachmentProcessing(
                AttachmentJobQueue(self.data_dir.attachment_queue_root), BlobStore(self.data_dir.blobs_root), None
            )  # queued durably here; extracted at the next sync or `run`
            settings = self._settings()
            with closing(self._open_element_store()) as elements:
                outcomes = retry_quarantined(records, store, self._consent(), self._audit(), elements.upsert_many,
                                             attachments.accept, settings.attachments,
                                             settings.parse_timeout_seconds, settings.parse_memory_mb)
        return [RetryResult(o.record_id, o.element_id, o.error) for o in outcomes]

    def drop_quarantined(self, record_id: str) -> QuarantineRecord | None:
        from futurnal.sync.quarantine_retry import drop_quarantined

        store = self.data_dir.quarantine()
        record = self._quarantined(store, record_id)
        with self._writable_registry():
            drop_quarantined(record, store, self._audit())
        return record

    # -- syncing and watching with an actor system of its own ---------------------------------

    def sync(self, record: MailboxRecord, folders: tuple[str, ...] = (), *, timeout: float | None = None,
             progress: SyncProgress | None = None, say: Callable[[str], None] | None = None) -> dict[str, Any]:
        return self.sync_report(record, folders, timeout=timeout, progress=progress).to_document()

    def sync_report(self, record: MailboxRecord, folders: tuple[str, ...] = (), *, timeout: float | None = None,
                    progress: SyncProgress | None = None) -> MailboxSyncReport:
        """Sync ``record`` through the real actor tree, started for it alone, and return the report;
        waits for its attachments' text extraction too (what a ``timeout`` leaves undone is done by
        the next sync or ``run``)."""
        # Imported here: the actor system is most of the CLI's start-up, and most commands need none of it.
        import pykka

        from futurnal.sync.folder_sync import SyncProgress as Progressed
        from futurnal.system_operations import SystemNotRunning

        def on_event(event: Any) -> None:
            if isinstance(event, Progressed) and progress is not None:
                progress.update(event.done, event.total, event.folder)

        try:
            self._consent().require(record.id)
        except NoConsent as exc:
            raise AdminError(str(exc)) from None
        system = self._actor_system(self.data_dir.root, settings=self._settings(), credentials=self.credentials)
        try:
            system.start([record.id], schedule=False, watch=False)
        except SystemNotRunning as exc:
            raise AdminError(str(exc)) from None
        unsubscribe = system.subscribe(on_event)
        try:
            started = time.monotonic()
            report = system.sync(record.id, folders, timeout=timeout)
            # A one-shot sync also waits for its attachments' text (each extraction is time-limited).
            system.wait_for_attachments(None if timeout is None else max(timeout - (time.monotonic() - started), 0))
            return report
        except SystemNotRunning as exc:
            raise AdminError(str(exc)) from None
        except pykka.Timeout:
            raise AdminError(f"sync of {record.id} did not finish within {timeout:g}s; it resumes next time") from None
        finally:
            unsubscribe()
            if progress is not None:
                progress.finish()
            system.stop()

    def monitor(self, record: MailboxRecord, folders: tuple[str, ...], asked: tuple[str, ...],
                view: MonitorView) -> None:
        if not folders:
            raise AdminError(f"{record.id} watches no folder: pass --folder F", code=2)
        settings = self._settings()
        limit = max(settings.max_connections_per_mailbox - 1, 0)
        if len(folders) > limit:
            notify = " unless the server has NOTIFY" if settings.watch_notify else ""
            view.say(f"note: only {limit} folder(s) can be watched within the connection budget "
                     f"(network.max_connections_per_mailbox){notify}; watching {', '.join(folders[:limit])}")
        from futurnal.console.event_lines import event_document  # here: most commands need no actor system
        from futurnal.system_operations import SystemNotRunning

        stop = threading.Event()
        failure: list[str] = []

        def on_event(event: Any) -> None:
            doc = event_document(event)
            if doc is None:
                return
            view.show(doc)
            if doc["event"] == "watch-needs-reauth":
                failure.append(doc["detail"])
                stop.set()

        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        system = self._actor_system(self.data_dir.root, settings=settings, credentials=self.credentials)
        system.subscribe(on_event)
        try:
            system.start([record.id], schedule=False, watch=True, watch_folders=folders)
        except SystemNotRunning as exc:
            raise AdminError(str(exc)) from None
        view.say(f"monitoring {record.id}: {', '.join(folders[:limit] or folders)}; Ctrl+C stops")
        try:
            while not stop.wait(0.5):
                if system.failed.is_set():
                    failure.append(system.failure or "supervision gave up")
                    break
        finally:
            system.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if failure:
            raise AdminError(failure[0])

    # -- helpers ------------------------------------------------------------------------------

    def _audit(self) -> AuditTrail:
        return self.data_dir.audit_log()

    def _consent(self) -> ConsentRegistry:
        return self.data_dir.consent()

    def _open_element_store(self) -> ElementStore:
        if self._element_store is not None:
            return self._element_store()
        from futurnal.storage.stores import open_store

        return open_store(self.data_dir, url=self._settings().store_url)

    @contextmanager
    def _locked_registry(self) -> Iterator[MailboxRegistry]:
        """The registry opened for writing, under the data directory's lock."""
        self.data_dir.ensure()
        lock = DataDirLock(self.data_dir.root)
        lock.acquire()
        try:
            with self.data_dir.registry() as registry:
                yield registry
        finally:
            lock.release()

    @staticmethod
    def _quarantined(store: Quarantine, record_id: str) -> QuarantineRecord:
        try:
            record = store.get(record_id)
        except InvalidRecordId as exc:  # a planted link
            raise AdminError(str(exc)) from None
        if record is None:
            raise AdminError(f"no quarantined message {record_id!r} (see `quarantine list`)")
        return record
