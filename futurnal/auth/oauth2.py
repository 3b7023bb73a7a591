"""OAuth2 for IMAP: provider presets, PKCE, and the tokens that stand in for a password.

Plain code, no actors: the CLI runs the browser step once (see :mod:`futurnal.auth.oauth2_flow`)
and keeps the refresh token in the keyring; the mailbox connector then turns it into short-lived
access tokens with :class:`AccessTokens`, refreshing before they expire and once more when the
server rejects one. A refresh token the provider no longer honours raises :class:`ReauthRequired`,
which the connector reports as an authentication failure, so the mailbox waits for
``imap reauth`` instead of retrying in a loop.

``OAUTHLIB_INSECURE_TRANSPORT`` is never set here: real providers speak HTTPS, and only the
tests, whose provider runs on plain-HTTP loopback, set it for themselves.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from oauthlib.oauth2 import InsecureTransportError
from oauthlib.oauth2.rfc6749.errors import OAuth2Error as _OAuthlibError
from requests_oauthlib import OAuth2Session

from .secret_registry import SecretRegistry

__all__ = [
    "CLIENT_SECRET",
    "PRESETS",
    "REFRESH_TOKEN",
    "AccessTokens",
    "OAuth2Client",
    "OAuth2Error",
    "OAuth2Provider",
    "Pkce",
    "ReauthRequired",
    "TokenClient",
    "TokenEndpointUnavailable",
    "TokenSet",
    "custom_provider",
    "new_state",
]

#: Keyring kinds (see ``futurnal.storage.credentials``) of the two OAuth2 secrets.
REFRESH_TOKEN = "refresh-token"
CLIENT_SECRET = "client-secret"

#: Token-endpoint error codes that no retry can fix: the user has to sign in again.
_REAUTH_ERRORS = frozenset({
    "invalid_grant", "invalid_client", "unauthorized_client", "interaction_required", "consent_required",
    "login_required",
})


class OAuth2Error(Exception):
    """An OAuth2 step failed; the message says what, and what to do, in one line."""

    #: Whether trying again later can help (the provider was unreachable) or not.
    transient = False


class ReauthRequired(OAuth2Error):
    """The provider refused the refresh token or the client (revoked, expired, password changed)."""


class TokenEndpointUnavailable(OAuth2Error):
    """The token endpoint could not be reached or failed on its side; a later try may work."""

    transient = True


@dataclass(frozen=True, slots=True)
class OAuth2Provider:
    """Where to send the user and how to ask, for one kind of provider.

    Attributes:
        auth_params: Extra authorization-request parameters the provider needs to issue a
            refresh token (Google: ``access_type=offline`` and ``prompt=consent``).
        scope_on_refresh: Send the scopes again when refreshing; Microsoft's v2 endpoint
            otherwise answers with a token for its default scope, which IMAP refuses.
    """

    name: str
    auth_url: str
    token_url: str
    scopes: tuple[str, ...]
    imap_host: str | None = None
    imap_port: int = 993
    auth_params: tuple[tuple[str, str], ...] = ()
    scope_on_refresh: bool = False


GMAIL = OAuth2Provider(
    name="gmail",
    auth_url="https://accounts.google.com/o/oauth2/v2/auth",
    token_url="https://oauth2.googleapis.com/token",
    scopes=("https://mail.google.com/",),
    imap_host="imap.gmail.com",
    auth_params=(("access_type", "offline"), ("prompt", "consent")),
)

OFFICE365 = OAuth2Provider(
    name="office365",
    auth_url="https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
    token_url="https://login.microsoftonline.com/common/oauth2/v2.0/token",
    scopes=("https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"),
    imap_host="outlook.office365.com",
    scope_on_refresh=True,
)

PRESETS: Mapping[str, OAuth2Provider] = {p.name: p for p in (GMAIL, OFFICE365)}


def custom_provider(auth_url: str, token_url: str, scopes: tuple[str, ...]) -> OAuth2Provider:
    """Any other provider, from its endpoints and the scopes its IMAP server wants.

    OpenID Connect providers grant ``offline_access`` (and so a refresh token) only when asked
    with ``prompt=consent``; without it they drop the scope silently.
    """
    for label, url in (("authorization URL", auth_url), ("token URL", token_url)):
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise OAuth2Error(f"the {label} {url!r} is not an absolute https:// URL")
    if not scopes:
        raise OAuth2Error("a custom provider needs at least one scope (--scope)")
    params = (("prompt", "consent"),) if "offline_access" in scopes else ()
    return OAuth2Provider("custom", auth_url, token_url, tuple(scopes), auth_params=params)


@dataclass(frozen=True, slots=True)
class OAuth2Client:
    """One registered mailbox's OAuth2 settings: none of them secret.

    They live in the registry record's ``extra["oauth2"]``; the refresh token and the client
    secret (when there is one) live in the keyring.
    """

    provider: OAuth2Provider
    client_id: str
    has_client_secret: bool = False

    def to_extra(self) -> dict[str, Any]:
        p = self.provider
        return {"oauth2": {
            "provider": p.name, "client_id": self.client_id, "auth_url": p.auth_url, "token_url": p.token_url,
            "scopes": list(p.scopes), "client_secret": self.has_client_secret,
        }}

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> OAuth2Client:
        """Rebuild from a record; a preset's behaviour (extra parameters, refresh rules) comes from code."""
        doc = extra.get("oauth2")
        if not isinstance(doc, Mapping) or not doc.get("client_id") or not doc.get("token_url"):
            raise OAuth2Error("the mailbox is registered for OAuth2 but its settings are missing; add it again")
        scopes = tuple(doc.get("scopes") or ())
        preset = PRESETS.get(str(doc.get("provider")))
        if preset is not None:
            provider = OAuth2Provider(
                preset.name, doc.get("auth_url") or preset.auth_url, doc["token_url"], scopes or preset.scopes,
                preset.imap_host, preset.imap_port, preset.auth_params, preset.scope_on_refresh,
            )
        else:
            provider = custom_provider(doc.get("auth_url") or "", doc["token_url"], scopes)
        return cls(provider, str(doc["client_id"]), bool(doc.get("client_secret")))


