"""The OAuth2 half of ``imap add`` (``--auth oauth2``), and ``imap reauth``.

``imap add`` stays the one command that registers a mailbox; this module gives it the OAuth2
options, the browser sign-in and the secrets to keep, and adds ``imap reauth`` for a mailbox
whose grant the provider revoked or expired (its status then says ``needs-reauth``).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from dataclasses import dataclass
from typing import Any

from futurnal.auth.oauth2 import (
    CLIENT_SECRET,
    PRESETS,
    REFRESH_TOKEN,
    OAuth2Client,
    OAuth2Error,
    TokenSet,
    custom_provider,
)
from futurnal.auth.oauth2_flow import run_authorization
from futurnal.imap.errors import MailError
from futurnal.imap.session import ConnectionSettings, ImapSession
from futurnal.logs.configure import redactor
from futurnal.storage.credentials import SECRET_KINDS, CredentialStore
from futurnal.storage.registry import MailboxRecord, MailboxRegistry, UnknownMailbox

from .context import CommandContext
from .output import UserError

__all__ = ["SignIn", "add_arguments", "client_from_args", "register", "sign_in", "store_secrets"]

PROVIDERS = (*PRESETS, "custom")
AUTH_METHODS = ("password", "oauth2")
DEFAULT_AUTH_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class SignIn:
    """A finished browser sign-in: the settings to register and the secrets to keep."""

    client: OAuth2Client
    tokens: TokenSet
    client_secret: str | None


def add_arguments(add: argparse.ArgumentParser) -> None:
    """The OAuth2 options of ``imap add``."""
    group = add.add_argument_group(
        "OAuth2 (--auth oauth2)",
        "Sign in through the provider's web page instead of giving a password: a browser opens (the "
        "$BROWSER command if set; the URL is also printed for a machine without one), you sign in and "
        "allow access, and the answer comes back to a one-off server on 127.0.0.1. Only the refresh "
        "token is kept, in the keyring; if the provider later revokes it, `imap status` says "
        "needs-reauth and `imap reauth MAILBOX` signs in again.",
    )
    group.add_argument("--auth", choices=AUTH_METHODS, default=None,
                       help="password (default) or oauth2 (default when --provider is given)")
    group.add_argument("--provider", choices=PROVIDERS,
                       help="gmail (imap.gmail.com), office365 (outlook.office365.com), or custom with "
                       "--auth-url, --token-url, --scope and --host")
    group.add_argument("--client-id", help="the OAuth2 client id of your registered app (required for oauth2)")
    group.add_argument("--client-secret-stdin", action="store_true",
                       help="read the app's client secret from standard input (for confidential clients; "
                       "kept in the keyring)")
    group.add_argument("--auth-url", metavar="URL", help="custom provider: its authorization endpoint")
    group.add_argument("--token-url", metavar="URL", help="custom provider: its token endpoint")
    group.add_argument("--scope", action="append", default=[], metavar="S",
                       help="custom provider: an OAuth2 scope to ask for (repeatable, or space-separated); "
                       "include offline_access where the provider needs it for a refresh token")
    group.add_argument("--auth-timeout", type=float, default=DEFAULT_AUTH_TIMEOUT, metavar="SECONDS",
                       help=f"how long to wait for the browser sign-in (default: {DEFAULT_AUTH_TIMEOUT:g})")


def client_from_args(args: argparse.Namespace) -> OAuth2Client | None:
    """Check the OAuth2 options before anything slow happens; None for a password mailbox.

    Sets ``args.auth`` when it was left to be inferred from ``--provider``.
    """
    if args.auth is None:
        args.auth = "oauth2" if args.provider else "password"
    custom_only = [flag for flag, value in (("--auth-url", args.auth_url), ("--token-url", args.token_url),
                                            ("--scope", args.scope)) if value]
    if args.auth == "password":
        given = [flag for flag, value in (("--provider", args.provider), ("--client-id", args.client_id),
                                          ("--client-secret-stdin", args.client_secret_stdin)) if value]
        if given + custom_only:
            raise UserError(f"{', '.join(given + custom_only)} only go with --auth oauth2", code=2)
        return None
    if args.password_stdin:
        raise UserError("--password-stdin does not go with --auth oauth2: there is no password to give", code=2)
    if not args.provider:
        raise UserError(f"--auth oauth2 needs --provider ({', '.join(PROVIDERS)})", code=2)
    if not args.client_id:
        raise UserError("--auth oauth2 needs --client-id: the id of the OAuth2 app you registered with the provider",
                        code=2)
    if args.auth_timeout <= 0:
        raise UserError("--auth-timeout must be positive", code=2)
    if args.client_secret_stdin and CLIENT_SECRET not in SECRET_KINDS:
        raise UserError("this version cannot keep a client secret in the keyring yet; use a public "
                        "(desktop / native) client without one", code=2)
    if args.provider != "custom":
        if custom_only:
            raise UserError(f"{', '.join(custom_only)} only go with --provider custom", code=2)
        return OAuth2Client(PRESETS[args.provider], args.client_id, args.client_secret_stdin)
    missing = [flag for flag, value in (("--auth-url", args.auth_url), ("--token-url", args.token_url),
                                        ("--scope", args.scope), ("--host", args.host)) if not value]
    if missing:
        raise UserError(f"--provider custom needs {', '.join(missing)}", code=2)
    scopes = tuple(s for text in args.scope for s in text.split())
    try:
        return OAuth2Client(custom_provider(args.auth_url, args.token_url, scopes), args.client_id,
                            args.client_secret_stdin)
    except OAuth2Error as exc:
        raise UserError(str(exc), code=2) from None


def read_client_secret() -> str:
    secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        raise UserError("the client secret on standard input is empty", code=2)
    redactor.add_secret(secret)
    return secret


def sign_in(client: OAuth2Client, client_secret: str | None, timeout: float) -> SignIn:
    """Run the browser step; nothing is stored here, so a failure leaves no trace."""
    def announce(url: str) -> None:
        print(f"Sign in to {client.provider.name} in your browser. If none opens, open this URL:\n{url}",
              file=sys.stderr, flush=True)

    try:
        tokens = run_authorization(client, client_secret, secret_registry=redactor, timeout=timeout, announce=announce)
    except OAuth2Error as exc:
        raise UserError(f"OAuth2 sign-in failed: {exc}") from None
    print("Signed in; checking the IMAP login ...", file=sys.stderr, flush=True)
    return SignIn(client, tokens, client_secret)


def store_secrets(credentials: CredentialStore, mailbox_id: str, signed_in: SignIn) -> None:
    assert signed_in.tokens.refresh_token is not None  # run_authorization refuses a sign-in without one
    credentials.set_secret(mailbox_id, REFRESH_TOKEN, signed_in.tokens.refresh_token)
    if signed_in.client_secret is not None:
        credentials.set_secret(mailbox_id, CLIENT_SECRET, signed_in.client_secret)


def refuse_taken(ctx: CommandContext, record: MailboxRecord) -> None:
    """Before the browser step: a sign-in that ends in "already registered" wastes the user's time.
    A taken address is named with the command that signs in to its mailbox again."""
    registry = ctx.registry()
    try:
        registry.refuse_taken(record)
    except ValueError as exc:
        try:
            again = f"; `imap reauth {registry.get(record.email).id}` signs in to it again"
        except UnknownMailbox:  # the id is taken, not the address
            again = ""
        raise UserError(f"{exc}{again}") from None
    finally:
        registry.close()


def register(commands: Any) -> None:
    reauth = commands.add_parser(
        "reauth", help="sign in again to a mailbox whose login the server or provider refuses",
        description="Sign in again. For an OAuth2 mailbox this runs the browser sign-in of `imap add` and "
        "replaces the stored refresh token; for a password mailbox, --password-stdin reads the new password. "
        "The login is checked before anything is stored, and the mailbox's needs-reauth state is cleared.",
    )
    reauth.add_argument("mailbox", metavar="MAILBOX", help="mailbox id or e-mail address")
    reauth.add_argument("--password-stdin", action="store_true",
                        help="password mailbox: read the new password from standard input")
    reauth.add_argument("--client-secret-stdin", action="store_true",
                        help="OAuth2 mailbox: also replace the client secret, read from standard input")
    reauth.add_argument("--auth-timeout", type=float, default=DEFAULT_AUTH_TIMEOUT, metavar="SECONDS",
                        help=f"how long to wait for the browser sign-in (default: {DEFAULT_AUTH_TIMEOUT:g})")
    reauth.set_defaults(handler=_reauth)


def _reauth(args: argparse.Namespace, ctx: CommandContext) -> int:
    record = ctx.mailbox(args.mailbox)
    ctx.credentials.check_usable()

    def renew(registry: MailboxRegistry | None) -> str:
        if record.auth == "oauth2":
            return _reauth_oauth2(args, ctx, record, registry)
        return _reauth_password(args, ctx, record)

    # Signed in here (the browser, the keyring); then audited, needs-reauth cleared, and with `run`
    # serving the data directory the mailbox's actors restarted with the new secret.
    done = ctx.admin().reauthenticate(record, renew)
    print(f"signed in to {record.id} again; its new {done.secret_kind} is in this host's secret store")
    if done.restarted is not None:
        what = "restarted its actors and is syncing it" if done.restarted else "will use it when the mailbox starts"
        print(f"  the running process {what}")
    return 0


def _reauth_oauth2(args: argparse.Namespace, ctx: CommandContext, record: MailboxRecord,
                   registry: MailboxRegistry | None) -> str:
    """``registry`` None: the running process owns it, so nothing may change the mailbox's record."""
    if args.password_stdin:
        raise UserError(f"{record.id} signs in with OAuth2: there is no password to give", code=2)
    if args.auth_timeout <= 0:
        raise UserError("--auth-timeout must be positive", code=2)
    try:
        client = OAuth2Client.from_extra(record.extra)
    except OAuth2Error as exc:
        raise UserError(f"{record.id}: {exc}") from None
    if args.client_secret_stdin:
        if CLIENT_SECRET not in SECRET_KINDS:
            raise UserError("this version cannot keep a client secret in the keyring yet", code=2)
        if registry is None and not client.has_client_secret:
            raise UserError(f"giving {record.id} a client secret changes its registration, which the running "
                            f"process owns: stop it (`ctl shutdown`), then run this again", code=2)
        secret: str | None = read_client_secret()
        client = OAuth2Client(client.provider, client.client_id, True)
    elif client.has_client_secret:
        secret = ctx.credentials.get_secret(record.id, CLIENT_SECRET)
        if secret is None:
            raise UserError(f"the client secret of {record.id} is not in the keyring; pass --client-secret-stdin")
        redactor.add_secret(secret)
    else:
        secret = None
    signed_in = sign_in(client, secret, args.auth_timeout)
    check_login(ctx, record, access_token=signed_in.tokens.access_token)
    store_secrets(ctx.credentials, record.id, signed_in)
    if registry is not None and client.has_client_secret and not OAuth2Client.from_extra(record.extra).has_client_secret:
        registry.update(record.with_changes(extra={**record.extra, **client.to_extra()}))
    return "refresh token"


def _reauth_password(args: argparse.Namespace, ctx: CommandContext, record: MailboxRecord) -> str:
    if args.client_secret_stdin:
        raise UserError(f"{record.id} signs in with a password: there is no client secret to give", code=2)
    if not args.password_stdin and not sys.stdin.isatty():
        raise UserError(f"{record.id} signs in with a password: pipe the new one in with --password-stdin", code=2)
    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else getpass.getpass("IMAP password: ")
    if not password:
        raise UserError("the password is empty", code=2)
    redactor.add_secret(password)
    check_login(ctx, record, password=password)
    ctx.credentials.set_secret(record.id, "password", password)
    return "password"


def check_login(ctx: CommandContext, record: MailboxRecord, *, password: str | None = None,
                access_token: str | None = None) -> None:
    """Log in once with the new secret, so nothing is stored that the server would refuse."""
    settings = ctx.settings()
    connection = ConnectionSettings.for_mailbox(record, settings.connect_timeout_seconds, settings.read_timeout_seconds)
    session = ImapSession(connection)
    try:
        (session.connect_oauth2(access_token) if access_token is not None else session.connect(password or "")).close()
    except MailError as exc:
        raise UserError(f"{exc} (nothing was changed)") from None
