"""The public API: start the actor system in this process, sync, watch, reload, stop.

The supervision tree runs as several root supervisors sharing one actor directory, started in
this order and stopped in the reverse one: the sink's root, one root per mailbox (holding that
mailbox's supervisor, as built by :mod:`futurnal.supervision_tree`), then the scheduler's root.
Separate roots are what let :meth:`ActorSystem.reload` add and remove mailboxes while the others
keep running untouched: a Pykka supervisor's children are fixed when it starts.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pykka
from loguru import logger

from futurnal.actors import actor_names
from futurnal.actors.messages import (
    CountPendingAttachments,
    ForgetMailbox,
    SubmitAttachments,
    SyncTick,
    WriteElements,
)
from futurnal.actors.scheduler import SchedulerActor
from futurnal.actors.sink import ElementSink, SinkActor
from futurnal.admin.local import LocalAdmin
from futurnal.admin.system_admin import SystemAdmin
from futurnal.config import ServiceSettings, load_settings
from futurnal.events import EventBus
from futurnal.logs.configure import redactor
from futurnal.mailboxes.reconnects import ReconnectBoard
from futurnal.scheduling.schedules import MailboxSchedule, scheduled_mailboxes
from futurnal.storage.consent import SCOPES, ConsentRecord
from futurnal.storage.credentials import CredentialStore
from futurnal.storage.data_dir import DataDir
from futurnal.storage.element_store import ElementStore
from futurnal.storage.errors import StorageError
from futurnal.storage.lock import DataDirLock
from futurnal.storage.purge import MailboxDataOwners
from futurnal.storage.registry import MailboxRecord, MailboxRegistry
from futurnal.storage.stores import open_store, sharing
from futurnal.supervision_tree import (
    TreeContext,
    attachment_processor_spec,
    live_connections,
    mailbox_supervisor_spec,
    parse_pools,
)
from futurnal.supervisors.directory import ActorDirectory
from futurnal.supervisors.protocol import Ping
from futurnal.supervisors.supervisor import ChildSpec, Supervisor
from futurnal.sync.folder_selection import watchable
from futurnal.sync.sync_runs import MailboxSyncReport
from futurnal.system_operations import SystemNotRunning, SystemOperations

if TYPE_CHECKING:
    from futurnal.storage.postgres.leases import LeaseBook

_STOP_WAVE = 50  # mailboxes stopping at once (see ActorSystem._stop_roots)
_SERVICE_ROOTS = (actor_names.SCHEDULER_ROOT, actor_names.SINK_ROOT, actor_names.LEASES_ROOT)

__all__ = ["ActorSystem", "ReloadReport", "SystemNotRunning"]


@dataclass(frozen=True, slots=True)
class ReloadReport:
    """What :meth:`ActorSystem.reload` changed; mailboxes not named here were left untouched."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    restarted: tuple[str, ...] = ()
    schedules_changed: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.restarted or self.schedules_changed)


