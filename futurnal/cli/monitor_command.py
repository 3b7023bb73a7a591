"""``imap start-monitor``: watch a mailbox in the foreground, ingesting and printing as things happen."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import datetime
from typing import Any

from futurnal.console import ConsoleClient, ConsoleError
from futurnal.sync.folder_selection import watchable
from futurnal.sync.freshness import WATCH_NONE
from futurnal.storage.registry import MailboxRecord

from .context import CommandContext
from .output import UserError, visible

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
    folders = watchable(record.folders, record.exclude, tuple(args.folder) or record.watch)
    if outside := [folder for folder in args.folder if folder not in folders]:
        raise UserError(f"--folder {', '.join(outside)}: not among the folders {record.id} syncs, so it is not "
                        "watched (a watcher syncs what it sees change)", code=2)
    settings = ctx.settings()
    console = ctx.console()
    if console is not None:
        return _follow_running(console, record, tuple(args.folder), settings.poll_seconds)
    if not folders:
        raise UserError(f"{record.id} watches no folder: pass --folder F", code=2)
    limit = max(settings.max_connections_per_mailbox - 1, 0)
    if len(folders) > limit:
        notify = " unless the server has NOTIFY" if settings.watch_notify else ""
        print(visible(f"note: only {limit} folder(s) can be watched within the connection budget "
                      f"(network.max_connections_per_mailbox){notify}; watching {', '.join(folders[:limit])}"),
              flush=True)
    from futurnal.console.event_lines import event_document  # here: most commands need no actor system
    from futurnal.system import ActorSystem, SystemNotRunning

    stop = threading.Event()
    failure: list[str] = []
    poll_seconds = settings.poll_seconds

    def on_event(event: Any) -> None:
        doc = event_document(event)
        if doc is None:
            return
        _print(doc, record.id, poll_seconds)
        if doc["event"] == "watch-needs-reauth":
            failure.append(doc["detail"])
            stop.set()

    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    system = ActorSystem(ctx.data_dir.root, settings=settings, credentials=ctx.credentials)
    system.subscribe(on_event)
    try:
        system.start([record.id], schedule=False, watch=True, watch_folders=folders)
    except SystemNotRunning as exc:
        raise UserError(str(exc)) from None
    print(visible(f"monitoring {record.id}: {', '.join(folders[:limit] or folders)}; Ctrl+C stops"), flush=True)
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


def _follow_running(console: ConsoleClient, record: MailboxRecord, asked: tuple[str, ...],
                    poll_seconds: float) -> int:
    """`run` owns the data directory and watches the mailbox already: show what it does."""
    try:
        live = console.call("status", mailbox=record.id)["mailboxes"]
    except ConsoleError as exc:
        if exc.code != "unknown-mailbox":
            raise
        live = []
    watched = [f["folder"] for f in live[0]["folders"] if f.get("watch", WATCH_NONE) != WATCH_NONE] if live else []
    doing = (f"watches {record.id} itself: {', '.join(watched)}" if watched
             else f"runs {record.id} but watches none of its folders (it syncs on its schedule)")
    print(visible(f"`run` (pid {console.server_pid}) owns this data directory and {doing}; showing its events. "
                  f"Ctrl+C stops this view, not the service"), flush=True)
    if not live:
        print(visible(f"note: {record.id} is not running in that process (no consent?); its events will not come"),
              flush=True)
    unwatched = [folder for folder in asked if folder not in watched]
    if unwatched:
        print(visible(f"note: the process does not watch {', '.join(unwatched)} (the mailbox's --watch setting "
                      "decides)"), flush=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        for doc in console.events():
            if doc.get("mailbox") not in (None, record.id):
                continue
            _print(doc, record.id, poll_seconds)
            if doc["event"] == "watch-needs-reauth":
                raise UserError(f"{doc['detail']} (futurnal-actors imap reauth {record.id})")
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    raise UserError("the running process stopped; nothing watches the mailbox now")


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def _print(doc: dict[str, Any], mailbox: str, poll_seconds: float) -> None:
    line = _describe(doc, mailbox, poll_seconds)
    if line:
        print(f"{datetime.now():%H:%M:%S} {visible(line)}", flush=True)


def _describe(doc: dict[str, Any], mailbox: str, poll_seconds: float) -> str | None:
    """One line for an event document (as the console streams it), or None for events not shown."""
    kind, folder, detail = doc["event"], doc.get("folder"), doc.get("detail")
    if kind == "watch-connected" and detail in ("idle", "notify"):
        return f"{folder}: watching ({detail.upper()})"
    if kind == "watch-not-possible":
        return f"{folder}: {detail}; watching by IDLE instead"
    if kind == "watch-connected":
        return (f"{folder}: the server has no IDLE, polling every {poll_seconds:g}s; for such a server "
                f"a schedule may suit better: futurnal-actors imap schedule {mailbox} '@interval 300'")
    if kind == "watch-disconnected":
        return f"{folder}: connection lost ({detail}); reconnecting"
    if kind == "watch-needs-reauth":
        return f"{folder}: {detail}"
    if kind == "sync-finished":
        parts = [
            f"{r['folder']}: {r['fetched']} new, {r.get('flags_changed', 0)} flag change(s), {r.get('deleted', 0)} deleted"
            for r in doc["folders"] if not r["unchanged"]
        ]
        parts += [f"{e['folder']}: failed: {e['error']}" for e in doc["errors"]]
        return "; ".join(parts) or None
    return None
