"""``imap add``: one mailbox checked and registered, in steps that ``imap import`` takes for each record too.

:func:`prepare` checks the options as far as can be done without the server or a secret and makes
the record; :func:`check` signs in (OAuth2) and logs in to resolve the folder selection, storing
nothing; :func:`register` hands the checked record and its secret to the admin interface (the
running process's when ``run`` is up). Consent and where the secret comes from are each command's
own: a question on the terminal or stdin here, the file's records in ``imap import``.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from futurnal.admin import Admin
from futurnal.auth.oauth2 import OAuth2Client
from futurnal.imap.errors import FolderNotFound, MailError
from futurnal.imap.session import SECURITY_MODES, ConnectionSettings, ImapSession
from futurnal.logs.configure import redactor
from futurnal.scheduling.schedules import schedule_of
from futurnal.storage.clock import utc_now
from futurnal.storage.consent import SCOPES, scopes_described
from futurnal.storage.credentials import CredentialStore
from futurnal.storage.registry import MailboxRecord, default_mailbox_id, validate_mailbox_id
from futurnal.sync.download_budget import GMAIL_DAILY_DOWNLOAD_MB
from futurnal.sync.folder_plan import missing_folders, plan_folders
from futurnal.sync.folder_selection import FolderSpec, gmail_default_spec, watch_outside, watchable

from . import oauth2_commands, schedule_command
from .context import CommandContext
from .output import UserError, print_json, visible

__all__ = ["Checked", "Registration", "add_arguments", "check", "prepare", "register", "run"]

#: Gmail's IMAP host, with or without OAuth2: its download limit applies.
GMAIL_HOST = "imap.gmail.com"


def add_arguments(add: argparse.ArgumentParser) -> None:
    """The options of ``imap add``; ``imap import`` takes the same ones as the fields of its records."""
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
    add.add_argument("--daily-download-mb", type=int, default=None, metavar="MB",
                     help="megabytes the mailbox may download in a rolling 24 hours; past it a first sync's "
                     f"backfill pauses while new mail still comes in (default: {GMAIL_DAILY_DOWNLOAD_MB} on "
                     "Gmail, whose limit is 2,500; none elsewhere; 0 for none)")
    add.add_argument("--consent", action="store_true",
                     help="record that the mailbox's owner consents to its ingestion (asked for on a terminal "
                     "when not given; required when there is no terminal)")
    add.add_argument("--consent-scopes", dest="consent_scopes", default=",".join(SCOPES),
                     help=f"what the consent covers: {scopes_described()}; comma-separated (default: all)")
    add.add_argument("--granted-by", default=None, metavar="NAME", help="who consents (default: your user name)")
    add.add_argument("--no-verify", action="store_true", help="register without logging in to check")
    add.add_argument("--json", action="store_true", help="print the registered mailbox as JSON")
    oauth2_commands.add_arguments(add)


@dataclass(frozen=True, slots=True)
class Registration:
    """A mailbox to register, checked as far as it can be without the server: its record as the
    options give it, its consent, and how :func:`check` is to sign in and log in."""

    record: MailboxRecord
    scopes: tuple[str, ...]
    granted_by: str
    oauth_client: OAuth2Client | None
    verify: bool
    default_folders: bool  # no --folders: Gmail's default applies once the server says it is Gmail
    default_watch: bool  # no --watch: taken from the folders the selection resolves to
    auth_timeout: float


@dataclass(frozen=True, slots=True)
class Checked:
    """A registration the server accepted (or was not asked about, with ``--no-verify``): its record
    as the server resolved it, and the secret to keep."""

    registration: Registration
    record: MailboxRecord
    password: str
    signed_in: oauth2_commands.SignIn | None

    def store_secret(self, credentials: CredentialStore) -> None:
        if self.signed_in is None:
            credentials.set_secret(self.record.id, "password", self.password)
        else:
            oauth2_commands.store_secrets(credentials, self.record.id, self.signed_in)


def prepare(args: argparse.Namespace, ctx: CommandContext) -> Registration:
    """The options of ``imap add`` checked and made a record; nothing is asked of the server or the
    keyring. Bad options raise :class:`UserError` with exit status 2, naming the option."""
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
    if args.daily_download_mb is not None and args.daily_download_mb < 0:
        raise UserError("--daily-download-mb must be 0 (no budget) or more", code=2)
    budget = args.daily_download_mb
    if budget is None and host.lower() == GMAIL_HOST:
        budget = GMAIL_DAILY_DOWNLOAD_MB
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
    record = MailboxRecord(
        id=mailbox_id, email=args.email, host=host, port=port, username=args.username or args.email,
        security=args.security, cafile=args.cafile and os.path.abspath(os.path.expanduser(args.cafile)),
        folders=spec.include, exclude=spec.exclude,
        watch=_watch_named(args.watch, spec),
        sync_interval_seconds=args.interval or ctx.settings().default_sync_interval_seconds,
        schedule=None if plan is None else str(plan), priority=str(priority),
        daily_download_mb=budget or None, created_at=utc_now(),
        auth=args.auth, extra=oauth_client.to_extra() if oauth_client else {},
    )
    schedule_command.warn_if_polling(schedule_of(record))  # --interval, --schedule, or sync.interval_seconds
    return Registration(record, scopes, args.granted_by or getpass.getuser(), oauth_client, not args.no_verify,
                        default_folders=args.folders is None, default_watch=args.watch is None,
                        auth_timeout=args.auth_timeout)


def check(registration: Registration, ctx: CommandContext, secret: str | None) -> Checked:
    """Sign in (OAuth2, in the browser) and log in to resolve the folder selection, unless
    ``--no-verify``; nothing is stored. ``secret`` is the password, or the OAuth2 client secret
    (None for a public client). A refusal raises :class:`UserError` saying nothing was registered."""
    signed_in, password = None, secret or ""
    if registration.oauth_client is not None:
        signed_in, password = oauth2_commands.sign_in(registration.oauth_client, secret, registration.auth_timeout), ""
    record = registration.record
    if registration.verify:
        record = _verify(record, password, ctx, default_folders=registration.default_folders,
                         default_watch=registration.default_watch,
                         access_token=signed_in.tokens.access_token if signed_in else None)
    return Checked(registration, record, password, signed_in)


def register(admin: Admin, checked: Checked, store_secret: Callable[[], None]) -> None:
    """Register the checked mailbox with its consent, ``store_secret`` putting its secret in the
    keyring (a running process starts it at once); :class:`UserError` when its id or address is
    taken meanwhile."""
    registration = checked.registration
    try:
        admin.add_mailbox(checked.record, registration.scopes, registration.granted_by, store_secret)
    except ValueError as exc:  # the id or the address is taken
        raise UserError(str(exc)) from None


def run(args: argparse.Namespace, ctx: CommandContext) -> int:
    """``imap add``."""
    registration = prepare(args, ctx)
    _confirm_consent(args, registration.scopes)
    ctx.credentials.check_usable()  # before asking for a password we could not keep
    if registration.oauth_client is not None:
        oauth2_commands.refuse_taken(ctx, registration.record)
        secret = oauth2_commands.read_client_secret() if args.client_secret_stdin else None
    else:
        secret = _read_password(args.password_stdin)
    checked = check(registration, ctx, secret)
    register(ctx.admin(), checked, lambda: checked.store_secret(ctx.credentials))
    record = checked.record
    if args.json:
        print_json(record.to_document())
    else:
        then = ("a `run` process takes it at its next heartbeat (a shared store: `ctl status` says which)"
                if ctx.data_dir.shared is not None else f"sync it with: futurnal-actors imap sync {record.id}")
        print(visible(f"added mailbox {record.id} ({record.email}); {then}"))
    return 0


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
                raise FolderNotFound(missing_folders(plan.missing, listing, connection.address))
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
