"""``imap budget``: show or change how much a mailbox may download a day (``imap add --daily-download-mb``)."""

from __future__ import annotations

import argparse
import re
from typing import Any

from futurnal.mailboxes.status import describe_budget
from futurnal.storage.registry import UnknownMailbox

from .context import CommandContext
from .output import UserError, print_json

__all__ = ["register"]


def register(commands: Any) -> None:
    """Add ``budget`` to the ``imap`` subcommands."""
    parser = commands.add_parser(
        "budget",
        help="show or set a mailbox's daily download budget",
        description="Without MB, show the mailbox's daily download budget: its limit, the MB downloaded in "
        "the last 24 hours and, when it is used up, until when older mail waits (new mail still comes in). "
        "With MB, store it (0: no budget); a running `run` restarts the mailbox's actors so it counts at "
        "once, otherwise `run` uses it from its next start.",
    )
    parser.add_argument("mailbox", metavar="MAILBOX", help="mailbox id or e-mail address")
    parser.add_argument("mb", nargs="?", metavar="MB", help="megabytes (10**6 bytes) in a rolling 24 hours; 0: none")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=_budget)


def _validated(mb: str) -> int | None:
    """MB as typed: a whole number of megabytes, None for 0; else exit status 2 and one line."""
    if not re.fullmatch(r"[0-9]+", mb.strip()):
        raise UserError(f"MB must be a whole number of megabytes, 0 for no budget, not {mb!r}", code=2)
    return int(mb) or None


def _budget(args: argparse.Namespace, ctx: CommandContext) -> int:
    limit = None if args.mb is None else _validated(args.mb)
    record = ctx.mailbox(args.mailbox)
    if args.mb is None:
        return _show({"mailbox": record.id, **describe_budget(record, ctx.data_dir)}, args.json)
    try:  # a running `run` stores it and restarts the mailbox's actors with it
        shown = ctx.admin().set_budget(record.id, limit)
    except UnknownMailbox as exc:
        raise UserError(str(exc)) from None
    return _show(shown, args.json)


def _show(shown: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print_json(shown)
        return 0
    budget = shown["download_budget"]
    if budget is None:
        print(f"{shown['mailbox']}: no daily download budget (downloads are not counted without one)")
        return 0
    print(f"{shown['mailbox']}: {shown['daily_download_mb']} MB a day; "
          f"{budget['used_mb']:g} MB downloaded in the last 24 hours")
    if budget["exhausted"]:
        print(f"used up: older mail waits until {budget['resets_at']}, new mail still comes in")
    return 0
