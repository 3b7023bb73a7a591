"""A mailbox's status as stored on disk: folders, sync state, schedule, quarantine, conditions.

One builder for every reader: ``imap status`` (no process running), and the running process's
mailbox actors, which add their live state on top (see the admin console).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from futurnal.config import ServiceSettings
from futurnal.imap.uidset import UidSet
from futurnal.scheduling.schedules import ScheduleError, next_run, schedule_of
from futurnal.storage.attachment_queue import AttachmentJobQueue
from futurnal.storage.clock import parse_utc
from futurnal.storage.data_dir import DataDir
from futurnal.storage.registry import MailboxRecord
from futurnal.storage.sync_state import FolderStateStore
from futurnal.sync.backfill_progress import backfill_progress
from futurnal.sync.download_budget import BYTES_PER_MB, DownloadBudget
from futurnal.sync.folder_selection import is_pattern, watchable
from futurnal.sync.freshness import WATCH_NONE, WATCH_NOT_RUNNING, describe_watch, freshness, watch_plan
from futurnal.sync.provider_holds import seconds_until

__all__ = ["describe_budget", "describe_schedule", "mailbox_status"]


def mailbox_status(data_dir: DataDir, record: MailboxRecord, settings: ServiceSettings, *,
                   running: bool) -> dict[str, Any]:
    """The ``imap status --json`` document of ``record``; reads only, safe beside a running process.

    Each folder also says whether it is stale (no successful sync for longer than
    ``watch.stale_after_seconds``) and, when ``running`` (an actor system runs the mailbox), how it
    is watched (the plan the supervision tree follows, refined by the mode the watcher last
    recorded); otherwise nothing watches it or schedules its syncs: its watch is "not running" and
    its schedule has no next run.
    """
    states = data_dir.folder_states(record.id, read_only=True) if data_dir.has_state(record.id) else None
    try:
        synced = [s.folder for s in states.all()] if states else []
        plan = watch_plan(watchable(record.folders, record.exclude, record.watch), settings.max_connections_per_mailbox)
        now = datetime.now(UTC)
        budget = _download_budget(record, states)
        listed = synced or [f for f in record.folders if not is_pattern(f) and not f.startswith(("\\", "special:"))]
        folders = []
        for folder in listed + [f for f in plan if f not in listed]:
            state: dict[str, Any] = states.get(folder).to_document() if states else {"folder": folder}
            state["stored"] = len(UidSet.parse(state.get("known_uids", "")))  # live elements, tombstones aside
            state["backfill"] = backfill_progress(state, state["stored"], now, budget)
            fresh = freshness(state.get("last_success"), now=now, stale_after_seconds=settings.stale_after_seconds)
            state["stale"], state["freshness"] = fresh.stale, fresh.describe()
            state["watch"] = (describe_watch(plan.get(folder, WATCH_NONE), state.get("watch_mode")) if running
                              else WATCH_NOT_RUNNING)
            folders.append(state)
        reauth = states.needs_reauth() if states else None
        parked = states.parked() if states else None
        hold = states.throttled() if states else None
        throttled = hold if hold is not None and seconds_until(hold["until"]) > 0 else None
        alert = states.last_alert() if states else None
    finally:
        if states:
            states.close()
    schedule = describe_schedule(record, data_dir)
    return {
        "mailbox": record.to_document(),
        "folders": folders,
        "quarantined": len(data_dir.quarantine().list(record.id)),
        "pending_extractions": AttachmentJobQueue(data_dir.attachment_queue_root).count(record.id),
        "schedule": schedule if running else {**schedule, "next_run": None},
        "running": running,
        "state": "needs-reauth" if reauth else "parked" if parked else "throttled" if throttled else "ok",
        "needs_reauth": reauth,
        "parked": parked,
        "throttled": throttled,
        "last_alert": alert,
        "download_budget": budget.describe() if budget else None,
    }


def describe_budget(record: MailboxRecord, data_dir: DataDir) -> dict[str, Any]:
    """The mailbox's daily download budget, as ``imap budget`` shows it: ``daily_download_mb`` (None:
    no budget) and ``download_budget`` as in ``imap status --json`` (None without a budget, when
    nothing is counted). Reads only, safe beside a running process."""
    states = data_dir.folder_states(record.id, read_only=True) if data_dir.has_state(record.id) else None
    try:
        budget = _download_budget(record, states)
    finally:
        if states:
            states.close()
    return {"daily_download_mb": record.daily_download_mb, "download_budget": budget.describe() if budget else None}


def _download_budget(record: MailboxRecord, states: FolderStateStore | None) -> DownloadBudget | None:
    """What the mailbox's fetcher counts against, with what it counted in its state file so far."""
    if not record.daily_download_mb:
        return None
    return DownloadBudget(record.daily_download_mb * BYTES_PER_MB, states.downloads() if states else {})


def describe_schedule(record: MailboxRecord, data_dir: DataDir) -> dict[str, Any]:
    """The mailbox's schedule, priority and (local) next run time, as shown by status and schedule."""
    try:
        plan = schedule_of(record)
    except ScheduleError as exc:
        return {"schedule": record.schedule, "kind": "invalid", "error": str(exc), "priority": record.priority,
                "next_run": None}
    last = _last_sync(record, data_dir) if plan.kind == "interval" else None
    when = next_run(plan, datetime.now(), last)
    shown = {"schedule": str(plan), "kind": plan.kind, "priority": record.priority,
             "next_run": None if when is None else when.astimezone().isoformat(timespec="seconds")}
    if plan.kind == "interval":
        shown["last_sync"] = None if last is None else last.astimezone().isoformat(timespec="seconds")
    return shown


def _last_sync(record: MailboxRecord, data_dir: DataDir) -> datetime | None:
    """The latest successful folder sync, in naive local time like the scheduler's clock."""
    if not data_dir.has_state(record.id):
        return None
    states = data_dir.folder_states(record.id, read_only=True)
    try:
        stamps = [s.last_success for s in states.all() if s.last_success]
    finally:
        states.close()
    if not stamps:
        return None
    latest = parse_utc(max(stamps))
    return latest.astimezone().replace(tzinfo=None)
