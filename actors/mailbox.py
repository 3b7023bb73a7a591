"""MailboxActor: turns sync ticks into folder jobs for its fetcher and reports finished runs."""

from __future__ import annotations

from typing import Any

from loguru import logger

from futurnal.events import EventBus
from futurnal.mail.sync_runs import FolderJob, MailboxSyncReport, RunFinished, SyncRuns, SyncStarted
from futurnal.pauses import PauseBoard
from futurnal.refused_logins import RefusedLogins
from futurnal.storage.clock import utc_now

from .directory import ActorDirectory
from .messages import (
    DescribeMailbox,
    FolderChanged,
    FolderSynced,
    FoldersResolved,
    FolderWatchSeen,
    PauseMailbox,
    ResolveFolders,
    ResumeMailbox,
    SiblingRestarted,
    SyncFolder,
    SyncTick,
)
from .supervised import SupervisedActor

__all__ = ["MailboxActor"]


class MailboxActor(SupervisedActor):
    """One per mailbox; the plain :class:`SyncRuns` decides, this shell only sends and replies."""

    def __init__(
        self,
        *,
        mailbox_id: str,
        directory: ActorDirectory,
        events: EventBus,
        pauses: PauseBoard | None = None,
        refused_logins: RefusedLogins | None = None,
        supervisor: Any = None,
    ) -> None:
        super().__init__(child_id=f"mailbox/{mailbox_id}", supervisor=supervisor)
        self._mailbox_id = mailbox_id
        self._runs = SyncRuns(mailbox_id)
        self._directory = directory
        self._events = events
        self._pauses = pauses or PauseBoard()
        # Folders asked for while paused: None nothing, () the whole selection.
        self._missed: tuple[str, ...] | None = None
        self._refused = refused_logins or RefusedLogins()
        self._last_run: dict[str, Any] | None = None
        self._announced_run = 0
        self._log = logger.bind(mailbox=mailbox_id)

    def handle(self, message: Any) -> Any:
        if isinstance(message, SyncTick):
            return self._on_tick(message)
        if isinstance(message, FolderChanged):
            # A burst of notifications during a sync folds into one follow-up sync of the folder.
            return self._on_tick(SyncTick(reason=f"watcher: {message.reason}", folders=(message.folder,)))
        if isinstance(message, FolderWatchSeen):
            # Queued behind the SyncFolder just sent for the same notification, if any.
            fetcher = self._directory.get(f"fetcher/{self._mailbox_id}")
            return fetcher.tell(message) if fetcher is not None else None
        if isinstance(message, FoldersResolved):
            if message.needs_reauth and message.errors:
                self._mark_needs_reauth(message.errors[0][1])
            return self._dispatch(*self._runs.resolved(message.run_id, message.folders, message.errors))
        if isinstance(message, FolderSynced):
            if message.needs_reauth and message.error:
                self._mark_needs_reauth(message.error)
            jobs, finished = self._runs.folder_done(message.run_id, message.folder, message.result, message.error)
            return self._dispatch(jobs, finished)
        if isinstance(message, SiblingRestarted) and message.child_id == f"fetcher/{self._mailbox_id}":
            return self._dispatch(*self._runs.fetcher_restarted())
        if isinstance(message, PauseMailbox):
            return self._pause()
        if isinstance(message, ResumeMailbox):
            return self._resume()
        if isinstance(message, DescribeMailbox):
            return self._describe()
        return super().handle(message)

    def _pause(self) -> dict[str, Any]:
        if self._pauses.pause(self._mailbox_id):
            self._log.info("paused")
        follow_up = self._runs.take_follow_up()  # queued before the pause: it waits for the resume too
        if follow_up is not None:
            folders, waiters = follow_up
            self._remember_missed(folders)
            report = MailboxSyncReport(self._mailbox_id, (), (), skipped="paused")
            self._dispatch([], RunFinished(report, tuple(waiters)), publish=False)
        return self._describe()

    def _remember_missed(self, folders: tuple[str, ...]) -> None:
        whole = self._missed == () or not folders
        self._missed = () if whole else tuple(dict.fromkeys((*(self._missed or ()), *folders)))

    def _resume(self) -> dict[str, Any]:
        if self._pauses.resume(self._mailbox_id):
            self._log.info("resumed")
            if self._missed is not None:
                missed, self._missed = self._missed, None
                self._on_tick(SyncTick(reason="missed while paused", folders=missed))
        return self._describe()

    def _describe(self) -> dict[str, Any]:
        paused = self._pauses.is_paused(self._mailbox_id)
        needs_reauth = self._refused.reason(self._mailbox_id)
        state = ("needs-reauth" if needs_reauth is not None else "syncing" if self._runs.running
                 else "paused" if paused else "idle")
        return {
            "mailbox": self._mailbox_id,
            "state": state,
            "paused": paused,
            "syncing": self._runs.running,
            "follow_up_queued": self._runs.follow_up_queued,
            "missed_while_paused": self._missed is not None,
            "needs_reauth": needs_reauth,
            "last_run": self._last_run,
            "inbox": self.actor_inbox.qsize(),
        }

    def _mark_needs_reauth(self, reason: str) -> None:
        self._refused.refuse(self._mailbox_id, reason)
        self._log.warning("mailbox needs re-authentication; its syncs stop until the user acts")

    def _on_tick(self, tick: SyncTick) -> None:
        if self._pauses.is_paused(self._mailbox_id):
            # Remembered, not lost: resuming runs one sync covering everything asked for meanwhile.
            self._remember_missed(tick.folders)
            report = MailboxSyncReport(self._mailbox_id, (), (), skipped="paused")
            self._dispatch([], RunFinished(report, (tick.reply_to,) if tick.reply_to else ()), publish=False)
            return
        if (refused := self._refused.reason(self._mailbox_id)) is not None:
            report = MailboxSyncReport(self._mailbox_id, (), (("*", f"needs re-authentication: {refused}"),))
            self._dispatch([], RunFinished(report, (tick.reply_to,) if tick.reply_to else ()))
            return
        self._log.debug("sync requested ({reason})", reason=tick.reason)
        self._dispatch(self._runs.request(tick.folders, tick.reply_to), None)

    def _dispatch(self, jobs: list[FolderJob], finished: RunFinished | None, *, publish: bool = True) -> None:
        if finished is not None:
            for waiter in finished.waiters:
                waiter.set(finished.report)
            if publish:
                report = finished.report
                self._last_run = {"finished": utc_now(), "fetched": report.fetched, "errors": len(report.errors)}
                self._events.publish(report)
        if not jobs:
            return
        if jobs[0].run_id != self._announced_run:
            self._announced_run = jobs[0].run_id
            self._events.publish(SyncStarted(self._mailbox_id, jobs[0].run_id,
                                             tuple(job.folder for job in jobs if job.folder is not None)))
        fetcher = self._directory.get(f"fetcher/{self._mailbox_id}")
        if fetcher is None:
            # Restarting: the supervisor's SiblingRestarted will re-drive these jobs.
            self._log.info("fetcher is restarting; {n} folder job(s) wait for it", n=len(jobs))
            return
        for job in jobs:
            fetcher.tell(ResolveFolders(job.run_id) if job.folder is None else SyncFolder(job.run_id, job.folder))
