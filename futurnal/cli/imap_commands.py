"""``imap add / import / list / status / sync / remove``; ``imap add`` itself is in :mod:`.add_mailbox`,
``imap import`` in :mod:`.import_command`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from typing import Any

from futurnal.logs.configure import redactor
from futurnal.storage.registry import MailboxRecord

from . import (
    add_mailbox,
    budget_command,
    folders_command,
    import_command,
    monitor_command,
    oauth2_commands,
    schedule_command,
)
from .command_line import timeout_seconds
from .context import CommandContext
from .output import ProgressBar, UserError, error_line, print_json, print_table, visible

__all__ = ["register"]

_NONE_REGISTERED = "no mailboxes registered; add one with: futurnal-actors imap add --help"


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

    status = commands.add_parser(
        "status", help="sync state of a mailbox, folder by folder",
        description="A mailbox's folders (sync watermarks, counts, last success and error), how each is watched "
        "and how fresh it is, its schedule; with `run` running it, its live state. --all: every registered "
        "mailbox, one after the other (with --json, one document). Exit status 1 when a status cannot be read.",
    )
    _mailbox_arguments(status, "show")
    status.add_argument("--json", action="store_true", help="print one JSON document")
    status.set_defaults(handler=_status)

    sync = commands.add_parser(
        "sync", help="sync a mailbox now and wait until it is done",
        description="Sync one mailbox (or every registered one with --all, one after the other) and print what "
        "was fetched: through `run` when it runs, else in an actor system of this command's own. "
        "Exit status 0 when every folder of every mailbox synced, 1 otherwise.",
    )
    _mailbox_arguments(sync, "sync")
    sync.add_argument("--folder", action="append", default=[], metavar="F",
                      help="sync only this folder (repeatable; default: the mailbox's folders; not with --all)")
    sync.add_argument("--json", action="store_true", help="print the sync report as one JSON document")
    sync.add_argument("--timeout", type=timeout_seconds, default=None, metavar="SECONDS",
                      help="give up waiting after this long (more than 0; default: until done), per mailbox")
    sync.set_defaults(handler=_sync)

    folders_command.register(commands)
    schedule_command.register(commands)
    budget_command.register(commands)
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
        print(_NONE_REGISTERED)
    else:
        print_table(
            [[r.id, r.email, f"{r.host}:{r.port}", r.security, ",".join(r.folders)] for r in records],
            ["ID", "EMAIL", "SERVER", "SECURITY", "FOLDERS"],
        )
    return 0


def _mailbox_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument("mailbox", metavar="MAILBOX", nargs="?", help="mailbox id or e-mail address")
    parser.add_argument("--all", action="store_true", help=f"{verb} every registered mailbox")


def _chosen(args: argparse.Namespace, ctx: CommandContext) -> list[MailboxRecord]:
    """MAILBOX, or with --all every registered mailbox."""
    if args.all == (args.mailbox is not None):
        raise UserError("name a MAILBOX, or give --all for every registered mailbox" if not args.all
                        else "give a MAILBOX or --all, not both", code=2)
    if not args.all:
        return [ctx.mailbox(args.mailbox)]
    registry = ctx.registry()
    records = registry.all()
    registry.close()
    for record in records:
        redactor.add_mailbox(record.id, record.email)
    return records


def _each(args: argparse.Namespace, records: list[MailboxRecord],
          do: Callable[[MailboxRecord], dict[str, Any]]) -> Iterator[tuple[MailboxRecord, dict[str, Any] | str]]:
    """Each record with what ``do`` made of it. With --all, a mailbox's failure (one of the
    project's errors: the store's, the server's, the running process's, a missing consent) is its
    message, written on stderr at once, and the next mailbox goes on; for one MAILBOX it is the
    command's, and anything unexpected is always the command's."""
    for record in records:
        try:
            yield record, do(record)
        except Exception as exc:
            if not args.all or not type(exc).__module__.startswith("futurnal."):
                raise
            print(error_line(f"{record.id}: {exc}"), file=sys.stderr)
            yield record, str(exc)


def _status(args: argparse.Namespace, ctx: CommandContext) -> int:
    records = _chosen(args, ctx)
    admin = ctx.admin()
    documents, failed = [], 0
    for number, (record, report) in enumerate(_each(args, records, admin.status)):
        if isinstance(report, str):
            failed += 1
            documents.append({"mailbox": record.to_document(), "error": report})
        elif args.json:
            documents.append(report)
        else:
            if number:
                print()
            _print_status(record, report, ctx)
    if args.json:
        print_json({"ok": not failed, "mailboxes": documents} if args.all else documents[0])
    elif args.all and not records:
        print(_NONE_REGISTERED)
    return 1 if failed else 0


def _print_status(record: MailboxRecord, report: dict[str, Any], ctx: CommandContext) -> None:
    folders, quarantined = report["folders"], report["quarantined"]
    reauth, parked = report["needs_reauth"], report["parked"]
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
    if held := report.get("throttled"):
        print(visible(f"THROTTLED until {held['until']} ({held['kind']}, since {held['since']}): {held['reason']}"))
        print("  (nothing is sent to its server before then; the other mailboxes go on)")
    if alert := report.get("last_alert"):
        print(visible(f"server alert ({alert['since']}): {alert['reason']}"))
    print(visible(f"folders: {', '.join(record.folders)}"
                  + (f" excluding {', '.join(record.exclude)}" if record.exclude else "")))
    print(visible(f"schedule: {_schedule_text(report)}"))
    if (budget := report.get("download_budget")) is not None:
        print(f"download budget: {budget['used_mb']:g} of {budget['limit_mb']:g} MB in the last 24 hours"
              + (f"; used up: older mail waits until {budget['resets_at']}, new mail still comes in"
                 if budget["exhausted"] else ""))
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
    for f in folders:
        if (backfill := f.get("backfill")) is not None:
            print(visible(f"{f['folder']}: {_backfill_text(backfill)}"))
        if f.get("open_read_write"):
            print(visible(f"{f['folder']}: opened read-write, because its server gave it a new UIDVALIDITY at every "
                          "read-only open (it saves UIDs only for read-write sessions); bodies are still fetched "
                          "with BODY.PEEK, so nothing changes on the server"))
    if quarantined:
        print(f"{quarantined} message(s) in quarantine")
    if report["pending_extractions"]:
        print(f"{report['pending_extractions']} element(s) wait for attachment text extraction "
              "(done in the background by `run`, or by the next `imap sync`)")


def _backfill_text(backfill: dict[str, Any]) -> str:
    """A folder's backfill in words: how far, how fast, and until when (and what limits it)."""
    text = (f"newest mail first; older mail below UID {backfill['floor']} still to come: {backfill['done']:,} of "
            f"{backfill['total']:,} stored ({backfill['mb_done']:g} MB"
            + (f" of about {backfill['mb_total']:g})" if backfill.get("mb_total") else " so far)"))
    if backfill["per_minute"]:
        text += f", {backfill['per_minute']:,.0f} a minute" if backfill["per_minute"] >= 10 else \
            f", {backfill['per_minute']:g} a minute"
    if backfill["eta"]:
        text += f", ends about {backfill['eta']}"
        if backfill["limited_by"] == "budget":
            text += " (the daily download budget is what limits it)"
    return text