@dataclass(frozen=True, slots=True)
class Pkce:
    """Proof Key for Code Exchange (RFC 7636, S256): ties the code to this very process.

    Whoever intercepts the authorization code (another app on the loopback port, a browser
    extension) cannot redeem it without the verifier, which never leaves this process.
    """

    verifier: str
    method: str = field(default="S256", init=False)

    @classmethod
    def generate(cls) -> Pkce:
        return cls(secrets.token_urlsafe(64))  # 86 characters of [A-Za-z0-9_-], within 43..128

    @property
    def challenge(self) -> str:
        return s256_challenge(self.verifier)


def s256_challenge(verifier: str) -> str:
    """``BASE64URL(SHA256(verifier))`` without padding (RFC 7636 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_state() -> str:
    """An unguessable ``state``: the callback accepts only the answer to our own request."""
    return secrets.token_urlsafe(32)


def authorization_url(client: OAuth2Client, redirect_uri: str, state: str, pkce: Pkce) -> str:
    """The URL the user's browser opens to sign in and consent."""
    session = OAuth2Session(client.client_id, redirect_uri=redirect_uri, scope=list(client.provider.scopes))
    url, _ = session.authorization_url(
        client.provider.auth_url, state=state, code_challenge=pkce.challenge,
        code_challenge_method=pkce.method, **dict(client.provider.auth_params),
    )
    return str(url)


@dataclass(frozen=True, slots=True)
class TokenSet:
    """What the token endpoint answered. ``expires_at`` is epoch seconds, None when not given."""

    access_token: str
    refresh_token: str | None
    expires_at: float | None

    def expires_within(self, margin: float, now: float) -> bool:
        """True when the token is expired or will be within ``margin`` seconds.

        Refreshing a little early keeps a token from expiring between the check and the IMAP
        login, or in the middle of a long sync's reconnect.
        """
        return self.expires_at is not None and now >= self.expires_at - margin

    @classmethod
    def from_response(cls, token: Mapping[str, Any], now: float, *, secret_registry: SecretRegistry) -> TokenSet:
        access = token.get("access_token")
        if not access:
            raise OAuth2Error("the token endpoint answered without an access token")
        expires_in = token.get("expires_in")
        expires_at = now + float(expires_in) if expires_in not in (None, "") else None
        refresh = token.get("refresh_token") or None
        for secret in (access, refresh):
            secret_registry.add_secret(secret)
        return cls(str(access), refresh and str(refresh), expires_at)


