"""``imap schedule``: show or set when a mailbox syncs and how it ranks against the others."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from futurnal.mailboxes.status import describe_schedule
from futurnal.scheduling.schedules import (
    Priority,
    Schedule,
    ScheduleError,
    parse_priority,
    parse_schedule,
    polling_warning,
)
from futurnal.storage.registry import UnknownMailbox

from .context import CommandContext
from .output import UserError, print_json

__all__ = ["register", "validated", "warn_if_polling"]

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


def warn_if_polling(plan: Schedule) -> None:
    """A warning on stderr, with the reason, for a schedule that syncs too often (it is kept)."""
    if (warning := polling_warning(plan)) is not None:
        print(f"futurnal-actors: warning: {warning}", file=sys.stderr)


def validated(spec: str | None, priority: str | None) -> tuple[Schedule | None, Priority | None]:
    """Parse what the user typed, or fail with exit status 2 and one line saying why."""
    try:
        return (None if spec is None else parse_schedule(spec),
                None if priority is None else parse_priority(priority))
    except ScheduleError as exc:
        raise UserError(str(exc), code=2) from None


def _schedule(args: argparse.Namespace, ctx: CommandContext) -> int:
    spec = " ".join(args.spec) if args.spec else None
    plan, priority = validated(spec, args.priority)
    record = ctx.mailbox(args.mailbox)
    if plan is None and priority is None:
        return _show({"mailbox": record.id, **describe_schedule(record, ctx.data_dir)}, args.json)
    if plan is not None:
        warn_if_polling(plan)
    try:  # a running `run` stores them and reschedules at once
        shown = ctx.admin().set_schedule(record.id, None if plan is None else str(plan),
                                         None if priority is None else str(priority))
    except UnknownMailbox as exc:
        raise UserError(str(exc)) from None
    return _show(shown, args.json)


def _show(shown: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print_json(shown)
        return 0
    print(f"{shown['mailbox']}: {shown['schedule']}, priority {shown['priority']}")
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
