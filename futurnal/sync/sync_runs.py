"""Bookkeeping of a mailbox's sync runs: coalescing, completion, and re-driving lost work."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .folder_sync import FolderSyncResult

__all__ = ["FolderJob", "MailboxSyncReport", "SyncRuns", "SyncStarted"]


@dataclass(frozen=True, slots=True)
class FolderJob:
    """One folder to hand to the fetcher, as part of run ``run_id``; ``folder`` None means
    "resolve the mailbox's folder selection against the server's LIST first"."""

    run_id: int
    folder: str | None


@dataclass(frozen=True, slots=True)
class SyncStarted:
    """A sync run of ``mailbox`` began: of ``folders``, or of its whole selection when empty."""

    mailbox: str
    run_id: int
    folders: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MailboxSyncReport:
    """The outcome of one sync run of a mailbox, folder by folder."""

    mailbox: str
    results: tuple[FolderSyncResult, ...]
    errors: tuple[tuple[str, str], ...]
    #: Why nothing ran, when the mailbox did not sync at all (``"paused"``); None for a real run.
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def fetched(self) -> int:
        return sum(r.fetched for r in self.results)

    def to_document(self) -> dict[str, Any]:
        """As ``imap sync --json`` prints it and the admin console sends it."""
        return {
            "mailbox": self.mailbox,
            "ok": self.ok,
            "fetched": self.fetched,
            "skipped": self.skipped,
            "folders": [
                {"folder": r.folder, "fetched": r.fetched, "flags_changed": r.flags_changed, "deleted": r.deleted,
                 "quarantined": r.quarantined, "unchanged": r.unchanged, "uidvalidity": r.uidvalidity,
                 "last_uid": r.last_uid, "backfill_floor": r.backfill_floor, "budget_frees_at": r.budget_frees_at}
                for r in self.results
            ],
            "errors": [{"folder": folder, "error": error} for folder, error in self.errors],
        }


@dataclass(slots=True)
class _Run:
    run_id: int
    folders: tuple[str, ...]
    waiters: list[Any]
    resolving: bool = False
    pending: set[str] = field(default_factory=set)
    results: list[FolderSyncResult] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    redrives: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunFinished:
    """A finished run: its report, and whoever asked to be told (opaque reply channels)."""

    report: MailboxSyncReport
    waiters: tuple[Any, ...]


class SyncRuns:
    """Decides which folder jobs to send and when a run is complete. No threads, no I/O.

    A sync asked for while one runs does not start a second one alongside: it is folded into a
    single follow-up run, so a burst of ticks costs at most one extra sync.
    """

    def __init__(self, mailbox: str, max_redrives: int = 5) -> None:
        # More re-drives than the supervisor's poison threshold (3): a poison message is set
        # aside on the third crash, and the folder then still completes on the next re-drive.
        self.mailbox = mailbox
        self._max_redrives = max_redrives
        self._next_id = 1
        self._current: _Run | None = None
        self._queued_folders: set[str] | None = None
        self._queued_waiters: list[Any] = []

    @property
    def running(self) -> bool:
        return self._current is not None

    @property
    def follow_up_queued(self) -> bool:
        """A sync was asked for while one ran: it starts when the current one ends."""
        return self._queued_folders is not None

    def take_follow_up(self) -> tuple[tuple[str, ...], list[Any]] | None:
        """Withdraw the queued follow-up run (its folders, ``()`` for the whole selection, and its
        waiters) so it does not start when the current run ends; None when none is queued."""
        if self._queued_folders is None:
            return None
        folders = tuple(sorted(self._queued_folders))
        waiters, self._queued_folders, self._queued_waiters = self._queued_waiters, None, []
        return folders, waiters

    def request(self, folders: tuple[str, ...], waiter: Any = None) -> list[FolderJob]:
        """Ask for a sync of ``folders``, or of the mailbox's whole selection when empty."""
        if self._current is None:
            return self._start(folders, [waiter] if waiter is not None else [])
        if not folders or self._queued_folders == set():
            self._queued_folders = set()  # the whole selection covers any named folders too
        else:
            self._queued_folders = (self._queued_folders or set()) | set(folders)
        if waiter is not None:
            self._queued_waiters.append(waiter)
        return []

    def resolved(
        self, run_id: int, folders: tuple[str, ...], errors: tuple[tuple[str, str], ...]
    ) -> tuple[list[FolderJob], RunFinished | None]:
        """The fetcher resolved the selection: sync those folders; report what could not be found."""
        run = self._current
        if run is None or run.run_id != run_id or not run.resolving:
            return [], None
        run.resolving = False
        run.folders = tuple(dict.fromkeys(folders))
        run.pending = set(run.folders)
        run.errors.extend(errors)
        if run.pending:
            return [FolderJob(run.run_id, folder) for folder in run.folders], None
        return self._finish_if_done()

    def folder_done(
        self, run_id: int, folder: str, result: FolderSyncResult | None, error: str | None
    ) -> tuple[list[FolderJob], RunFinished | None]:
        run = self._current
        if run is None or run.run_id != run_id or folder not in run.pending:
            return [], None  # a late answer to a run already finished or re-driven
        run.pending.discard(folder)
        if result is not None:
            run.results.append(result)
        if error is not None:
            run.errors.append((folder, error))
        return self._finish_if_done()

    def fetcher_restarted(self) -> tuple[list[FolderJob], RunFinished | None]:
        """The fetcher died: resend what it had, unless a folder keeps killing it."""
        run = self._current
        if run is None:
            return [], None
        if run.resolving:
            return [FolderJob(run.run_id, None)], None
        jobs = []
        for folder in sorted(run.pending):
            run.redrives[folder] = run.redrives.get(folder, 0) + 1
            if run.redrives[folder] > self._max_redrives:
                run.pending.discard(folder)
                run.errors.append((folder, f"the fetcher crashed {run.redrives[folder]} times on this folder"))
            else:
                jobs.append(FolderJob(run.run_id, folder))
        if jobs:
            return jobs, None
        return self._finish_if_done()

    def _start(self, folders: tuple[str, ...], waiters: list[Any]) -> list[FolderJob]:
        ordered = tuple(dict.fromkeys(folders))
        run = _Run(self._next_id, ordered, waiters, resolving=not ordered, pending=set(ordered))
        self._next_id += 1
        self._current = run
        if run.resolving:
            return [FolderJob(run.run_id, None)]
        return [FolderJob(run.run_id, folder) for folder in ordered]

    def _finish_if_done(self) -> tuple[list[FolderJob], RunFinished | None]:
        run = self._current
        if run is None or run.pending or run.resolving:
            return [], None
        order = {folder: i for i, folder in enumerate(run.folders)}
        report = MailboxSyncReport(
            self.mailbox,
            tuple(sorted(run.results, key=lambda r: order.get(r.folder, 0))),
            tuple(sorted(run.errors, key=lambda e: order.get(e[0], 0))),
        )
        finished = RunFinished(report, tuple(run.waiters))
        self._current = None
        jobs: list[FolderJob] = []
        if self._queued_folders is not None:
            queued = tuple(sorted(self._queued_folders))
            waiters, self._queued_folders, self._queued_waiters = self._queued_waiters, None, []
            jobs = self._start(queued, waiters)
        return jobs, finished
