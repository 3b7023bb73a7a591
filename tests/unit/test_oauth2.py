"""OAuth2's pure parts: PKCE, state, presets, expiry, token bookkeeping, the loopback callback.

The callback server and the token-endpoint error mapping are exercised over real HTTP on
127.0.0.1 (a stub endpoint, not a provider); the whole flow against a real provider and
Dovecot is in tests/integration/test_oauth2.py.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from futurnal.auth.oauth2 import (
    PRESETS,
    AccessTokens,
    OAuth2Client,
    OAuth2Error,
    Pkce,
    ReauthRequired,
    TokenClient,
    TokenEndpointUnavailable,
    TokenSet,
    authorization_url,
    custom_provider,
    new_state,
    s256_challenge,
)
from futurnal.auth.oauth2_flow import AuthorizationDenied, AuthorizationTimedOut, LoopbackCallback, StateMismatch
from futurnal.cli.main import build_parser
from futurnal.cli.oauth2_commands import client_from_args
from futurnal.cli.output import UserError
from futurnal.logs.configure import redactor

# --- PKCE and state ---------------------------------------------------------------------------


def test_s256_challenge_matches_the_rfc_7636_example() -> None:
    assert s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_generated_verifiers_are_long_unreserved_and_never_repeat() -> None:
    verifiers = {Pkce.generate().verifier for _ in range(50)}
    assert len(verifiers) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", v) for v in verifiers)


def test_pkce_method_is_s256_and_challenge_is_derived_from_the_verifier() -> None:
    pkce = Pkce.generate()
    assert pkce.method == "S256"
    assert pkce.challenge == s256_challenge(pkce.verifier) != pkce.verifier


def test_states_are_unguessable_and_unique() -> None:
    states = {new_state() for _ in range(50)}
    assert len(states) == 50 and all(len(s) >= 40 for s in states)


def test_authorization_url_carries_state_challenge_redirect_and_the_gmail_offline_parameters() -> None:
    pkce = Pkce.generate()
    url = authorization_url(OAuth2Client(PRESETS["gmail"], "app-id"), "http://127.0.0.1:5000/oauth2callback",
                            "the-state", pkce)
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://accounts.google.com/o/oauth2/v2/auth"
    assert query == {
        "response_type": "code", "client_id": "app-id", "redirect_uri": "http://127.0.0.1:5000/oauth2callback",
        "scope": "https://mail.google.com/", "state": "the-state", "code_challenge": pkce.challenge,
        "code_challenge_method": "S256", "access_type": "offline", "prompt": "consent",
    }
    assert pkce.verifier not in url


# --- presets and settings ---------------------------------------------------------------------


def test_gmail_preset_asks_for_full_mail_access_on_imap_gmail_com() -> None:
    gmail = PRESETS["gmail"]
    assert (gmail.scopes, gmail.imap_host, gmail.imap_port) == (("https://mail.google.com/",), "imap.gmail.com", 993)
    assert not gmail.scope_on_refresh


def test_office365_preset_asks_for_imap_and_offline_access_and_repeats_the_scope_on_refresh() -> None:
    o365 = PRESETS["office365"]
    assert o365.scopes == ("https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access")
    assert (o365.imap_host, o365.imap_port, o365.scope_on_refresh) == ("outlook.office365.com", 993, True)


def test_custom_provider_asks_for_consent_only_when_it_wants_offline_access() -> None:
    offline = custom_provider("https://id.example/auth", "https://id.example/token", ("imap", "offline_access"))
    online = custom_provider("https://id.example/auth", "https://id.example/token", ("imap",))
    assert offline.auth_params == (("prompt", "consent"),) and online.auth_params == ()


@pytest.mark.parametrize(("auth_url", "token_url", "scopes"), [
    ("/auth", "https://id.example/token", ("imap",)),
    ("https://id.example/auth", "ftp://id.example/token", ("imap",)),
    ("https://id.example/auth", "https://id.example/token", ()),
])
def test_custom_provider_refuses_relative_urls_other_schemes_and_no_scopes(
    auth_url: str, token_url: str, scopes: tuple[str, ...]
) -> None:
    with pytest.raises(OAuth2Error):
        custom_provider(auth_url, token_url, scopes)


def test_client_settings_survive_the_registry_record_and_hold_no_secret() -> None:
    client = OAuth2Client(custom_provider("https://id.example/a", "https://id.example/t", ("imap", "offline_access")),
                          "cid", has_client_secret=True)
    extra = json.loads(json.dumps(client.to_extra()))  # as TinyDB stores it
    assert OAuth2Client.from_extra(extra) == client
    assert set(extra["oauth2"]) == {"provider", "client_id", "auth_url", "token_url", "scopes", "client_secret"}
    assert extra["oauth2"]["client_secret"] is True


def test_a_preset_record_takes_its_behaviour_from_the_code() -> None:
    extra = OAuth2Client(PRESETS["office365"], "cid").to_extra()
    assert OAuth2Client.from_extra(extra).provider == PRESETS["office365"]


def test_a_record_without_oauth2_settings_is_refused_with_advice() -> None:
    with pytest.raises(OAuth2Error, match="add it again"):
        OAuth2Client.from_extra({})


# --- expiry -----------------------------------------------------------------------------------


def test_a_token_counts_as_expiring_within_the_margin_before_its_expiry() -> None:
    token = TokenSet("at", "rt", expires_at=1000.0)
    assert not token.expires_within(60, now=939.0)
    assert token.expires_within(60, now=940.0)
    assert token.expires_within(0, now=1000.0)


def test_a_token_without_expiry_is_used_until_the_server_refuses_it() -> None:
    assert not TokenSet("at", "rt", expires_at=None).expires_within(60, now=1e12)


def test_token_responses_are_read_relative_to_now_and_their_secrets_redacted() -> None:
    token = TokenSet.from_response({"access_token": "access-abc", "refresh_token": "refresh-xyz", "expires_in": 30}, 100.0,
                                   secret_registry=redactor)
    assert token == TokenSet("access-abc", "refresh-xyz", 130.0)
    assert redactor.redact("got access-abc and refresh-xyz") == "got [secret] and [secret]"


def test_a_token_response_without_an_access_token_is_an_error() -> None:
    with pytest.raises(OAuth2Error):
        TokenSet.from_response({"token_type": "Bearer"}, 0.0, secret_registry=redactor)


# --- access tokens: refresh bookkeeping ---------------------------------------------------------


class _Endpoint:
    """Stands in for TokenClient.refresh: numbered tokens, optional rotation, optional refusal."""

    def __init__(self, *, rotate: bool = False, refuse: bool = False, lifetime: float = 100.0) -> None:
        self.calls: list[str] = []
        self.rotate, self.refuse, self.lifetime = rotate, refuse, lifetime
        self.now = 0.0

    def refresh(self, refresh_token: str) -> TokenSet:
        if self.refuse:
            raise ReauthRequired("invalid_grant")
        self.calls.append(refresh_token)
        n = len(self.calls)
        return TokenSet(f"access-{n}", f"refresh-{n}" if self.rotate else refresh_token, self.now + self.lifetime)


def _tokens(endpoint: _Endpoint, stored: list[str], margin: float = 10.0) -> AccessTokens:
    return AccessTokens(endpoint, lambda: stored[-1] if stored else None, stored.append,  # type: ignore[arg-type]
                        secret_registry=redactor, margin=margin, clock=lambda: endpoint.now)


def test_the_access_token_is_reused_until_the_margin_then_refreshed() -> None:
    endpoint, stored = _Endpoint(), ["refresh-0"]
    tokens = _tokens(endpoint, stored)
    assert tokens.get() == "access-1"
    endpoint.now = 89.0
    assert tokens.get() == "access-1"
    endpoint.now = 90.0
    assert tokens.get() == "access-2"
    assert endpoint.calls == ["refresh-0", "refresh-0"] and stored == ["refresh-0"]


def test_a_rotated_refresh_token_is_stored_and_used_next_time() -> None:
    endpoint, stored = _Endpoint(rotate=True), ["refresh-0"]
    tokens = _tokens(endpoint, stored)
    tokens.get()
    tokens.refreshed("access-1")
    assert endpoint.calls == ["refresh-0", "refresh-1"] and stored == ["refresh-0", "refresh-1", "refresh-2"]


def test_a_token_refused_by_two_connections_at_once_is_refreshed_once() -> None:
    endpoint, stored = _Endpoint(rotate=True), ["refresh-0"]
    tokens = _tokens(endpoint, stored)
    rejected = tokens.get()
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(tokens.refreshed(rejected))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == ["access-2"] * 4 and tokens.refreshes == 2


def test_no_stored_refresh_token_or_a_refused_one_requires_reauth() -> None:
    with pytest.raises(ReauthRequired):
        _tokens(_Endpoint(), []).get()
    with pytest.raises(ReauthRequired):
        _tokens(_Endpoint(refuse=True), ["refresh-0"]).get()


# --- the token endpoint's answers ---------------------------------------------------------------


@pytest.fixture
def token_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[str, list[tuple[int, dict[str, object]]], list[dict[str, str]]]]:
    """A stub token endpoint on 127.0.0.1 answering queued (status, JSON) pairs, recording requests."""
    answers: list[tuple[int, dict[str, object]]] = []
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            seen.append({"authorization": self.headers.get("Authorization", ""),
                         **{k: v[0] for k, v in parse_qs(body).items()}})
            status, answer = answers.pop(0)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the stub is plain HTTP
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token", answers, seen
    finally:
        server.shutdown()
        server.server_close()


def _client(token_url: str, *, scope_on_refresh: bool = False) -> OAuth2Client:
    provider = custom_provider("https://id.example/auth", token_url, ("imap", "offline_access"))
    if scope_on_refresh:
        from dataclasses import replace
        provider = replace(provider, scope_on_refresh=True)
    return OAuth2Client(provider, "cid")


def test_invalid_grant_on_refresh_requires_reauth(token_endpoint) -> None:  # type: ignore[no-untyped-def]
    url, answers, _ = token_endpoint
    answers.append((400, {"error": "invalid_grant", "error_description": "grant request is invalid"}))
    with pytest.raises(ReauthRequired, match="invalid_grant"):
        TokenClient(_client(url), secret_registry=redactor).refresh("spent-token")


def test_a_failing_token_endpoint_is_transient_not_a_reason_to_reauth(token_endpoint) -> None:  # type: ignore[no-untyped-def]
    url, answers, _ = token_endpoint
    answers.append((503, {}))
    with pytest.raises(TokenEndpointUnavailable) as caught:
        TokenClient(_client(url), secret_registry=redactor).refresh("rt")
    assert caught.value.transient


def test_an_unreachable_token_endpoint_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    with pytest.raises(TokenEndpointUnavailable):  # nothing listens on port 9 of loopback
        TokenClient(_client("http://127.0.0.1:9/token"), timeout=5, secret_registry=redactor).refresh("rt")


def test_plain_http_token_urls_are_refused_in_the_product(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT", raising=False)
    with pytest.raises(OAuth2Error, match="not https"):
        TokenClient(_client("http://id.example/token"), secret_registry=redactor).refresh("rt")


def test_a_public_client_refreshes_with_its_id_in_the_body_and_keeps_an_unrotated_token(token_endpoint) -> None:  # type: ignore[no-untyped-def]
    url, answers, seen = token_endpoint
    answers.append((200, {"access_token": "new-at", "token_type": "Bearer", "expires_in": 60}))
    token = TokenClient(_client(url), clock=lambda: 1000.0, secret_registry=redactor).refresh("the-rt")
    assert token == TokenSet("new-at", "the-rt", 1060.0)
    assert seen == [{"authorization": "", "grant_type": "refresh_token", "refresh_token": "the-rt", "client_id": "cid"}]


def test_a_confidential_client_refreshes_by_http_basic_and_office365_style_repeats_the_scope(token_endpoint) -> None:  # type: ignore[no-untyped-def]
    url, answers, seen = token_endpoint
    answers.append((200, {"access_token": "at", "token_type": "Bearer", "scope": "imap"}))  # fewer scopes than asked
    TokenClient(_client(url, scope_on_refresh=True), "the-secret", secret_registry=redactor).refresh("rt")
    assert seen[0]["authorization"].startswith("Basic ") and "client_id" not in seen[0]
    assert seen[0]["scope"] == "imap offline_access"


# --- the loopback callback --------------------------------------------------------------------


def _callback(callback: LoopbackCallback, query: str, path: str = "/oauth2callback") -> requests.Response:
    base = callback.redirect_uri.removesuffix("/oauth2callback")
    return requests.get(f"{base}{path}?{query}", timeout=10)


def test_the_callback_listens_on_loopback_on_a_free_port() -> None:
    with (LoopbackCallback("s", secret_registry=redactor) as first,
          LoopbackCallback("s", secret_registry=redactor) as second):
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/oauth2callback", first.redirect_uri)
        assert first.redirect_uri != second.redirect_uri


class _KeptSecrets(list[str | None]):
    """Records what is registered as a secret, in order."""

    def add_secret(self, secret: str | None) -> None:
        self.append(secret)


def test_the_callback_hands_over_the_code_when_the_state_is_ours_and_registers_it_as_a_secret() -> None:
    kept = _KeptSecrets()
    with LoopbackCallback("our-state", secret_registry=kept) as callback:
        page = _callback(callback, "code=the-code&state=our-state")
        assert page.status_code == 200 and "signed in" in page.text.lower()
        assert callback.wait(timeout=5) == "the-code"
    assert "the-code" in kept


@pytest.mark.parametrize("query", ["code=c&state=someone-elses", "code=c", "code=c&state="])
def test_the_callback_rejects_a_wrong_or_missing_state_in_the_page_and_to_the_caller(query: str) -> None:
    with LoopbackCallback("our-state", secret_registry=_KeptSecrets()) as callback:
        page = _callback(callback, query)
        assert page.status_code == 400 and "rejected" in page.text
        with pytest.raises(StateMismatch, match="rejected"):
            callback.wait(timeout=5)


def test_a_denial_with_our_state_is_reported_as_such() -> None:
    with LoopbackCallback("s", secret_registry=redactor) as callback:
        assert _callback(callback, "error=access_denied&error_description=no+thanks&state=s").status_code == 403
        with pytest.raises(AuthorizationDenied, match="access_denied: no thanks"):
            callback.wait(timeout=5)


def test_the_first_callback_decides_and_other_paths_change_nothing() -> None:
    with LoopbackCallback("s", secret_registry=redactor) as callback:
        assert _callback(callback, "", path="/favicon.ico").status_code == 404
        assert _callback(callback, "code=first&state=s").status_code == 200
        assert _callback(callback, "code=second&state=s").status_code == 409
        assert callback.wait(timeout=5) == "first"


def test_waiting_for_the_callback_times_out_cleanly() -> None:
    with (LoopbackCallback("s", secret_registry=redactor) as callback,
          pytest.raises(AuthorizationTimedOut, match="--auth-timeout")):
        callback.wait(timeout=0.2)


# --- command-line options -------------------------------------------------------------------


def _args(*argv: str):  # type: ignore[no-untyped-def]
    return build_parser().parse_args(["imap", "add", "--email", "me@example.org", *argv])


def test_a_provider_implies_oauth2_and_a_preset_brings_its_server() -> None:
    args = _args("--provider", "gmail", "--client-id", "cid")
    client = client_from_args(args)
    assert args.auth == "oauth2" and client is not None and client.provider.imap_host == "imap.gmail.com"


@pytest.mark.parametrize(("argv", "complaint"), [
    (("--auth", "oauth2", "--client-id", "c"), "needs --provider"),
    (("--provider", "gmail"), "needs --client-id"),
    (("--provider", "custom", "--client-id", "c", "--scope", "imap"), "--auth-url, --token-url, --host"),
    (("--provider", "gmail", "--client-id", "c", "--token-url", "https://x/t"), "only go with --provider custom"),
    (("--provider", "gmail", "--client-id", "c", "--password-stdin"), "no password"),
    (("--host", "h", "--client-id", "c"), "only go with --auth oauth2"),
])
def test_inconsistent_oauth2_options_are_refused_as_bad_usage(argv: tuple[str, ...], complaint: str) -> None:
    with pytest.raises(UserError, match=re.escape(complaint)) as caught:
        client_from_args(_args(*argv))
    assert caught.value.code == 2


def test_custom_scopes_may_be_repeated_or_space_separated() -> None:
    client = client_from_args(_args("--provider", "custom", "--client-id", "c", "--host", "h",
                                    "--auth-url", "https://id.example/a", "--token-url", "https://id.example/t",
                                    "--scope", "openid email", "--scope", "offline_access"))
    assert client is not None and client.provider.scopes == ("openid", "email", "offline_access")
