"""Opening a logged-in session for a mailbox: its settings, its secret, its connection budget."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable

from loguru import logger

from futurnal.auth.oauth2 import CLIENT_SECRET, REFRESH_TOKEN, AccessTokens, OAuth2Client, OAuth2Error, TokenClient
from futurnal.auth.secret_registry import SecretRegistry
from futurnal.storage.credentials import CredentialStore
from futurnal.storage.registry import MailboxRecord

from .connection_budget import ConnectionBudget
from .errors import AuthenticationFailed, CaFileUnusable, ConnectionFailed
from .live_connections import LiveConnections
from .session import DEFAULT_MIN_TRANSFER_RATE, ConnectionSettings, ImapSession
from .wire_limits import DEFAULT_MAX_MESSAGE_BYTES

__all__ = ["MailboxConnector"]


class MailboxConnector:
    """Callable that returns a new connected :class:`ImapSession`; shared by fetcher and watchers.

    For an OAuth2 mailbox it also owns the access token (in memory only), so every connection of
    the mailbox reuses one token until it nears expiry. Every secret it reads or receives (the
    password, the client secret, the tokens) is registered with ``secret_registry`` first.
    """

    def __init__(
        self,
        record: MailboxRecord,
        credentials: CredentialStore,
        *,
        secret_registry: SecretRegistry,
        connect_timeout: float,
        read_timeout: float,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        min_transfer_rate: float = DEFAULT_MIN_TRANSFER_RATE,
        budget: ConnectionBudget | None = None,
        live: LiveConnections | None = None,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._record = record
        self._credentials = credentials
        self._secret_registry = secret_registry
        self._settings = ConnectionSettings.for_mailbox(
            record, connect_timeout, read_timeout, max_message_bytes=max_message_bytes,
            min_transfer_rate=min_transfer_rate,
        )
        self._budget = budget
        self._live = live
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._tokens: AccessTokens | None = None
        self._tokens_lock = threading.Lock()

    @property
    def budget(self) -> ConnectionBudget | None:
        """The mailbox's connection budget, shared by all its connections (lowered when refused)."""
        return self._budget

    @property
    def oauth2_tokens(self) -> AccessTokens | None:
        """The OAuth2 mailbox's token source once a connection has needed it; None for passwords."""
        return self._tokens

    def __call__(self) -> ImapSession:
        logger.bind(mailbox=self._record.id).debug(
            "connecting to {host}:{port} as {address}", host=self._record.host, port=self._record.port,
            address=self._record.email,
        )
        self._check_cafile()
        if self._record.auth == "oauth2":
            return self._connect_oauth2()
        password = self._credentials.get_secret(self._record.id, "password")
        if password is None:
            raise AuthenticationFailed(f"no password for {self._record.id} in this host's secret store; "
                                       f"`imap reauth {self._record.id} --password-stdin` stores it")
        self._secret_registry.add_secret(password)  # so no later log line, traceback included, can show it
        return self._trusting(lambda: self._new_session().connect(password))

    def _new_session(self) -> ImapSession:
        return ImapSession(self._settings, self._budget, self._live, owner=self._record.id)

    def _check_cafile(self) -> None:
        """A CA file that went missing since ``imap add`` is the user's to put back: say so, before
        any connection is tried, rather than fail somewhere inside TLS set-up."""
        cafile = self._record.cafile
        if not cafile:
            return
        try:
            with open(cafile, "rb"):
                pass
        except FileNotFoundError:
            raise CaFileUnusable(f"CA file {cafile} is missing: {self._cafile_hint()}") from None
        except OSError as exc:
            raise CaFileUnusable(
                f"CA file {cafile} cannot be read ({exc.strerror or exc}): {self._cafile_hint()}"
            ) from None

    def _trusting(self, connect: Callable[[], ImapSession]) -> ImapSession:
        """Connect; the session wraps every network failure, so a bare SSL or OS error can only
        come from loading the CA file (unreadable, not PEM, or gone since the check)."""
        try:
            return connect()
        except OSError as exc:  # ssl.SSLError is one too
            if not self._record.cafile or not isinstance(exc, ssl.SSLError | FileNotFoundError | PermissionError):
                raise
            raise CaFileUnusable(
                f"CA file {self._record.cafile} cannot be used ({exc}): {self._cafile_hint()}"
            ) from None

    def _cafile_hint(self) -> str:
        return (f"put the CA certificate (PEM) back there, or register the mailbox again with "
                f"`futurnal-actors imap add ... --cafile FILE` (id {self._record.id})")

    def _connect_oauth2(self) -> ImapSession:
        """Log in with the current token; if refused, refresh once and try once more, then give up.

        A token can be refused before its announced expiry (revoked, password changed, clock
        skew), and one fresh token settles which it is: refused again means the grant is gone.
        """
        tokens = self._access_tokens()
        token = self._token(tokens.get)
        try:
            return self._trusting(lambda: self._new_session().connect_oauth2(token))
        except AuthenticationFailed:
            pass
        token = self._token(lambda: tokens.refreshed(token))
        try:
            return self._trusting(lambda: self._new_session().connect_oauth2(token))
        except AuthenticationFailed as exc:
            raise AuthenticationFailed(f"{exc}, even with a fresh token; {self._reauth_hint()}") from None

    def _token(self, get: Callable[[], str]) -> str:
        try:
            return get()
        except OAuth2Error as exc:
            if exc.transient:
                raise ConnectionFailed(str(exc)) from None
            raise AuthenticationFailed(f"{exc}; {self._reauth_hint()}") from None

    def _reauth_hint(self) -> str:
        return f"sign in again with: futurnal-actors imap reauth {self._record.id}"

    def _access_tokens(self) -> AccessTokens:
        with self._tokens_lock:
            if self._tokens is None:
                try:
                    client = OAuth2Client.from_extra(self._record.extra)
                except OAuth2Error as exc:
                    raise AuthenticationFailed(f"{self._record.id}: {exc}") from None
                secret = self._credentials.get_secret(self._record.id, CLIENT_SECRET) if client.has_client_secret else None
                if client.has_client_secret and secret is None:
                    raise AuthenticationFailed(f"no client secret for {self._record.id} in the keyring; {self._reauth_hint()}")
                mailbox = self._record.id
                self._tokens = AccessTokens(
                    TokenClient(client, secret, secret_registry=self._secret_registry,
                                timeout=self._settings.read_timeout, clock=self._clock),
                    lambda: self._credentials.get_secret(mailbox, REFRESH_TOKEN),
                    lambda token: self._credentials.set_secret(mailbox, REFRESH_TOKEN, token),
                    secret_registry=self._secret_registry,
                    margin=self._refresh_margin,
                    clock=self._clock,
                )
            return self._tokens
