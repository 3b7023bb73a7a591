"""The public API: start the actor system in this process, sync, watch, stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import pykka
from loguru import logger

from futurnal.actors.directory import ActorDirectory
from futurnal.actors.messages import SyncTick
from futurnal.actors.sink import ElementSink
from futurnal.config import ServiceSettings, load_settings
from futurnal.events import EventBus
from futurnal.mail.sync_runs import MailboxSyncReport
from futurnal.storage.credentials import CredentialStore
from futurnal.storage.data_dir import DataDir
from futurnal.storage.element_store import ElementStore
from futurnal.storage.lock import DataDirLock
from futurnal.storage.registry import MailboxRecord, MailboxRegistry
from futurnal.supervisors.tree import TreeContext, start_root

__all__ = ["ActorSystem", "SystemNotRunning"]


class SystemNotRunning(RuntimeError):
    """The call needs a started system (or the mailbox is not part of it)."""


class ActorSystem:
    """The whole service inside one process: supervision tree, scheduler and sink.

    Embedders pass their own ``sink`` (anything with ``upsert_many``); the default writes element
    files under the data directory. Holding the data directory's lock for its whole life, it is
    the only writer of its state.
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
        self.events = EventBus()
        self._sink = sink or ElementStore(self.data_dir.elements_root)
        self._credentials = credentials or CredentialStore()
        self._lock = DataDirLock(self.data_dir.root)
        self._directory = ActorDirectory()
        self._stopping = threading.Event()
        self._root: pykka.ActorRef[Any] | None = None
        self._mailboxes: dict[str, MailboxRecord] = {}
        self.failure: str | None = None
        self.failed = threading.Event()

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
        self.data_dir.ensure()
        self._lock.acquire()
        try:
            registry = MailboxRegistry(self.data_dir.registry_path, read_only=True)
            records = registry.all() if mailbox_ids is None else [registry.get(key) for key in mailbox_ids]
            registry.close()
            if watch_folders is not None:
                records = [record.with_changes(watch=watch_folders) for record in records]
            self._mailboxes = {record.id: record for record in records}
            context = TreeContext(
                settings=self.settings,
                data_dir=self.data_dir,
                credentials=self._credentials,
                directory=self._directory,
                events=self.events,
                stopping=self._stopping,
                watch=watch,
            )
            self._root = start_root(
                context, sink=self._sink, mailboxes=records, schedule=schedule, on_give_up=self._gave_up
            )
        except BaseException:
            self._stop_actors()
            self._lock.release()
            if self.failure:
                raise SystemNotRunning(self.failure) from None
            raise
        logger.info("actor system started with {n} mailbox(es)", n=len(records))
        return self

    def request_sync(
        self, mailbox_id: str, folders: tuple[str, ...] = (), reason: str = "manual"
    ) -> pykka.Future[MailboxSyncReport]:
        """Ask for a sync now; the future resolves to the run's report when it is done."""
        return self._request(mailbox_id, folders, reason)[1]

    def _request(
        self, mailbox_id: str, folders: tuple[str, ...], reason: str
    ) -> tuple[pykka.ActorRef[Any], pykka.Future[MailboxSyncReport]]:
        record = self._record(mailbox_id)
        mailbox = self._directory.get(f"mailbox/{record.id}")
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

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Receive every progress event and sync report; returns an unsubscribe function."""
        return self.events.subscribe(callback)

    def stop(self) -> None:
        """Stop every actor in reverse start order; syncs in flight stop at the next batch boundary."""
        self._stopping.set()
        self._stop_actors()
        self._lock.release()
        logger.info("actor system stopped")

    def _stop_actors(self) -> None:
        root, self._root = self._root, None
        if root is not None and root.is_alive():
            try:
                root.stop(block=True, timeout=self.settings.stop_timeout_seconds * 3)
            except pykka.Timeout:
                logger.warning("some actors did not stop in time; exiting anyway (state on disk is consistent)")

    def _record(self, key: str) -> MailboxRecord:
        for record in self._mailboxes.values():
            if key in (record.id, record.email):
                return record
        raise SystemNotRunning(f"mailbox {key!r} is not part of this running system")

    def _gave_up(self, reason: str) -> None:
        self.failure = reason
        self.failed.set()

    def __enter__(self) -> ActorSystem:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
