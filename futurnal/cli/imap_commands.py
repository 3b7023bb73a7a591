"""``imap add / import / list / status / sync / remove``; ``imap add`` itself is in :mod:`.add_mailbox`,
``imap import`` in :mod:`.import_command`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from . import add_mailbox, folders_command, import_command, monitor_command, oauth2_commands, schedule_command
from .context import CommandContext
from .output import ProgressBar, print_json, print_table, visible

__all__ = ["register"]


def register(subparsers: Any) -> None:
    imap = subparsers.add_parser("imap", help="register, inspect, sync and remove IMAP mailboxes")
    commands = imap.add_subparsers(dest="imap_command", metavar="COMMAND", required=True)

    add = commands.add_parser(
        "add",
        help="register a mailbox (checks the login, keeps the password in the secret store)",
        description="Register a mailbox. The password is read from stdin (--password-stdin) or asked for "
        "on the terminal, checked against the server, and kept only in the data directory's secret store "
        "(the OS keyring, or its encrypted secrets file: README, Secrets). With --auth oauth2 "
        "(Gmail, Office 365, or any OAuth2 provider) you sign in in a browser instead (README: OAuth2).",
    )
    add_mailbox.add_arguments(add)
    add.set_defaults(handler=add_mailbox.run)
    import_command.register(commands)

    listing = commands.add_parser("list", help="list registered mailboxes")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_list)

    status = commands.add_parser("status", help="sync state of a mailbox, folder by folder")
    status.add_argument("mailbox", metavar="MAILBOX", help="mailbox id or e-mail address")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_status)

    sync = commands.add_parser(
        "sync", help="sync a mailbox now and wait until it is done",
        description="Start the actor system for one mailbox, sync it, print what was fetched. "
        "Exit status 0 when every folder synced, 1 otherwise.",
    )
    sync.add_argument("mailbox", metavar="MAILBOX", help="mailbox id or e-mail address")
    sync.add_argument("--folder", action="append", default=[], metavar="F",
                      help="sync only this folder (repeatable; default: the mailbox's folders)")
    sync.add_argument("--json", action="store_true", help="print the sync report as JSON")
    sync.add_argument("--timeout", type=float, default=None, metavar="SECONDS", help="give up after this long")
    sync.set_defaults(handler=_sync)

    folders_command.register(commands)
    schedule_command.register(commands)
    monitor_command.register(commands)
    oauth2_commands.register(commands)

    remove = commands.add_parser("remove", help="unregister a mailbox and delete its secrets")
    remove.add_argument("mailbox", metavar="MAILBOX", help="mailbox id or e-mail address")
    remove.add_argument("--purge", action="store_true",
                        help="also delete its elements, sync state, quarantine and attachment blobs")
    remove.set_defaults(handler=_remove)


def _list(args: argparse.Namespace, ctx: CommandContext) -> int:
    registry = ctx.registry()
    records = registry.all()
    registry.close()
    if args.json:
        print_json([r.to_document() for r in records])
    elif not records:
        print("no mailboxes registered; add one with: futurnal-actors imap add --help")
    else:
        print_table(
            [[r.id, r.email, f"{r.host}:{r.port}", r.security, ",".join(r.folders)] for r in records],
            ["ID", "EMAIL", "SERVER", "SECURITY", "FOLDERS"],
        )
    return 0


def _status(args: argparse.Namespace, ctx: CommandContext) -> int:
    record = ctx.mailbox(args.mailbox)
    report = ctx.admin().status(record)  # with the mailbox's live state when a process runs it
    folders, quarantined = report["folders"], report["quarantined"]
    reauth, parked = report["needs_reauth"], report["parked"]
    if args.json:
        print_json(report)
        return 0
    print(visible(f"{record.id} <{record.email}> at {record.host}:{record.port} ({record.security})"))
    if "live" in report:
        live = report["live"]
        extra = ", a catch-up sync is due at resume" if live.get("missed_while_paused") else ""
        print(visible(f"running: {live['state']}{extra} (`futurnal-actors ctl pause|resume {record.id}`)"))
    if parked:
        print(visible(f"PARKED since {parked['since']}: its actors kept failing ({parked['reason']}); "
                      "the other mailboxes go on, and the next start of `run` tries it again"))
    if reauth:
        print(visible(f"NEEDS RE-AUTHENTICATION since {reauth['since']}: {reauth['reason']}"))
        print(visible(f"  (syncs of this mailbox stop until then: futurnal-actors imap reauth {record.id})"))
    print(visible(f"folders: {', '.join(record.folders)}"
                  + (f" excluding {', '.join(record.exclude)}" if record.exclude else "")))
    when = report["schedule"]
    print(visible(f"schedule: {when['schedule']}, priority {when['priority']}"
                  + (f", next run {when['next_run']}" if when["next_run"] else "")))
    print_table(
        [
            [f["folder"], str(f.get("uidvalidity") or "-"), str(f.get("last_uid", 0)),
             str(f.get("highestmodseq") or "-"), str(f.get("messages", 0)), str(f["stored"]), str(f.get("deleted", 0)),
             ",".join(f.get("extensions") or []) or "-", f.get("last_success") or "never", f.get("last_error") or ""]
            for f in folders
        ],
        ["FOLDER", "UIDVALIDITY", "LAST UID", "MODSEQ", "ON SERVER", "STORED", "DELETED", "EXTENSIONS",
         "LAST SUCCESS", "LAST ERROR"],
    )
    print(f"freshness (stale after {ctx.settings().stale_after_seconds:g} s without a successful sync):")
    print_table(
        [[f["folder"], f["watch"], f.get("last_server_event") or "never", f.get("last_success") or "never",
          f["freshness"]] for f in folders],
        ["FOLDER", "WATCH", "LAST SERVER EVENT", "LAST SUCCESS", "FRESHNESS"],
    )
    if quarantined:
        print(f"{quarantined} message(s) in quarantine")
    if report["pending_extractions"]:
        print(f"{report['pending_extractions']} element(s) wait for attachment text extraction "
              "(done in the background by `run`, or by the next `imap sync`)")
    return 0


def _sync(args: argparse.Namespace, ctx: CommandContext) -> int:
    record = ctx.mailbox(args.mailbox)
    report = ctx.admin().sync(
        record, tuple(args.folder), timeout=args.timeout,
        progress=ProgressBar(f"syncing {record.id}", enabled=False if args.json else None),
        say=None if args.json else lambda line: print(visible(line), file=sys.stderr),
    )
    if args.json:
        print_json(report)
    else:
        for folder in report["folders"]:
            extra = f", {folder['quarantined']} quarantined" if folder["quarantined"] else ""
            print(visible(f"{record.id} {folder['folder']}: {folder['fetched']} new message(s){extra}"))
    if report["skipped"]:
        print(visible(f"{record.id}: not synced, {report['skipped']} (`futurnal-actors ctl resume {record.id}`)"),
              file=sys.stderr)
        return 1
    if report["errors"]:
        if not args.json:
            for error in report["errors"]:
                print(visible(f"error: {record.id} {error['folder']}: {error['error']}"), file=sys.stderr)
        return 1
    return 0


def _remove(args: argparse.Namespace, ctx: CommandContext) -> int:
    record = ctx.mailbox(args.mailbox)
    removal = ctx.admin().remove_mailbox(record.id, args.purge)  # a running process stops its actors first
    counts = removal.counts
    removed = ["registration", *(f"{kind} (keyring)" for kind in removal.secrets)]
    if args.purge:
        removed += [f"{counts['elements']} element(s)", "sync state", f"{counts['quarantined']} quarantined message(s)",
                    f"{counts['blobs']} attachment blob(s)"]
    print(visible(f"removed {record.id}: {', '.join(removed)}"))
    if not args.purge:
        print("its elements were kept; `imap remove --purge` deletes them too")
    return 0
