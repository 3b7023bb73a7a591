"""``imap start-monitor``: watch a mailbox in the foreground, ingesting and printing as things happen."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from futurnal.sync.folder_selection import watchable

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
    poll_seconds = ctx.settings().poll_seconds
    # With `run` serving the data directory it watches the mailbox already: its events are shown.
    ctx.admin().monitor(record, folders, tuple(args.folder), _View(record.id, poll_seconds))
    print("stopped", file=sys.stderr)
    return 0


class _View:
    """What the monitor prints: lines about the watch, and one line per event."""

    def __init__(self, mailbox: str, poll_seconds: float) -> None:
        self._mailbox = mailbox
        self._poll_seconds = poll_seconds

    def say(self, line: str) -> None:
        print(visible(line), flush=True)

    def show(self, event: dict[str, Any]) -> None:
        _print(event, self._mailbox, self._poll_seconds)


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
