"""``imap add / list / status / sync / remove``."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from futurnal.imap.errors import FolderNotFound, MailError
from futurnal.imap.session import SECURITY_MODES, ConnectionSettings, ImapSession
from futurnal.logs.configure import redactor
from futurnal.storage.clock import utc_now
from futurnal.storage.consent import SCOPES, scopes_described
from futurnal.storage.registry import MailboxRecord, default_mailbox_id, validate_mailbox_id
from futurnal.sync.folder_plan import plan_folders
from futurnal.sync.folder_selection import FolderSpec, gmail_default_spec, watch_outside, watchable

from . import monitor_command, oauth2_commands, schedule_command
from .context import CommandContext
from .output import ProgressBar, UserError, print_json, print_table, visible

__all__ = ["register"]


def register(subparsers: Any) -> None:
    imap = subparsers.add_parser("imap", help="register, inspect, sync and remove IMAP mailboxes")
    commands = imap.add_subparsers(dest="imap_command", metavar="COMMAND", required=True)

    add = commands.add_parser(
        "add",
        help="register a mailbox (checks the login, keeps the password in the keyring)",
        description="Register a mailbox. The password is read from stdin (--password-stdin) or asked for "
        "on the terminal, checked against the server, and kept only in the OS keyring. With --auth oauth2 "
        "(Gmail, Office 365, or any OAuth2 provider) you sign in in a browser instead (README: OAuth2).",
    )
    add.add_argument("--email", required=True, help="the mailbox's e-mail address")
    add.add_argument("--host", help="IMAP server host name (required, except with --provider gmail or office365)")
    add.add_argument("--port", type=int, help="IMAP port (default: 993 for tls, 143 otherwise)")
    add.add_argument("--username", help="login name (default: the e-mail address)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.add_argument("--security", choices=SECURITY_MODES, default="tls",
                     help="tls (default), starttls, or plain (unencrypted: only when you mean it)")
    add.add_argument("--cafile", help="PEM file of the CA that signed the server certificate (private CAs)")
    add.add_argument(
        "--folders", default=None,
        help="comma-separated folders to sync: exact names (INBOX), globs by hierarchy (Archive/* one level, "
        "Projects/** any depth) or special-use folders (\\Sent, \\Archive, \\All, \\Junk, \\Trash; or "
        "special:sent). Default: INBOX, or [Gmail]/All Mail on Gmail",
    )
    add.add_argument("--watch", default=None, metavar="FOLDERS",
                     help="comma-separated folders to watch in real time by IDLE (polling where the server has "
                     "no IDLE) while `run` is going, each one the selection syncs; '' for none (default: INBOX "
                     "when the selection holds it, else the selection's folders)")
    add.add_argument("--exclude", default="", help="comma-separated folders to leave out, same forms (e.g. 'Trash,Spam')")
    add.add_argument("--id", dest="mailbox_id", help="id to refer to the mailbox by (default: from the e-mail address)")
    when = add.add_mutually_exclusive_group()
    when.add_argument("--interval", type=int, default=None, metavar="SECONDS",
                      help="sync interval for `run`, short for --schedule '@interval SECONDS' (default: 300)")
    when.add_argument("--schedule", metavar="SPEC", help="'@interval SECONDS', '@manual', or a cron expression "
                      "such as '*/15 * * * *' (see `imap schedule --help`)")
    add.add_argument("--priority", choices=schedule_command.PRIORITIES, default="normal",
                     help="who goes first when more syncs are due than may run at once (default: normal)")
    add.add_argument("--consent", action="store_true",
                     help="record that the mailbox's owner consents to its ingestion (asked for on a terminal "
                     "when not given; required when there is no terminal)")
    add.add_argument("--consent-scopes", dest="consent_scopes", default=",".join(SCOPES),
                     help=f"what the consent covers: {scopes_described()}; comma-separated (default: all)")
    add.add_argument("--granted-by", default=None, metavar="NAME", help="who consents (default: your user name)")
    add.add_argument("--no-verify", action="store_true", help="register without logging in to check")
    add.add_argument("--json", action="store_true", help="print the registered mailbox as JSON")
    oauth2_commands.add_arguments(add)
    add.set_defaults(handler=_add)

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

    schedule_command.register(commands)
    monitor_command.register(commands)
    oauth2_commands.register(commands)

    remove = commands.add_parser("remove", help="unregister a mailbox and delete its secrets")
    remove.add_argument("mailbox", metavar="MAILBOX", help="mailbox id or e-mail address")
    remove.add_argument("--purge", action="store_true",
                        help="also delete its elements, sync state, quarantine and attachment blobs")
    remove.set_defaults(handler=_remove)


def _confirm_consent(args: argparse.Namespace, scopes: tuple[str, ...]) -> None:
    """Nothing is ingested without its owner's say-so: explicit flag, or a yes on the terminal."""
    if args.consent:
        return
    if not sys.stdin.isatty() or args.password_stdin:
        raise UserError("consent is required: pass --consent to record that the mailbox's owner agrees to "
                        f"ingesting its {', '.join(scopes)}", code=2)
    answer = input(f"Ingest the {', '.join(scopes)} of {args.email} into this machine's store? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise UserError("no consent given; nothing was registered", code=1)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("IMAP password: ")
    else:
        raise UserError("no password given: pipe it in with --password-stdin", code=2)
    if not password:
        raise UserError("the password is empty", code=2)
    redactor.add_secret(password)
    return password


def _add(args: argparse.Namespace, ctx: CommandContext) -> int:
    if "@" not in args.email:
        raise UserError(f"--email {args.email!r} is not an e-mail address", code=2)
    oauth_client = oauth2_commands.client_from_args(args)
    host = args.host or (oauth_client.provider.imap_host if oauth_client else None)
    if not host:
        raise UserError("--host is required", code=2)
    port = args.port or (993 if args.security == "tls" else 143)
    if not 0 < port < 65536:
        raise UserError(f"--port {port} is not a TCP port", code=2)
    if args.interval is not None and args.interval < 1:
        raise UserError("--interval must be at least 1 second", code=2)
    plan, priority = schedule_command.validated(args.schedule, args.priority)
    try:
        spec = FolderSpec.parse(args.folders or "INBOX", args.exclude)
    except ValueError as exc:
        raise UserError(f"--folders/--exclude: {exc}", code=2) from None
    try:
        mailbox_id = validate_mailbox_id(args.mailbox_id) if args.mailbox_id else default_mailbox_id(args.email)
    except ValueError as exc:
        raise UserError(str(exc), code=2) from None
    if args.cafile:
        try:
            open(args.cafile, "rb").close()
        except OSError as exc:
            raise UserError(f"--cafile {args.cafile}: {exc.strerror}", code=2) from None
    scopes = tuple(scope.strip() for scope in args.consent_scopes.split(",") if scope.strip())
    if not scopes or set(scopes) - set(SCOPES):
        raise UserError(f"--consent-scopes: choose from {', '.join(SCOPES)}", code=2)
    _confirm_consent(args, scopes)
    ctx.credentials.check_usable()  # before asking for a password we could not keep
    signed_in = None
    if oauth_client is not None:
        oauth2_commands.refuse_taken(ctx, mailbox_id, args.email)
        client_secret = oauth2_commands.read_client_secret() if args.client_secret_stdin else None
        signed_in = oauth2_commands.sign_in(oauth_client, client_secret, args.auth_timeout)
    password = _read_password(args.password_stdin) if signed_in is None else ""
    record = MailboxRecord(
        id=mailbox_id, email=args.email, host=host, port=port, username=args.username or args.email,
        security=args.security, cafile=args.cafile and os.path.abspath(os.path.expanduser(args.cafile)),
        folders=spec.include, exclude=spec.exclude,
        watch=_watch_named(args.watch, spec),
        sync_interval_seconds=args.interval or ctx.settings().default_sync_interval_seconds,
        schedule=None if plan is None else str(plan), priority=str(priority),
        created_at=utc_now(),
        auth=args.auth, extra=oauth_client.to_extra() if oauth_client else {},
    )
    if not args.no_verify:
        record = _verify(record, password, ctx, default_folders=args.folders is None, default_watch=args.watch is None,
                         access_token=signed_in.tokens.access_token if signed_in else None)
    def store_secret() -> None:
        if signed_in is None:
            ctx.credentials.set_secret(record.id, "password", password)
        else:
            oauth2_commands.store_secrets(ctx.credentials, record.id, signed_in)

    try:  # a running `run` registers the mailbox and starts it at once
        ctx.admin().add_mailbox(record, scopes, args.granted_by or getpass.getuser(), store_secret)
    except ValueError as exc:  # the id or the address is taken
        raise UserError(str(exc)) from None
    if args.json:
        print_json(record.to_document())
    else:
        print(visible(f"added mailbox {record.id} ({record.email}); sync it with: futurnal-actors imap sync {record.id}"))
    return 0


def _watch_named(watch: str | None, spec: FolderSpec) -> tuple[str, ...]:
    """``--watch`` as given, or by default taken from the selection's own exact names (``_verify``
    takes it from the folders the selection resolves to instead). Without the server's LIST, a
    named folder that the selection's names leave out is refused here; ``_verify`` checks the rest
    against the server."""
    if watch is None:
        return _default_watch(watchable(spec.include, spec.exclude, spec.include))
    named = tuple(dict.fromkeys(f.strip() for f in watch.split(",") if f.strip()))
    _refuse_unselected([f for f in named if f not in watchable(spec.include, spec.exclude, named)], spec.include)
    return named


def _default_watch(selected: tuple[str, ...]) -> tuple[str, ...]:
    """INBOX when the selection holds it (the other folders sync on the schedule), else every
    selected folder: never a folder the selection leaves out."""
    inbox = tuple(folder for folder in selected if folder.upper() == "INBOX")
    return inbox[:1] or selected


def _refuse_unselected(folders: list[str], selection: tuple[str, ...]) -> None:
    """A watcher's changes are synced: watching a folder the selection leaves out would ingest it."""
    if folders:
        raise UserError(f"--watch {','.join(folders)}: not among the folders this mailbox syncs "
                        f"(--folders {','.join(selection)} less --exclude); watch only folders it syncs", code=2)


def _verify(record: MailboxRecord, password: str, ctx: CommandContext, *, default_folders: bool,
            default_watch: bool = False, access_token: str | None = None) -> MailboxRecord:
    """Log in and resolve the folder selection, so mistakes show now rather than at the first sync."""
    settings = ctx.settings()
    connection = ConnectionSettings.for_mailbox(
        record, settings.connect_timeout_seconds, settings.read_timeout_seconds
    )
    try:
        session = ImapSession(connection)
        with session.connect_oauth2(access_token) if access_token else session.connect(password):
            if default_folders and session.gmail:
                record = record.with_changes(folders=gmail_default_spec().include)
            listing = session.list_folders()
            plan = plan_folders(FolderSpec(record.folders, record.exclude), listing, (), gmail=session.gmail)
            if plan.missing:
                raise FolderNotFound(f"folder(s) {', '.join(map(repr, plan.missing))} do not exist on {connection.address}")
            if not plan.folders:
                raise FolderNotFound(f"no folder on {connection.address} matches {', '.join(record.folders)}")
            if default_watch:
                record = record.with_changes(watch=_default_watch(plan.folders))
            _refuse_unselected(watch_outside(record.watch, plan.folders, listing), record.folders)
            for folder in plan.folders:
                session.select(folder)
    except MailError as exc:
        raise UserError(f"{exc} (nothing was registered; --no-verify skips this check)") from None
    return record


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
