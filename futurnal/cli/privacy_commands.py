"""``consent show|grant|revoke`` and ``audit verify|tail``: the privacy record a user can check."""

from __future__ import annotations

import argparse
import getpass
from dataclasses import asdict
from typing import Any

from futurnal.storage.consent import SCOPES, parse_expiry

from .context import CommandContext
from .output import UserError, print_json, print_table

__all__ = ["register"]


def register(subparsers: Any) -> None:
    consent = subparsers.add_parser(
        "consent", help="who agreed to a mailbox's ingestion, and to what",
        description="Nothing is fetched from a mailbox without a recorded consent. Revoking takes effect at "
        "the mailbox's next sync, also in a running `run`.",
    )
    commands = consent.add_subparsers(dest="consent_command", metavar="COMMAND", required=True)
    show = commands.add_parser("show", help="the consent recorded for a mailbox")
    show.add_argument("mailbox", metavar="MAILBOX")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_show)
    grant = commands.add_parser("grant", help="record consent (replaces an earlier one)")
    grant.add_argument("mailbox", metavar="MAILBOX")
    grant.add_argument("--scopes", default=",".join(SCOPES), help=f"some of {', '.join(SCOPES)} (default: all)")
    grant.add_argument("--granted-by", default=None, metavar="NAME", help="who consents (default: your user name)")
    grant.add_argument("--expires", default=None, metavar="DATE", help="ISO date or time it ends, e.g. 2027-01-01")
    grant.set_defaults(handler=_grant)
    revoke = commands.add_parser("revoke", help="withdraw consent: the mailbox is not fetched any more")
    revoke.add_argument("mailbox", metavar="MAILBOX")
    revoke.set_defaults(handler=_revoke)

    audit = subparsers.add_parser("audit", help="the tamper-evident log of what the service did")
    audit_commands = audit.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    verify = audit_commands.add_parser("verify", help="check the hash chain; exit 1 if an entry was altered")
    verify.set_defaults(handler=_verify)
    tail = audit_commands.add_parser("tail", help="the last entries")
    tail.add_argument("-n", type=int, default=20, help="how many (default: 20)")
    tail.add_argument("--json", action="store_true", help="print the entries as one JSON array, oldest first")
    tail.set_defaults(handler=_tail)


def _show(args: argparse.Namespace, ctx: CommandContext) -> int:
    record = ctx.mailbox(args.mailbox)
    consent = ctx.data_dir.consent().get(record.id)
    if args.json:
        print_json(asdict(consent) if consent else None)
    elif consent is None:
        print(f"{record.id}: no consent recorded; nothing is fetched (consent grant {record.id})")
    else:
        until = f", until {consent.expires_at}" if consent.expires_at else ""
        print(f"{record.id}: {', '.join(consent.scopes)} granted by {consent.granted_by} at {consent.granted_at}{until}")
    return 0


def _expiry(text: str | None) -> str | None:
    try:
        return None if text is None else parse_expiry(text)
    except ValueError as exc:
        raise UserError(f"--expires: {exc}", code=2) from None


def _grant(args: argparse.Namespace, ctx: CommandContext) -> int:
    record = ctx.mailbox(args.mailbox)
    scopes = tuple(s.strip() for s in args.scopes.split(",") if s.strip())
    if not scopes or set(scopes) - set(SCOPES):
        raise UserError(f"--scopes: choose one or more of {', '.join(SCOPES)}", code=2)
    who = args.granted_by or getpass.getuser()
    expires = _expiry(args.expires)
    try:  # a running process records it and starts the mailbox's actors again
        consent = ctx.admin().grant_consent(record.id, who, scopes, expires)
    except ValueError as exc:
        raise UserError(f"--scopes: {exc}", code=2) from None
    print(f"{record.id}: consent recorded for {', '.join(consent.scopes)}")
    return 0


def _revoke(args: argparse.Namespace, ctx: CommandContext) -> int:
    record = ctx.mailbox(args.mailbox)
    if not ctx.admin().revoke_consent(record.id):  # a running process also stops the mailbox's actors
        print(f"{record.id}: had no consent recorded")
        return 0
    print(f"{record.id}: consent revoked; nothing more is fetched from it (stored elements are kept: "
          f"`imap remove {record.id} --purge` deletes them)")
    return 0


def _verify(args: argparse.Namespace, ctx: CommandContext) -> int:
    audit = ctx.data_dir.audit_log()
    check = audit.verify()
    if not check.ok:
        raise UserError(f"audit log {audit.location} was tampered with: {check.problem} "
                        f"({check.entries} entries before it are intact)")
    print(f"audit log intact: {check.entries} entries")
    return 0


def _tail(args: argparse.Namespace, ctx: CommandContext) -> int:
    if args.n < 1:
        raise UserError("-n must be at least 1", code=2)
    entries = list(ctx.data_dir.audit_log().entries())[-args.n:]
    if args.json:
        print_json(entries)
        return 0
    hidden = {"time", "event", "prev", "hash"}
    print_table(
        [[e["time"][:19], e["event"], " ".join(f"{k}={v}" for k, v in sorted(e.items()) if k not in hidden)]
         for e in entries],
        ["TIME", "EVENT", "DETAILS"],
    )
    return 0
