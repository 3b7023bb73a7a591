"""FolderWatcher: one per watched folder; tells the mailbox actor when the folder changed."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from futurnal.events import EventBus
from futurnal.mail.idle_watch import SERVER_NOTIFICATION, IdleWatch, WatchEvent, WatchSettings
from futurnal.mail.session import ImapSession
from futurnal.storage.clock import utc_now

from .directory import ActorDirectory
from .messages import FolderChanged, FolderWatchSeen
from .supervised import SupervisedActor

__all__ = ["FolderWatcher"]


class FolderWatcher(SupervisedActor):
    """Owns the thread that runs :class:`IdleWatch` (IDLE blocks, so it cannot run in the actor).

    The thread only talks outwards: tells to the mailbox actor, events on the bus. Stopping the
    actor sets the stop flag; the loop notices within ``check_seconds`` and closes its connection.
    """

    def __init__(
        self,
        *,
        mailbox_id: str,
        folder: str,
        connect: Callable[[], ImapSession],
        directory: ActorDirectory,
        events: EventBus,
        settings: WatchSettings = WatchSettings(),
        supervisor: Any = None,
    ) -> None:
        super().__init__(child_id=f"watcher/{mailbox_id}/{folder}", supervisor=supervisor)
        self._mailbox_id = mailbox_id
        self._directory = directory
        self._events = events
        self._stop_watching = threading.Event()
        self._watch = IdleWatch(
            mailbox=mailbox_id, folder=folder, connect=connect, notify=self._notify, stop=self._stop_watching,
            settings=settings,
        )
        self._thread: threading.Thread | None = None

    def on_start(self) -> None:
        self._thread = threading.Thread(target=self._watch.run, name=f"watch-{self.child_id}", daemon=True)
        self._thread.start()

    def _notify(self, event: WatchEvent) -> None:
        self._events.publish(event)
        if event.kind == "changed":
            mailbox = self._directory.get(f"mailbox/{self._mailbox_id}")
            if mailbox is not None:
                mailbox.tell(FolderChanged(event.folder, event.detail))
        # Told after FolderChanged, so recording it never delays the sync it asks for. Best
        # effort: a fetcher restarting right now misses one freshness stamp, not a message.
        seen = None
        if event.kind == "changed" and event.detail == SERVER_NOTIFICATION:
            seen = FolderWatchSeen(event.folder, utc_now(), server_event=True)
        elif event.kind == "connected":
            seen = FolderWatchSeen(event.folder, utc_now(), server_event=False, mode=event.detail)
        fetcher = self._directory.get(f"fetcher/{self._mailbox_id}") if seen else None
        if fetcher is not None:
            fetcher.tell(seen)

    def on_stop(self) -> None:
        self._stop_watching.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self._stop_watching.set()
        super().on_failure(exception_type, exception_value, traceback)
