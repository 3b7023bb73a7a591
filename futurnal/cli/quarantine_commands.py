"""``quarantine list / show / retry / drop``: messages set aside instead of stopping a folder."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import Any

from futurnal.storage.quarantine import InvalidRecordId, Quarantine, QuarantineRecord, validate_record_id

from .context import CommandContext
from .output import UserError, print_json, print_table, visible

__all__ = ["register"]


def register(subparsers: Any) -> None:
    quarantine = subparsers.add_parser(
        "quarantine", help="messages set aside (unparseable, or crashing the fetcher) with their raw bytes"
    )
    commands = quarantine.add_subparsers(dest="quarantine_command", metavar="COMMAND", required=True)
    listing = commands.add_parser("list", help="quarantined messages")
    listing.add_argument("--mailbox", metavar="MAILBOX", help="only this mailbox (id or e-mail address)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_list)
    show = commands.add_parser("show", help="one record; --raw prints the message's bytes instead")
    show.add_argument("id", metavar="ID")
    show.add_argument("--raw", action="store_true", help="write the raw message to stdout")
    show.set_defaults(handler=_show)
    retry = commands.add_parser(
        "retry", help="run quarantined messages through the current parser; success stores the element"
    )
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("id", metavar="ID", nargs="?")
    which.add_argument("--all", action="store_true", help="every quarantined message")
    retry.set_defaults(handler=_retry)
    drop = commands.add_parser("drop", help="delete a quarantined message and its bytes for good")
    drop.add_argument("id", metavar="ID")
    drop.set_defaults(handler=_drop)


def _store(ctx: CommandContext) -> Quarantine:
    return ctx.data_dir.quarantine()


def _checked_id(record_id: str) -> str:
    try:
        return validate_record_id(record_id)
    except InvalidRecordId as exc:
        raise UserError(str(exc), code=2) from None


def _record(store: Quarantine, record_id: str) -> QuarantineRecord:
    try:
        record = store.get(_checked_id(record_id))
    except InvalidRecordId as exc:  # a planted link
        raise UserError(str(exc)) from None
    if record is None:
        raise UserError(f"no quarantined message {record_id!r} (see `quarantine list`)")
    return record


def _list(args: argparse.Namespace, ctx: CommandContext) -> int:
    mailbox = ctx.mailbox(args.mailbox).id if args.mailbox else None
    records = _store(ctx).list(mailbox)
    if args.json:
        print_json([asdict(r) for r in records])
    elif not records:
        print("nothing in quarantine")
    else:
        print_table(
            [[r.id, r.mailbox, r.folder, str(r.uid), str(r.attempts), r.last_seen, r.reason] for r in records],
            ["ID", "MAILBOX", "FOLDER", "UID", "ATTEMPTS", "LAST SEEN", "REASON"],
        )
    return 0


def _show(args: argparse.Namespace, ctx: CommandContext) -> int:
    store = _store(ctx)
    record = _record(store, args.id)
    if args.raw:
        sys.stdout.buffer.write(store.raw(record.id))
        return 0
    print_json({**asdict(record), "raw_bytes": len(store.raw(record.id))})
    return 0


def _retry(args: argparse.Namespace, ctx: CommandContext) -> int:
    # Whoever owns the element store (a running process, else this command) does the writing.
    outcomes = ctx.admin().retry_quarantined(None if args.all else _checked_id(args.id))
    for outcome in outcomes:
        if outcome.ok:
            print(f"{outcome.record_id}: stored as element {outcome.element_id}")
        else:
            print(visible(f"{outcome.record_id}: {outcome.error}"), file=sys.stderr)
    if not outcomes:
        print("nothing in quarantine")
    return 0 if all(outcome.ok for outcome in outcomes) else 1


def _drop(args: argparse.Namespace, ctx: CommandContext) -> int:
    record = ctx.admin().drop_quarantined(_checked_id(args.id))  # None: the running process dropped it
    print(visible(f"dropped {args.id}" if record is None
                  else f"dropped {record.id} ({record.mailbox} {record.folder} UID {record.uid})"))
    return 0