class TokenClient:
    """Talks to one provider's token endpoint on behalf of one client.

    A confidential client (one with a secret) authenticates by HTTP Basic for both the code
    exchange and refreshes; a public client sends its id in the body. Mixing the two confuses
    providers that accept only one method per client. The client secret, the code and every token
    are registered with ``secret_registry`` as soon as they are in hand.
    """

    def __init__(
        self, client: OAuth2Client, client_secret: str | None = None, *, secret_registry: SecretRegistry,
        timeout: float = 30.0, clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._secret = client_secret
        self._secret_registry = secret_registry
        self._timeout = timeout
        self._clock = clock
        secret_registry.add_secret(client_secret)

    def exchange(self, code: str, pkce: Pkce, redirect_uri: str) -> TokenSet:
        """Redeem an authorization code (with its PKCE verifier) for tokens."""
        self._secret_registry.add_secret(code)
        session = self._session(redirect_uri, self._client.provider.scopes)
        return self._call("exchanging the authorization code", lambda: session.fetch_token(
            self._client.provider.token_url, code=code, code_verifier=pkce.verifier, timeout=self._timeout,
            **self._credentials(),
        ))

    def refresh(self, refresh_token: str) -> TokenSet:
        """A new access token (and, from providers that rotate them, a new refresh token)."""
        provider = self._client.provider
        # Left out, the scope means "what was granted" (RFC 6749 6); Microsoft wants it anyway.
        session = self._session(None, provider.scopes if provider.scope_on_refresh else None)
        extra: dict[str, Any] = {}
        if self._secret is not None:
            extra["auth"] = requests.auth.HTTPBasicAuth(self._client.client_id, self._secret)
        else:
            extra["client_id"] = self._client.client_id
        token = self._call("refreshing the access token", lambda: session.refresh_token(
            provider.token_url, refresh_token=refresh_token, timeout=self._timeout, **extra,
        ))
        # Most providers keep the refresh token unchanged and do not repeat it.
        return token if token.refresh_token else TokenSet(token.access_token, refresh_token, token.expires_at)

    def _credentials(self) -> dict[str, Any]:
        if self._secret is not None:
            return {"client_secret": self._secret}  # sent by HTTP Basic
        return {"include_client_id": True}

    def _session(self, redirect_uri: str | None, scopes: tuple[str, ...] | None) -> OAuth2Session:
        session = OAuth2Session(
            self._client.client_id, redirect_uri=redirect_uri, scope=list(scopes) if scopes else None
        )
        for hook in ("access_token_response", "refresh_token_response"):
            session.register_compliance_hook(hook, _refuse_server_failures)
        return session

    def _call(self, what: str, call: Callable[[], dict[str, Any]]) -> TokenSet:
        url = self._client.provider.token_url
        host = urlsplit(url).netloc
        token: Mapping[str, Any] | None
        try:
            token = call()
        except Warning as changed:  # oauthlib: "Scope has changed"; the answer is still a token
            token = getattr(changed, "token", None)
        except InsecureTransportError:
            raise OAuth2Error(f"the token URL {url} is not https://; refusing to send secrets in clear") from None
        except _OAuthlibError as exc:
            detail = f"{exc.error}" + (f": {exc.description}" if exc.description else "")
            if exc.error in _REAUTH_ERRORS:
                raise ReauthRequired(f"{host} refused {what} ({detail})") from None
            if exc.error == "temporarily_unavailable":
                raise TokenEndpointUnavailable(f"{host} is temporarily unavailable ({what})") from None
            raise OAuth2Error(f"{what} at {host} failed ({detail})") from None
        except requests.RequestException as exc:
            raise TokenEndpointUnavailable(f"cannot reach the token endpoint {host}: {type(exc).__name__}") from None
        if token is None:
            raise OAuth2Error(f"{what} at {host} failed: the answer held no token")
        return TokenSet.from_response(token, self._clock(), secret_registry=self._secret_registry)


def _refuse_server_failures(response: requests.Response) -> requests.Response:
    """A 5xx page is not an OAuth answer: report the provider as unavailable, not the token as bad."""
    if response.status_code >= 500:
        raise TokenEndpointUnavailable(
            f"the token endpoint {urlsplit(response.url).netloc} failed (HTTP {response.status_code}); try again later"
        )
    return response


class AccessTokens:
    """A mailbox's current access token, in memory only, refreshed from the stored refresh token.

    Shared by every connection of the mailbox (the fetcher and its watchers), hence the lock:
    two refreshes at once would waste a round trip, and with a provider that rotates refresh
    tokens the second would present a spent one and lose the grant.
    """

    def __init__(
        self,
        client: TokenClient,
        load_refresh_token: Callable[[], str | None],
        save_refresh_token: Callable[[str], None],
        *,
        secret_registry: SecretRegistry,
        margin: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._load = load_refresh_token
        self._save = save_refresh_token
        self._secret_registry = secret_registry
        self._margin = margin
        self._clock = clock
        self._lock = threading.Lock()
        self._current: TokenSet | None = None
        self.refreshes = 0

    @property
    def current(self) -> TokenSet | None:
        """The token in hand, without refreshing it (None before the first :meth:`get`)."""
        return self._current

    def get(self) -> str:
        """An access token that will not expire within the margin."""
        with self._lock:
            if self._current is None or self._current.expires_within(self._margin, self._clock()):
                self._refresh_locked()
            assert self._current is not None
            return self._current.access_token

    def refreshed(self, rejected: str) -> str:
        """A new access token after the server rejected ``rejected`` (unless another thread already replaced it)."""
        with self._lock:
            if self._current is None or self._current.access_token == rejected:
                self._refresh_locked()
            assert self._current is not None
            return self._current.access_token

    def _refresh_locked(self) -> None:
        stored = self._load()
        if not stored:
            raise ReauthRequired("no refresh token is stored for this mailbox")
        self._secret_registry.add_secret(stored)
        token = self._client.refresh(stored)
        if token.refresh_token and token.refresh_token != stored:
            self._save(token.refresh_token)  # rotated: the old one is spent
        self._current = token
        self.refreshes += 1
