"""``imap schedule``: show or set when a mailbox syncs and how it ranks against the others."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from futurnal.schedules import Priority, Schedule, ScheduleError, next_run, parse_priority, parse_schedule, schedule_of
from futurnal.storage.clock import parse_utc
from futurnal.storage.registry import MailboxRecord, UnknownMailbox
from futurnal.storage.sync_state import FolderStateStore

from .context import CommandContext
from .output import UserError, print_json

__all__ = ["describe", "register", "validated"]

PRIORITIES = tuple(str(p) for p in Priority)


def register(commands: Any) -> None:
    """Add ``schedule`` to the ``imap`` subcommands."""
    parser = commands.add_parser(
        "schedule",
        help="show or set a mailbox's sync schedule and priority",
        description="Without SPEC (and without --priority), show the mailbox's schedule, priority and next "
        "run. With SPEC, check it and store it. SPEC is '@interval SECONDS', '@manual' (only `imap sync` "
        "syncs it), or a 5-field cron expression in local time such as '*/15 * * * *' (quote it) or "
        "@hourly / @daily / @weekly / @monthly / @yearly. The schedule applies from the next start of `run`.",
    )
    parser.add_argument("mailbox", metavar="MAILBOX", help="mailbox id or e-mail address")
    parser.add_argument("spec", nargs="*", metavar="SPEC", help="the new schedule (words are joined by spaces)")
    parser.add_argument("--priority", choices=PRIORITIES,
                        help="who goes first when more syncs are due than may run at once (sync.max_concurrent)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=_schedule)


def validated(spec: str | None, priority: str | None) -> tuple[Schedule | None, Priority | None]:
    """Parse what the user typed, or fail with exit status 2 and one line saying why."""
    try:
        return (None if spec is None else parse_schedule(spec),
                None if priority is None else parse_priority(priority))
    except ScheduleError as exc:
        raise UserError(str(exc), code=2) from None


def describe(record: MailboxRecord, ctx: CommandContext) -> dict[str, Any]:
    """The mailbox's schedule, priority and (local) next run time, as shown by status and schedule."""
    try:
        plan = schedule_of(record)
    except ScheduleError as exc:
        return {"schedule": record.schedule, "kind": "invalid", "error": str(exc), "priority": record.priority,
                "next_run": None}
    last = _last_sync(record, ctx) if plan.kind == "interval" else None
    when = next_run(plan, datetime.now(), last)
    shown = {"schedule": str(plan), "kind": plan.kind, "priority": record.priority,
             "next_run": None if when is None else when.astimezone().isoformat(timespec="seconds")}
    if plan.kind == "interval":
        shown["last_sync"] = None if last is None else last.astimezone().isoformat(timespec="seconds")
    return shown


def _last_sync(record: MailboxRecord, ctx: CommandContext) -> datetime | None:
    """The latest successful folder sync, in naive local time like the scheduler's clock."""
    path = ctx.data_dir.state_path(record.id)
    if not path.exists():
        return None
    states = FolderStateStore(path, read_only=True)
    try:
        stamps = [s.last_success for s in states.all() if s.last_success]
    finally:
        states.close()
    if not stamps:
        return None
    latest = parse_utc(max(stamps))
    return latest.astimezone().replace(tzinfo=None)


def _schedule(args: argparse.Namespace, ctx: CommandContext) -> int:
    spec = " ".join(args.spec) if args.spec else None
    plan, priority = validated(spec, args.priority)
    record = ctx.mailbox(args.mailbox)
    if plan is not None or priority is not None:
        with ctx.owned() as registry:
            try:
                record = registry.get(record.id)  # re-read under the lock: nobody else changes it now
            except UnknownMailbox as exc:
                raise UserError(str(exc)) from None
            record = record.with_changes(
                schedule=record.schedule if plan is None else str(plan),
                priority=record.priority if priority is None else str(priority),
            )
            registry.update(record)
    shown = {"mailbox": record.id, **describe(record, ctx)}
    if args.json:
        print_json(shown)
        return 0
    print(f"{record.id}: {shown['schedule']}, priority {shown['priority']}")
    print(f"next run: {_next_run_text(shown)}")
    return 0


def _next_run_text(shown: dict[str, Any]) -> str:
    if shown["kind"] == "invalid":
        return f"none: {shown['error']} (set a valid schedule with `imap schedule`)"
    if shown["kind"] == "manual":
        return "never by schedule; `imap sync` syncs it"
    if shown["kind"] == "interval":
        every = shown["schedule"].split()[1]
        if shown["last_sync"] is None:
            return f"at the start of `run` (never synced yet), then every {every} s"
        return f"{shown['next_run']} while `run` is going ({every} s after the last sync at {shown['last_sync']})"
    return f"{shown['next_run']} while `run` is going (also at its start)"
