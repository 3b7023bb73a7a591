"""FolderWatcher: watches a mailbox's folders; tells the mailbox actor when one changed."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from futurnal.events import EventBus
from futurnal.imap.idle_watch import SERVER_NOTIFICATION, IdleWatch, WatchEvent, WatchSettings
from futurnal.imap.notify_watch import NotifyWatch
from futurnal.imap.session import ImapSession
from futurnal.storage.clock import utc_now
from futurnal.supervisors.directory import ActorDirectory

from . import actor_names
from .messages import FolderChanged, FolderWatchSeen
from .service_actor import ServiceActor

__all__ = ["FolderWatcher"]


class FolderWatcher(ServiceActor):
    """Owns the threads that run the watch loops (IDLE blocks, so it cannot run in the actor).

    Without ``notify``: one :class:`IdleWatch` per folder (the tree gives each folder its own
    watcher). With ``notify``: one :class:`NotifyWatch` for all ``folders`` on one connection;
    on a server without NOTIFY it falls back to one IdleWatch per folder, for as many folders
    as ``idle_room`` (what the connection budget leaves) allows.

    The threads only talk outwards: tells to the mailbox actor, events on the bus. Stopping the
    actor stops every watch, which cuts its connection: a thread blocked in IDLE returns at once.
    Threads: one per IDLE connection, so at most one per watched folder (one in all with NOTIFY).
    """

    def __init__(
        self,
        *,
        child_id: str,
        mailbox_id: str,
        folders: tuple[str, ...],
        connect: Callable[[], ImapSession],
        directory: ActorDirectory,
        events: EventBus,
        settings: WatchSettings = WatchSettings(),
        notify: bool = False,
        idle_room: int | None = None,
        system_stopping: threading.Event | None = None,
        supervisor: Any = None,
    ) -> None:
        super().__init__(child_id=child_id, supervisor=supervisor)
        self._mailbox_id = mailbox_id
        self._folders = folders
        self._connect = connect
        self._directory = directory
        self._events = events
        self._settings = settings
        self._notify_first = notify
        self._idle_room = len(folders) if idle_room is None else idle_room
        self._stop_watching = threading.Event()
        self._system_stopping = system_stopping
        self._threads: list[threading.Thread] = []
        self._watches: list[IdleWatch] = []
        self._threads_lock = threading.Lock()

    def on_start(self) -> None:
        if self._notify_first:
            self._start(NotifyWatch(folders=self._folders, **self._loop_options()), then=self._after_notify)
        else:
            self._start_idle_watches()

    def _after_notify(self, watch: IdleWatch) -> None:
        if watch.mode == "not-possible" and not self._stop_watching.is_set():
            self._start_idle_watches()

    def _start_idle_watches(self) -> None:
        for folder in self._folders[: self._idle_room]:
            self._start(IdleWatch(folder=folder, **self._loop_options()))

    def _loop_options(self) -> dict[str, Any]:
        return {"mailbox": self._mailbox_id, "connect": self._connect, "notify": self._notify,
                "stop": self._stop_watching, "settings": self._settings, "halt": self._system_stopping}

    def _start(self, watch: IdleWatch, then: Callable[[IdleWatch], None] | None = None) -> None:
        def run() -> None:
            watch.run()
            if then is not None:
                then(watch)

        thread = threading.Thread(target=run, name=f"watch-{self.child_id}", daemon=True)
        with self._threads_lock:
            if self._stop_watching.is_set():
                return  # stopping: on_stop has already stopped every watch it will
            self._watches.append(watch)
            self._threads.append(thread)
        thread.start()

    def _stop_watches(self) -> list[threading.Thread]:
        with self._threads_lock:
            self._stop_watching.set()
            watches, threads = list(self._watches), list(self._threads)
        for watch in watches:
            watch.stop()
        return threads

    def _notify(self, event: WatchEvent) -> None:
        self._events.publish(event)
        if event.kind == "changed":
            mailbox = self._directory.get(actor_names.mailbox(self._mailbox_id))
            if mailbox is not None:
                mailbox.tell(FolderChanged(event.folder, event.detail))
        # For the fetcher (the state file's one writer), by way of the mailbox actor, which
        # forwards it after the sync that FolderChanged asked for: recording a freshness stamp
        # must not delay the sync. Best effort: an actor restarting now misses one stamp.
        seen = None
        if event.kind == "changed" and event.detail == SERVER_NOTIFICATION:
            seen = FolderWatchSeen(event.folder, utc_now(), server_event=True)
        elif event.kind == "connected":
            seen = FolderWatchSeen(event.folder, utc_now(), server_event=False, mode=event.detail)
        mailbox = self._directory.get(actor_names.mailbox(self._mailbox_id)) if seen else None
        if mailbox is not None:
            mailbox.tell(seen)

    def on_stop(self) -> None:
        for thread in self._stop_watches():
            thread.join(timeout=10)

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self._stop_watches()
        super().on_failure(exception_type, exception_value, traceback)