def _schedule_text(report: dict[str, Any]) -> str:
    """The schedule and, only when a process runs the mailbox, its next run."""
    when = report["schedule"]
    text = f"{when['schedule']}, priority {when['priority']}"
    if not report.get("running", "live" in report):  # a process of an older version sends no "running"
        return f"{text}; not running, so nothing is scheduled"
    return text + (f", next run {when['next_run']}" if when["next_run"] else "")


def _sync(args: argparse.Namespace, ctx: CommandContext) -> int:
    if args.all and args.folder:
        raise UserError("--folder names folders of one mailbox: give a MAILBOX with it, not --all", code=2)
    records = _chosen(args, ctx)
    admin = ctx.admin()

    def sync(record: MailboxRecord) -> dict[str, Any]:
        return admin.sync(
            record, tuple(args.folder), timeout=args.timeout,
            progress=ProgressBar(f"syncing {record.id}", enabled=False if args.json else None),
            say=None if args.json else lambda line: print(visible(line), file=sys.stderr),
        )

    reports = []
    for record, report in _each(args, records, sync):
        if isinstance(report, str):
            report = {"mailbox": record.id, "ok": False, "fetched": 0, "skipped": None, "folders": [],
                      "errors": [{"folder": None, "error": report}]}
        else:
            _print_sync(record, report, quiet=args.json)
        reports.append(report)
    failed = sum(1 for report in reports if not report["ok"] or report["skipped"])
    if args.json:
        print_json({"ok": not failed, "mailboxes": reports} if args.all else reports[0])
    elif args.all:
        print(f"{len(reports) - failed} of {len(reports)} mailbox(es) synced" + (f", {failed} failed" if failed else "")
              if reports else _NONE_REGISTERED)
    return 1 if failed else 0


def _print_sync(record: MailboxRecord, report: dict[str, Any], *, quiet: bool) -> None:
    """What a sync fetched (unless ``quiet``: the JSON says it), and on stderr what it left undone."""
    if not quiet:
        for folder in report["folders"]:
            extra = f", {folder['quarantined']} quarantined" if folder["quarantined"] else ""
            if folder.get("budget_frees_at"):
                extra += (f"; older mail (below UID {folder['backfill_floor']}) waits for the daily download budget "
                          f"until {folder['budget_frees_at']}")
            print(visible(f"{record.id} {folder['folder']}: {folder['fetched']} new message(s){extra}"))
    if report["skipped"]:
        print(visible(f"{record.id}: not synced, {report['skipped']} (`futurnal-actors ctl resume {record.id}`)"),
              file=sys.stderr)
    elif not quiet:
        for error in report["errors"]:
            print(visible(f"error: {record.id} {error['folder']}: {error['error']}"), file=sys.stderr)


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