class ActorSystem:
    """The whole service inside one process: supervision tree, scheduler and sink.

    Embedders pass their own ``sink`` (see :class:`~futurnal.actors.sink.ElementSink`); the
    default is the SQLite element store in the data directory. Holding the data directory's lock for
    its whole life, it is the only writer of its state. Several systems on different data
    directories run side by side in one process: each has its own actors, directory and events.

    Here: its life cycle, syncs and events. ``operations`` (status, the actor tree, pause, resume)
    and ``admin`` (registering, removing, consent, schedules, re-authentication) are the rest of
    what it offers; the calls the README documents answer here too.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        settings: ServiceSettings | None = None,
        sink: ElementSink | None = None,
        credentials: CredentialStore | None = None,
    ) -> None:
        self.data_dir = DataDir(Path(data_dir))
        self.settings = settings or load_settings(self.data_dir.root / "config.toml")
        self.event_bus = EventBus()
        self._sink = sink  # None: the default store, opened at start once the lock is held
        self._own_store: ElementStore | None = None
        #: With a shared PostgreSQL store: this process's mailbox leases, which decide what it runs,
        #: and fence its writes there (the control plane's as well as the elements').
        self._leases = _lease_book(self.settings)
        self.data_dir = sharing(self.data_dir, self.settings.store_url, fence=self._leases)
        self._credentials = credentials or CredentialStore(data_dir=self.data_dir)
        self._lock = DataDirLock(self.data_dir.root)
        self._directory = ActorDirectory()
        self._stopping = threading.Event()
        # Root supervisors in start order: the sink's, one per mailbox ("root/<id>"), the scheduler's.
        self._roots: dict[str, pykka.ActorRef[Any]] = {}
        self._changes = threading.RLock()  # start, reload, stop and each admin use case, one at a time
        self._context: TreeContext | None = None
        self._selection: list[str] | None = None
        self._watch_folders: tuple[str, ...] | None = None
        self._schedule = True
        self._plans: list[MailboxSchedule] = []
        self._mailboxes: dict[str, MailboxRecord] = {}
        self._withheld: set[str] = set()  # consent revoked while running: actors stopped until granted
        self.failure: str | None = None
        self.failed = threading.Event()
        self._reconnects = ReconnectBoard()  # fed by the watchers' events for the system's whole life
        self.event_bus.subscribe(self._reconnects.seen)
        #: Status, the actor tree, pause and resume: what an operator asks of the running actors.
        self.operations = SystemOperations(
            self.data_dir, settings=lambda: self.settings, directory=self._directory, mailboxes=lambda: self._mailboxes,
            roots=lambda: self._roots, connections=lambda: self._context.connections if self._context else None,
            reconnects=self._reconnects, leases=self._leases.holders if self._leases is not None else None)
        #: The admin use cases (register, remove, consent, schedule, re-authentication) on this system.
        # The operator's changes (reauth, removal, purge) hold no lease: made through a view of the
        # shared control plane without the fence, as a command on another host would make them.
        operator_dir = sharing(DataDir(self.data_dir.root), self.settings.store_url)
        self.admin = SystemAdmin(self, LocalAdmin(
            operator_dir, credentials=self._credentials, settings=lambda: self.settings, actor_system=ActorSystem,
            writable_registry=self.writable_registry))

    @property
    def running(self) -> bool:
        return self._context is not None

    def start(
        self,
        mailbox_ids: list[str] | None = None,
        *,
        schedule: bool = True,
        watch: bool = True,
        watch_folders: tuple[str, ...] | None = None,
    ) -> ActorSystem:
        """Start actors for the given registered mailboxes (all of them by default).

        ``schedule``: run the scheduler; ``watch``: start folder watchers (IDLE or polling) for each
        mailbox's watched folders, or for ``watch_folders`` instead when given.
        """
        with self._changes:
            self.data_dir.ensure()
            self._lock.acquire()
            try:
                if self._leases is not None and mailbox_ids is not None:
                    raise SystemNotRunning(
                        "with a shared store ([store] url) the mailboxes' leases decide which process runs them: "
                        "start every mailbox (`run`), and see `ctl status` for who runs which")
                # With leases the keeper names the mailboxes to run, none until it holds some.
                self._selection = [] if self._leases is not None else None if mailbox_ids is None else list(mailbox_ids)
                self._watch_folders = watch_folders
                self._schedule = schedule
                records = self._registered(strict=True)
                self._mailboxes = {record.id: record for record in records}
                self._context = TreeContext(
                    settings=self.settings,
                    data_dir=self.data_dir,
                    credentials=self._credentials,
                    directory=self._directory,
                    events=self.event_bus,
                    stopping=self._stopping,
                    watch=watch,
                    retry_local_faults=schedule or watch,  # not for a one-shot sync, which reports and ends
                    connections=live_connections(self.settings),
                    reconnects=self._reconnects,
                    parse_pools=parse_pools(self.settings),
                )
                if self._sink is None:
                    self._own_store = open_store(self.data_dir, url=self.settings.store_url, fence=self._leases)
                sink = self._sink or self._own_store
                self._start_root(actor_names.SINK_ROOT, [
                    ChildSpec(actor_names.SINK, lambda parent: SinkActor.start(sink=sink, supervisor=parent)),
                    attachment_processor_spec(self._context),
                ])
                for record in records:
                    self._start_mailbox(record)
                if schedule:
                    self._start_scheduler(scheduled_mailboxes(records), sync_at_start=True)
                if self._leases is not None:
                    self._start_lease_keeper(self._leases)
            except BaseException:
                self._stop_actors()
                self._close_store()
                self._context = None
                self._lock.release()
                if self.failure:
                    raise SystemNotRunning(self.failure) from None
                raise
        logger.info("actor system started with {n} mailbox(es)", n=len(records))
        return self

    def reload(self) -> ReloadReport:
        """Re-read the mailbox registry and schedules; what SIGHUP does in ``run``.

        Mailboxes newly registered get their actors (and a first sync unless ``@manual``);
        removed ones are stopped (a sync in flight stops at its next batch boundary); a mailbox
        whose connection or folder settings changed is restarted the same way. Every other
        mailbox keeps running untouched, syncs in flight included. When any schedule or priority
        changed, or a mailbox came or went, the scheduler is replaced by one with the new
        timetable: the next runs are counted again from now, and a sync the old one had started
        finishes but no longer counts against ``sync.max_concurrent``.
        """
        with self._changes:
            if self._context is None:
                raise SystemNotRunning("the actor system is not running")
            records = self._registered(strict=False)
            wanted = {record.id: record for record in records}
            removed = [key for key in self._mailboxes if key not in wanted]
            added = [key for key in wanted if key not in self._mailboxes]
            restarted = [key for key, record in wanted.items()
                         if key in self._mailboxes and _connection(record) != _connection(self._mailboxes[key])]
            plans = scheduled_mailboxes(records) if self._schedule else []
            schedules_changed = self._schedule and plans != self._plans
            if schedules_changed:
                self._stop_root(actor_names.SCHEDULER_ROOT)
            for key in reversed([*removed, *restarted]):
                self._stop_root(actor_names.mailbox_root(key))
            for key in [*removed, *restarted, *added]:  # a new or changed registration: the login is tried again
                self._context.refused_logins.clear(key)
            started = [key for key in [*restarted, *added] if self._start_mailbox(wanted[key], reloading=True)]
            # Replaced, never changed in place: other threads look records up without the lock.
            self._mailboxes = {key: record for key, record in wanted.items()
                               if key in started or (key not in added and key not in restarted)}
            if schedules_changed:
                self._start_scheduler(plans, sync_at_start=False)
            scheduled = {plan.mailbox_id for plan in plans if plan.schedule.kind != "manual"}
            for key in started:  # what the scheduler does for every mailbox when the system starts
                if key in scheduled:
                    self._request(key, (), "startup")
        report = ReloadReport(tuple(added), tuple(removed), tuple(restarted), schedules_changed)
        logger.info("reloaded: {added} added, {removed} removed, {restarted} restarted, schedules {changed}",
                    added=len(added), removed=len(removed), restarted=len(restarted),
                    changed="changed" if schedules_changed else "unchanged")
        return report

    # -- the admin use cases on this system: see futurnal.admin.system_admin -----------------------

    def add_mailbox(self, record: MailboxRecord, *, password: str | None = None, consent: bool | tuple[str, ...] = False,
                    granted_by: str = "embedding application") -> MailboxRecord:
        """Register ``record`` with its password and consent; its actors start at once (:meth:`SystemAdmin.add_mailbox`)."""
        return self.admin.add_mailbox(record, password=password, consent=consent, granted_by=granted_by)

    def remove_mailbox(self, mailbox_id: str, *, purge: bool = False) -> dict[str, int]:
        """Stop and unregister a mailbox, with ``purge`` deleting its data (:meth:`SystemAdmin.remove_mailbox`)."""
        return self.admin.remove_mailbox(mailbox_id, purge=purge)

    def grant_consent(self, mailbox_id: str, granted_by: str, scopes: tuple[str, ...] = SCOPES,
                      expires_at: str | None = None) -> ConsentRecord:
        """Record consent; a revoked mailbox starts again (:meth:`SystemAdmin.grant_consent`)."""
        return self.admin.grant_consent(mailbox_id, granted_by, scopes, expires_at)

    def revoke_consent(self, mailbox_id: str) -> bool:
        """Withdraw consent and stop the mailbox's actors (:meth:`SystemAdmin.revoke_consent`)."""
        return self.admin.revoke_consent(mailbox_id)

    def reauthenticated(self, mailbox_id: str, auth: str | None = None) -> bool:
        """A renewed secret: audit it, restart the mailbox's actors (:meth:`SystemAdmin.reauthenticated`)."""
        return self.admin.reauthenticated(mailbox_id, auth)

    # -- the life cycle the admin use cases drive (futurnal.admin.system_admin.RunningSystem) ------

    def one_change(self) -> AbstractContextManager[object]:
        """Held for a whole admin use case: starting, reloading and stopping wait for it (reentrant)."""
        return self._changes

    @contextmanager
    def writable_registry(self) -> Iterator[MailboxRegistry]:
        """The registry for writing: a running system already holds the lock, else it is taken."""
        owned = self.running
        if not owned:
            self.data_dir.ensure()
            self._lock.acquire()
        try:
            with self.data_dir.registry() as registry:
                yield registry
        finally:
            if not owned:
                self._lock.release()

    def would_run(self, mailbox_id: str) -> bool:
        """A reload would start this newly registered mailbox: started for every one, or it among others."""
        return self.running and (self._selection is None or mailbox_id in self._selection)

    def runs(self, mailbox_id: str) -> bool:
        """The mailbox's actors are part of this running system."""
        return self.running and mailbox_id in self._mailboxes

    def withhold(self, mailbox_id: str) -> None:
        """Stop the mailbox's actors, if they run here, and start none until :meth:`admit`."""
        with self._changes:
            if self.runs(mailbox_id):
                self._withheld.add(mailbox_id)
                self.reload()

    def admit(self, mailbox_id: str) -> bool:
        """A withheld mailbox may start again at the next :meth:`reload`; False when it was not withheld."""
        with self._changes:
            if mailbox_id not in self._withheld:
                return False
            self._withheld.discard(mailbox_id)
            return True

    def restart_mailbox(self, mailbox_id: str) -> bool:
        """Start a running mailbox's actors afresh, its refused login forgotten (a renewed secret);
        False when they could not start: it is then no longer one of the running mailboxes."""
        with self._changes:
            self._stop_root(actor_names.mailbox_root(mailbox_id))
            assert self._context is not None
            self._context.refused_logins.clear(mailbox_id)
            if not self._start_mailbox(self._mailboxes[mailbox_id], reloading=True):
                # As in reload: a mailbox that cannot start is no longer one of the running ones.
                self._mailboxes = {key: kept for key, kept in self._mailboxes.items() if key != mailbox_id}
                return False
        return True

    def data_owners(self) -> MailboxDataOwners | None:
        """Who deletes a purged mailbox's elements and attachments: the sink and the attachment
        processor while the system runs (a purge must not race their writes), else nobody here."""
        return _ActorOwners(self._directory) if self.running else None

    def request_sync(
        self, mailbox_id: str, folders: tuple[str, ...] = (), reason: str = "manual"
    ) -> pykka.Future[MailboxSyncReport]:
        """Ask for a sync now; the future resolves to the run's report when it is done."""
        return self._request(mailbox_id, folders, reason)[1]

    def _request(
        self, mailbox_id: str, folders: tuple[str, ...], reason: str
    ) -> tuple[pykka.ActorRef[Any], pykka.Future[MailboxSyncReport]]:
        record = self.operations.record(mailbox_id)
        mailbox = self._directory.get(actor_names.mailbox(record.id))
        if mailbox is None:
            raise SystemNotRunning(f"mailbox {record.id} is not running")
        future: pykka.Future[MailboxSyncReport] = pykka.ThreadingFuture()
        mailbox.tell(SyncTick(reason=reason, folders=folders, reply_to=future))
        return mailbox, future
    def sync(self, mailbox_id: str, folders: tuple[str, ...] = (), timeout: float | None = None) -> MailboxSyncReport:
        """Sync and wait for the report (``timeout`` None waits as long as it takes).

        Raises :class:`SystemNotRunning` if the mailbox actor that took the request dies first
        (its supervisor gave up on it, or the whole tree did): that answer would never come.
        """
        mailbox, future = self._request(mailbox_id, folders, "manual")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = 0.5 if deadline is None else min(0.5, max(deadline - time.monotonic(), 0))
            try:
                return future.get(timeout=wait)
            except pykka.Timeout:
                if not mailbox.is_alive() or self.failed.is_set():
                    raise SystemNotRunning(
                        f"the actors of mailbox {mailbox_id} kept failing ({self.failure or 'see the log'}); "
                        "the sync resumes from where it stopped next time"
                    ) from None
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    def wait_for_attachments(self, timeout: float | None = None) -> int:
        """Wait until no attachment extraction is pending (or ``timeout`` passed); returns how many
        elements still wait. What is left runs on, or at the next start if the system stops first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            processor = self._directory.get(actor_names.ATTACHMENTS)
            try:
                pending = _ask_count(processor, CountPendingAttachments(), timeout=10) if processor else 0
            except pykka.ActorDeadError:
                pending = 0
            if pending == 0 or (deadline is not None and time.monotonic() >= deadline):
                return pending
            self._stopping.wait(0.1)
            if self._stopping.is_set():
                return pending

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Receive every progress event and sync report, on the publishing actor's thread;
        returns an unsubscribe function. Keep the callback short, or use :meth:`events`."""
        return self.event_bus.subscribe(callback)

    def events(self, timeout: float | None = None) -> Iterator[Any]:
        """Every event published from this call on, in order, through a queue (so a slow reader
        never holds up an actor). The iteration ends after ``timeout`` seconds without an event
        (None: only when the system stops), or when the caller stops iterating, which unsubscribes.

        Subscribes at once, not at the first ``next()``: events between this call and the loop
        are kept, so ``events = system.events(); system.request_sync(...)`` misses nothing.
        """
        inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        unsubscribe = self.event_bus.subscribe(inbox.put)
        return self._drain(inbox, unsubscribe, timeout)

    def _drain(self, inbox: queue.SimpleQueue[Any], unsubscribe: Callable[[], None],
               timeout: float | None) -> Iterator[Any]:
        try:
            while True:
                deadline = None if timeout is None else time.monotonic() + timeout
                while True:
                    wait = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
                    if wait <= 0:
                        return
                    try:
                        event = inbox.get(timeout=wait)
                        break
                    except queue.Empty:
                        if self._stopping.is_set():
                            return
                yield event
        finally:
            unsubscribe()

    # -- operating a running system: see futurnal.system_operations -----------------------------

    def status(self, mailbox_id: str | None = None, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Each mailbox's status with its actor's live state (:meth:`SystemOperations.status`)."""
        return self.operations.status(mailbox_id, timeout)

    def pause(self, mailbox_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """Start no syncs of the mailbox until :meth:`resume` (:meth:`SystemOperations.pause`)."""
        return self.operations.pause(mailbox_id, timeout)

    def resume(self, mailbox_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """Undo :meth:`pause` (:meth:`SystemOperations.resume`)."""
        return self.operations.resume(mailbox_id, timeout)

    def actor_tree(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The supervision tree (:meth:`SystemOperations.actor_tree`)."""
        return self.operations.actor_tree(timeout)

    def write_elements(self, elements: list[dict[str, Any]], timeout: float = 60.0) -> int:
        """Store elements through the sink actor, the store's only writer (quarantine retries)."""
        sink = self._directory.get(actor_names.SINK)
        if sink is None:
            raise SystemNotRunning("the sink is not running")
        return _ask_count(sink, WriteElements(tuple(elements)), timeout)

    def submit_attachments(self, work: list[Any], timeout: float = 60.0) -> int:
        """Hand attachment work to the processor, which queues it durably before answering."""
        processor = self._directory.get(actor_names.ATTACHMENTS)
        if processor is None:
            raise SystemNotRunning("the attachment processor is not running")
        return _ask_count(processor, SubmitAttachments(tuple(work)), timeout)

    def stop(self) -> None:
        """Stop every actor in reverse start order; syncs in flight stop at the next batch boundary."""
        with self._changes:
            if self._context is None:
                return
            self._stopping.set()
            # Reads blocked in a FETCH or in IDLE end now, instead of each at its own timeout.
            self._context.connections.cut_all()
            self._stop_actors()
            self._context.parse_pools.close()  # after the fetchers gave theirs back
            self._close_store()
            self._leave_leases()
            self._context = None
            self._lock.release()
        logger.info("actor system stopped")

    def _leave_leases(self) -> None:
        """Give every lease back at once, so other processes take the mailboxes over without waiting."""
        if self._leases is None:
            return
        try:
            self._leases.leave()
        except Exception as exc:  # noqa: BLE001 - the leases then run out on their own
            logger.warning("could not give the mailbox leases back ({error}); they expire in {seconds:g} s",
                           error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                           seconds=self._leases.lease_seconds)
        self._leases.close()

    def _close_store(self) -> None:
        if self._own_store is not None:
            self._own_store.close()
            self._own_store = None

    def _registered(self, *, strict: bool) -> list[MailboxRecord]:
        """The registered records this system runs: all, or the selection given to ``start``.

        ``strict``: an unknown selected id is an error (at start) rather than a removal (reload).
        """
        registry = self.data_dir.registry(read_only=True)
        try:
            if self._selection is None:
                records = registry.all()
            elif strict:
                records = [registry.get(key) for key in self._selection]
            else:
                records = [record for record in registry.all()
                           if record.id in self._selection or record.email in self._selection]
        finally:
            registry.close()
        records = [record for record in records if record.id not in self._withheld]
        if self._watch_folders is not None:
            records = [record.with_changes(watch=self._watch_folders) for record in records]
        return [_watching_selected(record) for record in records]

    def _start_root(self, root_id: str, specs: list[ChildSpec],
                    on_give_up: Callable[[str], None] | None = None) -> None:
        assert self._context is not None
        root = Supervisor.start(
            child_id=root_id,
            specs=specs,
            directory=self._directory,
            intensity=self._context.intensity(),
            on_give_up=on_give_up or self._gave_up,
            publish=self.event_bus.publish,
        )
        self._roots[root_id] = root
        root.ask(Ping(), timeout=60)

    def _start_mailbox(self, record: MailboxRecord, *, reloading: bool = False) -> bool:
        """Start the mailbox's root; at start a failure stops the system, on reload only that mailbox."""
        assert self._context is not None
        redactor.add_mailbox(record.id, record.email)  # before any of its actors logs
        spec = mailbox_supervisor_spec(self._context, record)
        if not reloading:
            self._start_root(actor_names.mailbox_root(record.id), [spec])
            return True

        def log_give_up(reason: str) -> None:
            logger.error("mailbox {mailbox} could not start after reload: {reason}", mailbox=record.id, reason=reason)

        try:
            self._start_root(actor_names.mailbox_root(record.id), [spec], on_give_up=log_give_up)
        except Exception as exc:
            self._stop_root(actor_names.mailbox_root(record.id))
            log_give_up(f"{exc.__class__.__name__}: {exc}")
            return False
        return True

    def _start_lease_keeper(self, book: LeaseBook) -> None:
        from futurnal.actors.lease_keeper import LeaseKeeperActor  # psycopg is an extra: only when shared

        data_dir = self.data_dir

        def registered() -> dict[str, MailboxRecord]:
            with data_dir.registry(read_only=True) as registry:
                return {record.id: record for record in registry.all()}

        def start_keeper(parent: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
            return LeaseKeeperActor.start(book=book, registered=registered, run_only=self._run_only, supervisor=parent)

        self._start_root(actor_names.LEASES_ROOT, [ChildSpec(actor_names.LEASE_KEEPER, start_keeper)])

    def _run_only(self, leased: Callable[[], frozenset[str]], registry_changed: bool = False) -> None:
        """The lease keeper's "run exactly these mailboxes", the set read under the lock (a
        watchdog's stop in between is never undone). Mailboxes no longer leased stop first, with
        nothing read from the database, which may be out of reach; newly leased ones start through
        a reload, as do changed registrations (``registry_changed``: from another host, say).
        Returns at once when the system stops."""
        while not self._changes.acquire(timeout=0.5):
            if self._stopping.is_set():
                return
        try:
            if self._context is None or self._stopping.is_set():
                return
            wanted = leased()
            self._selection = sorted(wanted)
            if dropped := [key for key in self._mailboxes if key not in wanted]:
                self._stop_roots([actor_names.mailbox_root(key) for key in reversed(dropped)])
                self._mailboxes = {key: record for key, record in self._mailboxes.items() if key not in dropped}
                logger.info("stopped {n} mailbox(es) whose leases this process no longer holds", n=len(dropped))
            if registry_changed or wanted - set(self._mailboxes):
                self.reload()
        finally:
            self._changes.release()

    def _start_scheduler(self, plans: list[MailboxSchedule], *, sync_at_start: bool) -> None:
        directory, limit = self._directory, self.settings.max_concurrent_syncs

        def start_scheduler(parent: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
            return SchedulerActor.start(directory=directory, mailboxes=plans, max_concurrent=limit,
                                        sync_at_start=sync_at_start, supervisor=parent)

        self._plans = plans
        self._start_root(actor_names.SCHEDULER_ROOT, [ChildSpec(actor_names.SCHEDULER, start_scheduler)])

    def _stop_root(self, root_id: str) -> None:
        self._stop_roots([root_id])

    def _stop_roots(self, root_ids: list[str]) -> None:
        """Stop roots together, at most ``_STOP_WAVE`` at a time, all within one shared timeout.

        Together, so ten hung mailboxes stop in the time of one; in waves, because a thousand
        mailboxes' five thousand threads all stopping at once mostly wait for each other (the
        actor registry's lock and the GIL): 1,000 bare supervisors of five actors each took 2.7 s
        to stop all at once and 1.1 s in waves of 50.
        """
        deadline = time.monotonic() + self.settings.stop_timeout_seconds * 3
        for start in range(0, len(root_ids), _STOP_WAVE):
            stopping = []
            for root_id in root_ids[start:start + _STOP_WAVE]:
                root = self._roots.pop(root_id, None)
                if root is not None and root.is_alive():
                    stopping.append((root_id, root.stop(block=False)))
            for root_id, done in stopping:
                try:
                    done.get(timeout=max(0.0, deadline - time.monotonic()))
                except pykka.Timeout:
                    logger.warning("some actors of {root} did not stop in time; going on (state on disk is "
                                   "consistent)", root=root_id)

    def _stop_actors(self) -> None:
        """The scheduler first (no new syncs), then every mailbox together (they share nothing, so
        a thousand mailboxes, or ten hung ones, stop in the time of one), then the sink they write to."""
        roots = list(self._roots)
        mailboxes = [root for root in roots if root not in _SERVICE_ROOTS]
        self._stop_roots([actor_names.LEASES_ROOT])  # first: it would start mailboxes again
        self._stop_roots([actor_names.SCHEDULER_ROOT])
        self._stop_roots(mailboxes)
        self._stop_roots([actor_names.SINK_ROOT])

    def _gave_up(self, reason: str) -> None:
        self.failure = reason
        self.failed.set()

    def __enter__(self) -> ActorSystem:
        """Starts every registered mailbox, unless ``start(...)`` already ran (``with system.start(...):``)."""
        return self if self.running else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class _ActorOwners:
    """A purge on a running system: the sink and the attachment processor delete what they own."""

    def __init__(self, directory: ActorDirectory, timeout: float = 120.0) -> None:
        self._directory = directory
        self._timeout = timeout

    def forget_elements(self, mailbox_id: str) -> int:
        return self._ask(actor_names.SINK, mailbox_id)

    def forget_attachments(self, mailbox_id: str) -> int:
        return self._ask(actor_names.ATTACHMENTS, mailbox_id)

    def _ask(self, name: str, mailbox_id: str) -> int:
        owner = self._directory.get(name)
        if owner is None:
            raise SystemNotRunning(f"the {name} actor is restarting; nothing was purged, try again")
        return _ask_count(owner, ForgetMailbox(mailbox_id), self._timeout)


def _ask_count(ref: pykka.ActorRef[Any],
               message: WriteElements | SubmitAttachments | CountPendingAttachments | ForgetMailbox,
               timeout: float) -> int:
    """Ask the sink or the attachment processor one of the messages they answer with a count."""
    count: int = ref.ask(message, block=True, timeout=timeout)
    return count


def _lease_book(settings: ServiceSettings) -> LeaseBook | None:
    """The process's leases when the store is shared (``[store] url``), else None."""
    if not settings.store_url:
        return None
    try:
        from futurnal.storage.postgres.leases import LeaseBook
    except ImportError as exc:
        raise StorageError(f"the shared store ([store] url) needs psycopg ({exc}): "
                           "pip install 'futurnal-actors[postgres]'") from None
    return LeaseBook(settings.store_url, lease_seconds=settings.lease_seconds,
                     max_mailboxes=settings.max_mailboxes or None)


def _watching_selected(record: MailboxRecord) -> MailboxRecord:
    """The record with only the watched folders its selection may hold: a watcher's change is
    synced, so watching a folder the selection leaves out would ingest it (see ``watchable``)."""
    watch = watchable(record.folders, record.exclude, record.watch)
    if left_out := [folder for folder in record.watch if folder not in watch]:
        logger.bind(mailbox=record.id).warning(
            "not watching {folders}: outside the mailbox's folder selection", folders=", ".join(left_out))
    return record.with_changes(watch=watch)


def _connection(record: MailboxRecord) -> MailboxRecord:
    """The record without its schedule and priority: what a change of needs the mailbox restarted for."""
    return record.with_changes(schedule=None, priority="normal", sync_interval_seconds=0)
