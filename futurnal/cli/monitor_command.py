"""``imap start-monitor``: watch a mailbox in the foreground, ingesting and printing as things happen."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import datetime
from typing import Any

from futurnal.mail.idle_watch import WatchEvent
from futurnal.mail.sync_runs import MailboxSyncReport
from futurnal.system import ActorSystem, SystemNotRunning

from .context import CommandContext
from .output import UserError

__all__ = ["register"]


def register(commands: Any) -> None:
    monitor = commands.add_parser(
        "start-monitor",
        help="watch a mailbox in the foreground (IDLE, else polling), ingesting changes as they happen",
        description="Watch the mailbox's watched folders (or --folder) and sync each change as the server "
        "reports it, printing events as they happen. Ctrl+C stops cleanly. Exit 0 when stopped, 1 if the "
        "server rejects the login.",
    )
    monitor.add_argument("mailbox", metavar="MAILBOX", help="mailbox id or e-mail address")
    monitor.add_argument("--folder", action="append", default=[], metavar="F",
                         help="watch this folder (repeatable; default: the mailbox's --watch folders)")
    monitor.set_defaults(handler=_monitor)


def _monitor(args: argparse.Namespace, ctx: CommandContext) -> int:
    record = ctx.mailbox(args.mailbox)
    folders = tuple(args.folder) or record.watch
    if not folders:
        raise UserError(f"{record.id} watches no folder: pass --folder F", code=2)
    settings = ctx.settings()
    limit = max(settings.max_connections_per_mailbox - 1, 0)
    if len(folders) > limit:
        notify = " unless the server has NOTIFY" if settings.watch_notify else ""
        print(f"note: only {limit} folder(s) can be watched within the connection budget "
              f"(network.max_connections_per_mailbox){notify}; watching {', '.join(folders[:limit])}", flush=True)
    stop = threading.Event()
    failure: list[str] = []
    poll_seconds = settings.poll_seconds

    def on_event(event: Any) -> None:
        line = _describe(event, record.id, poll_seconds)
        if line:
            print(f"{datetime.now():%H:%M:%S} {line}", flush=True)
        if isinstance(event, WatchEvent) and event.kind == "needs-reauth":
            failure.append(event.detail)
            stop.set()

    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    system = ActorSystem(ctx.data_dir.root, settings=settings, credentials=ctx.credentials)
    system.subscribe(on_event)
    try:
        system.start([record.id], schedule=False, watch=True, watch_folders=folders)
    except SystemNotRunning as exc:
        raise UserError(str(exc)) from None
    print(f"monitoring {record.id}: {', '.join(folders[:limit] or folders)}; Ctrl+C stops", flush=True)
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
        raise UserError(failure[0])
    print("stopped", file=sys.stderr)
    return 0


def _describe(event: Any, mailbox: str, poll_seconds: float) -> str | None:
    if isinstance(event, WatchEvent):
        if event.kind == "connected" and event.detail in ("idle", "notify"):
            return f"{event.folder}: watching ({event.detail.upper()})"
        if event.kind == "not-possible":
            return f"{event.folder}: {event.detail}; watching by IDLE instead"
        if event.kind == "connected":
            return (f"{event.folder}: the server has no IDLE, polling every {poll_seconds:g}s; for such a server "
                    f"a schedule may suit better: futurnal-actors imap schedule {mailbox} '@interval 300'")
        if event.kind == "disconnected":
            return f"{event.folder}: connection lost ({event.detail}); reconnecting"
        if event.kind == "needs-reauth":
            return f"{event.folder}: {event.detail}"
        return None
    if isinstance(event, MailboxSyncReport):
        parts = [
            f"{r.folder}: {r.fetched} new, {r.flags_changed} flag change(s), {r.deleted} deleted"
            for r in event.results if not r.unchanged
        ]
        parts += [f"{folder}: failed: {error}" for folder, error in event.errors]
        return "; ".join(parts) or None
    return None
