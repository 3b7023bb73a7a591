"""MailboxActor: turns sync ticks into folder jobs for its fetcher and reports finished runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pykka
from loguru import logger

from futurnal.events import EventBus
from futurnal.mailboxes.pauses import PauseBoard
from futurnal.mailboxes.refused_logins import RefusedLogins
from futurnal.storage.clock import utc_now
from futurnal.supervisors.directory import ActorDirectory
from futurnal.supervisors.protocol import SiblingRestarted
from futurnal.supervisors.supervised import inbox_size
from futurnal.sync.provider_holds import seconds_until
from futurnal.sync.sync_runs import FolderJob, MailboxSyncReport, RunFinished, SyncRuns, SyncStarted

from . import actor_names
from .messages import (
    DescribeMailbox,
    FolderChanged,
    FoldersResolved,
    FolderSynced,
    FolderWatchSeen,
    PauseMailbox,
    ResolveFolders,
    ResumeMailbox,
    SyncFolder,
    SyncTick,
)
from .service_actor import ServiceActor

__all__ = ["MailboxActor", "RetryBackoff"]

Schedule = Callable[[float, Callable[[], None]], None]
"""``schedule(delay, fn)``: run ``fn`` once, about ``delay`` seconds from now, on any thread."""


class RetryBackoff(Protocol):
    """The delays between retries after local faults (the supervisors' ``RestartBackoff`` fits):
    ``next_delay`` after each failed try, ``started`` once a try got through."""

    def next_delay(self) -> float: ...

    def started(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _RetryDue:
    """From the actor's own retry timer: sync again after a local fault. Private to this actor."""


@dataclass(frozen=True, slots=True)
class _HoldOver:
    """From the actor's own timer: the provider's hold that ended at ``until`` is over."""

    until: str


class MailboxActor(ServiceActor):
    """One per mailbox; the plain :class:`SyncRuns` decides, this shell only sends and replies."""

    def __init__(
        self,
        *,
        mailbox_id: str,
        directory: ActorDirectory,
        events: EventBus,
        pauses: PauseBoard | None = None,
        refused_logins: RefusedLogins | None = None,
        retry: RetryBackoff | None = None,
        schedule: Schedule | None = None,
        supervisor: Any = None,
    ) -> None:
        super().__init__(child_id=actor_names.mailbox(mailbox_id), supervisor=supervisor)
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
        # Local faults (a full disk, a missing CA file): folder ("*": the whole mailbox) -> error.
        # ``_faults`` lasts until a run gets through without one, ``_run_faults`` is this run's.
        self._retry = retry
        self._schedule = schedule
        self._faults: dict[str, str] = {}
        self._faults_since: str | None = None
        self._run_faults: dict[str, str] = {}
        self._retry_pending = False
        # The provider's hold (UTC time), as the fetcher last said; one retry is scheduled for its end.
        self._held_until: str | None = None
        self._hold_retry: str | None = None

    def handle(self, message: Any) -> Any:
        if isinstance(message, SyncTick):
            return self._on_tick(message)
        if isinstance(message, FolderChanged):
            # A burst of notifications during a sync folds into one follow-up sync of the folder.
            return self._on_tick(SyncTick(reason=f"watcher: {message.reason}", folders=(message.folder,)))
        if isinstance(message, FolderWatchSeen):
            # Queued behind the SyncFolder just sent for the same notification, if any.
            fetcher = self._directory.get(actor_names.fetcher(self._mailbox_id))
            return fetcher.tell(message) if fetcher is not None else None
        if isinstance(message, FoldersResolved):
            self._note_hold(message.held_until)
            if message.needs_reauth and message.errors:
                self._mark_needs_reauth(message.errors[0][1])
            if message.local_fault:
                self._run_faults.update(message.errors)
            return self._dispatch(*self._runs.resolved(message.run_id, message.folders, message.errors))
        if isinstance(message, FolderSynced):
            self._note_hold(message.held_until)
            if message.needs_reauth and message.error:
                self._mark_needs_reauth(message.error)
            if message.local_fault and message.error:
                self._run_faults[message.folder] = message.error
            jobs, finished = self._runs.folder_done(message.run_id, message.folder, message.result, message.error)
            return self._dispatch(jobs, finished)
        if isinstance(message, SiblingRestarted) and message.child_id == actor_names.fetcher(self._mailbox_id):
            return self._dispatch(*self._runs.fetcher_restarted())
        if isinstance(message, PauseMailbox):
            return self._pause()
        if isinstance(message, ResumeMailbox):
            return self._resume()
        if isinstance(message, DescribeMailbox):
            return self._describe()
        if isinstance(message, _RetryDue):
            return self._retry_now()
        if isinstance(message, _HoldOver):
            return self._hold_over(message.until)
        return super().handle(message)

    # -- local faults ----------------------------------------------------------------------

    def _after_run(self, report: MailboxSyncReport) -> None:
        """A run ended: retry later if a local fault stopped it, or note that the fault is over."""
        faults, self._run_faults = self._run_faults, {}
        if faults:
            self._fault_continues(faults)
        elif self._faults and report.skipped is None:
            self._log.info("syncing again: {faults} is over", faults=_describe_faults(self._faults))
            self._faults, self._faults_since = {}, None
            if self._retry is not None:
                self._retry.started()

    def _fault_continues(self, faults: dict[str, str]) -> None:
        """Report a fault once (a warning when it starts or changes, debug while it lasts), and
        schedule one retry: with back-off, so a disk that stays full costs little."""
        new = faults != self._faults
        if new:
            self._faults_since = utc_now()
        self._faults = faults
        if self._retry is None or self._schedule is None:  # a one-shot sync: its report says it all
            self._log.info("sync stopped: {faults}", faults=_describe_faults(faults))
            return
        if self._retry_pending:
            return
        delay = self._retry.next_delay()
        self._retry_pending = True
        log = self._log.warning if new else self._log.debug
        log("sync stopped: {faults}; next try in {delay:.0f} s", faults=_describe_faults(faults), delay=delay)
        ref = self.actor_ref

        def due() -> None:
            try:
                ref.tell(_RetryDue())
            except pykka.ActorDeadError:
                pass  # stopped meanwhile: its successor syncs on its own schedule

        self._schedule(delay, due)

    def _retry_now(self) -> None:
        self._retry_pending = False
        if self._faults:  # a scheduled or watcher's sync may have got through meanwhile
            self._on_tick(SyncTick(reason="retry after a local fault"))

    # -- the provider's holds ----------------------------------------------------------------

    def _note_hold(self, until: str | None) -> None:
        """The fetcher said the provider holds the mailbox until ``until`` (None: it synced, or
        failed otherwise). One retry is scheduled for the hold's end, none before: the scheduler's
        ticks meanwhile are answered by the fetcher without a connection."""
        if until is None:
            if self._hold_retry is None:
                self._held_until = None
            return
        self._held_until = until
        if self._schedule is None or self._hold_retry == until:
            return
        self._hold_retry = until
        ref = self.actor_ref

        def due() -> None:
            try:
                ref.tell(_HoldOver(until))
            except pykka.ActorDeadError:
                pass  # stopped meanwhile: its successor reads the hold from the state file

        self._schedule(seconds_until(until), due)

    def _hold_over(self, until: str) -> None:
        if self._hold_retry != until:
            return  # a later hold replaced it: that one has its own timer
        self._hold_retry = None
        self._held_until = None
        self._on_tick(SyncTick(reason="the provider's hold is over"))

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
        held = self._held_until if self._held_until is not None and seconds_until(self._held_until) > 0 else None
        state = ("needs-reauth" if needs_reauth is not None else "syncing" if self._runs.running
                 else "paused" if paused else "throttled" if held else "idle")
        return {
            "mailbox": self._mailbox_id,
            "state": state,
            "paused": paused,
            "syncing": self._runs.running,
            "follow_up_queued": self._runs.follow_up_queued,
            "missed_while_paused": self._missed is not None,
            "needs_reauth": needs_reauth,
            "throttled_until": held,
            "local_faults": dict(self._faults),
            "local_faults_since": self._faults_since,
            "last_run": self._last_run,
            "inbox": inbox_size(self.actor_inbox),
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
                self._after_run(report)
                self._events.publish(report)
        if not jobs:
            return
        if jobs[0].run_id != self._announced_run:
            self._announced_run = jobs[0].run_id
            self._events.publish(SyncStarted(self._mailbox_id, jobs[0].run_id,
                                             tuple(job.folder for job in jobs if job.folder is not None)))
        fetcher = self._directory.get(actor_names.fetcher(self._mailbox_id))
        if fetcher is None:
            # Restarting: the supervisor's SiblingRestarted will re-drive these jobs.
            self._log.info("fetcher is restarting; {n} folder job(s) wait for it", n=len(jobs))
            return
        for job in jobs:
            fetcher.tell(ResolveFolders(job.run_id) if job.folder is None else SyncFolder(job.run_id, job.folder))


def _describe_faults(faults: dict[str, str]) -> str:
    """The faults in one line, each text once (one full disk stops every folder the same way)."""
    return " / ".join(dict.fromkeys(faults.values()))
