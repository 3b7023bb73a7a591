"""OAuth2 end to end: a real provider (npm ``oidc-provider``) and a real Dovecot, all on 127.0.0.1.

The provider shows real login and consent pages (driven by ``oauth_browser.py`` as ``$BROWSER``),
requires PKCE, rotates refresh tokens and revokes them; Dovecot checks every XOAUTH2 /
OAUTHBEARER login by asking the provider (token introspection). Nothing is mocked.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from keyrings.alt.file import PlaintextKeyring

from futurnal.auth.oauth2 import CLIENT_SECRET
from futurnal.demo.dovecot import DovecotOptions, DovecotServer, OAuth2Passdb
from futurnal.imap.connector import MailboxConnector
from futurnal.imap.errors import AuthenticationFailed
from futurnal.imap.session import ConnectionSettings, ImapSession
from futurnal.logs.configure import redactor
from futurnal.storage.credentials import SECRET_KINDS, SERVICE, CredentialStore
from futurnal.storage.registry import MailboxRecord

from ..servers.oauth_provider import OAuthClient, OAuthProviderServer, OAuthProviderUnavailable, ProviderConfig
from .cli import Cli, Result

EMAIL, PASSWORD = "alice@example.org", "alice-signs-in-here"
PUBLIC = OAuthClient("futurnal-desktop")
CONFIDENTIAL = OAuthClient("futurnal-confidential", "client-secret-for-tests")
ACCESS_TOKEN_TTL = 3  # seconds: long enough for one login, short enough to watch it expire
SCOPES = "openid email offline_access imap"
BROWSER_SCRIPT = Path(__file__).with_name("oauth_browser.py")


def _skip_or_fail(reason: str) -> None:
    """As the Dovecot fixture does: skip on a developer's machine, fail on CI."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        threading.Event().wait(0.05)


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthProviderServer]:
    config = ProviderConfig(users={EMAIL: PASSWORD}, clients=(PUBLIC, CONFIDENTIAL), access_token_ttl=ACCESS_TOKEN_TTL)
    try:
        server = OAuthProviderServer(tmp_path_factory.mktemp("oauth-provider"), config)
    except OAuthProviderUnavailable as exc:
        _skip_or_fail(str(exc))
    with server:
        yield server


def _oauth_dovecot(factory: Callable[..., DovecotServer], provider: OAuthProviderServer,
                   mechanisms: str = "xoauth2 oauthbearer") -> DovecotServer:
    passdb = OAuth2Passdb(
        introspection_url=provider.introspection_url_with_credentials,
        openid_configuration_url=provider.url("/.well-known/openid-configuration"),
        scope="imap", mechanisms=mechanisms,
    )
    server = factory(DovecotOptions(oauth2=passdb))
    server.start()
    for n in range(3):
        server.deliver("alice", _message(n))
    return server


@pytest.fixture
def mail_server(dovecot_factory: Callable[..., DovecotServer], provider: OAuthProviderServer) -> DovecotServer:
    """Dovecot with alice's three messages, taking bearer tokens checked by the provider."""
    return _oauth_dovecot(dovecot_factory, provider)


class BrowserPlan:
    """What the scripted browser will do next, and what it saw."""

    def __init__(self, root: Path) -> None:
        self.plan_path = root / "browser-plan.json"
        self.log_path = root / "browser-log.jsonl"
        self.command = root / "browser"
        self.command.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{BROWSER_SCRIPT}" "$@"\n', encoding="utf-8")
        self.command.chmod(0o755)
        self.set()

    def set(self, *, state: str = "keep", wrong_password_first: bool = False) -> None:
        self.log_path.unlink(missing_ok=True)
        self.plan_path.write_text(json.dumps({
            "login": EMAIL, "password": PASSWORD, "wrong_password_first": wrong_password_first,
            "state": state, "log": str(self.log_path),
        }), encoding="utf-8")

    def seen(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def browser(tmp_path: Path) -> BrowserPlan:
    return BrowserPlan(tmp_path)


@pytest.fixture
def cli(tmp_path: Path, browser: BrowserPlan) -> Cli:
    cli = Cli(tmp_path / "cli")
    cli.env.update({
        "BROWSER": str(browser.command),
        "FUTURNAL_TEST_BROWSER_PLAN": str(browser.plan_path),
        "OAUTHLIB_INSECURE_TRANSPORT": "1",  # the test provider speaks plain HTTP on loopback
        "DISPLAY": "", "WAYLAND_DISPLAY": "",
    })
    return cli


def _message(n: int) -> bytes:
    return (
        f"From: Bob <bob@example.org>\r\nTo: Alice <{EMAIL}>\r\nSubject: OAuth2 message {n}\r\n"
        f"Date: Mon, 01 Jan 2024 10:{n:02d}:00 +0000\r\nMessage-ID: <oauth2-{n}@example.org>\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\nBody of message {n}.\r\n"
    ).encode()


def _add(cli: Cli, provider: OAuthProviderServer, server: DovecotServer, *extra: str,
         client: OAuthClient = PUBLIC, stdin: str | None = None) -> Result:
    return cli(
        "imap", "add", "--email", EMAIL, "--provider", "custom", "--auth-url", provider.url("/auth"),
        "--token-url", provider.url("/token"), "--scope", SCOPES, "--client-id", client.client_id,
        "--host", server.host, "--port", str(server.imaps_port), "--cafile", str(server.cert_path),
        "--id", "alice", "--consent", "--auth-timeout", "60", *extra, stdin=stdin,
    )


def _keyring(cli: Cli) -> PlaintextKeyring:
    """The test's keyring file, which the CLI found through PYTHON_KEYRING_BACKEND and XDG_DATA_HOME."""
    found = list(cli.home.rglob("keyring_pass.cfg"))
    assert len(found) == 1, f"expected one keyring file under {cli.home}, found {found}"
    backend = PlaintextKeyring()
    backend.file_path = str(found[0])  # type: ignore[misc]
    return backend


def _refresh_token(cli: Cli) -> str:
    token = _keyring(cli).get_password(SERVICE, "alice/refresh-token")
    assert token
    return token


def _files_containing(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_oauth2_mailbox_is_added_through_the_real_pages_synced_and_recovered_by_reauth_after_revocation(
    cli: Cli, browser: BrowserPlan, provider: OAuthProviderServer, mail_server: DovecotServer
) -> None:
    browser.set(wrong_password_first=True)
    added = _add(cli, provider, mail_server)
    assert added.code == 0, added.err + provider.log_tail()
    assert provider.url("/auth?") in added.err  # the URL is printed for machines without a browser
    pages = browser.seen()
    assert [(p["title"], p["status"]) for p in pages] == [
        ("Sign in", 200), ("Sign in", 401), ("Allow access", 200), ("Signed in", 200)
    ], pages
    assert "Wrong e-mail address or password." in pages[1]["text"]
    assert {"imap", "offline_access"} <= set(pages[2]["text"])  # the scopes the consent page listed

    record = cli("imap", "list", "--json").json()[0]
    assert record["auth"] == "oauth2" and record["extra"]["oauth2"]["client_id"] == PUBLIC.client_id
    refresh_token = _refresh_token(cli)
    assert _files_containing(cli.data_dir, refresh_token) == []
    assert refresh_token not in added.out + added.err

    synced = cli("imap", "sync", "alice", "--json")
    assert synced.code == 0, synced.err
    assert synced.json()["fetched"] == 3
    assert cli("imap", "status", "alice", "--json").json()["state"] == "ok"

    provider.revoke(_refresh_token(cli), PUBLIC)  # the user removed the app's access at the provider
    failed = cli("imap", "sync", "alice", "--json")
    assert failed.code == 1
    status = cli("imap", "status", "alice", "--json").json()
    assert status["state"] == "needs-reauth", status
    assert "invalid_grant" in status["needs_reauth"]["reason"]
    assert "imap reauth alice" in status["needs_reauth"]["reason"]

    browser.set()
    reauth = cli("imap", "reauth", "alice")
    assert reauth.code == 0, reauth.err
    assert cli("imap", "status", "alice", "--json").json()["state"] == "ok"
    mail_server.deliver("alice", _message(3))
    again = cli("imap", "sync", "alice", "--json")
    assert again.code == 0, again.err
    assert again.json()["fetched"] == 1
    assert len(cli("elements", "export", "--mailbox", "alice").lines()) == 4


@pytest.mark.parametrize("state", ["forged", "missing"])
def test_a_callback_without_our_state_is_rejected_and_nothing_is_registered(
    cli: Cli, browser: BrowserPlan, provider: OAuthProviderServer, mail_server: DovecotServer, state: str
) -> None:
    browser.set(state=state)
    added = _add(cli, provider, mail_server)
    assert added.code == 1
    assert "state" in added.err and "rejected" in added.err and "Traceback" not in added.err
    callback = browser.seen()[-1]
    assert (callback["title"], callback["status"]) == ("Sign-in rejected", 400)
    assert cli("imap", "list", "--json").json() == []
    assert not list(cli.home.rglob("keyring_pass.cfg")) or _keyring(cli).get_password(SERVICE, "alice/refresh-token") is None


def test_expired_access_token_is_refreshed_before_login_and_a_refused_one_once_after(
    cli: Cli, provider: OAuthProviderServer, mail_server: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _add(cli, provider, mail_server).code == 0
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    record = MailboxRecord.from_document(cli("imap", "list", "--json").json()[0])
    now = [time.time()]
    connector = MailboxConnector(record, CredentialStore(_keyring(cli)), secret_registry=redactor, connect_timeout=10,
                                 read_timeout=10, refresh_margin=1.0, clock=lambda: now[0])

    connector().close()  # no token in memory yet: one refresh, one login
    tokens = connector.oauth2_tokens
    assert tokens is not None and tokens.refreshes == 1 and tokens.current is not None
    first = tokens.current.access_token

    # The provider lets the token expire while the frozen clock says it is fresh: the server
    # refuses it, and the connector refreshes once and logs in with the new one.
    _wait_until(lambda: not provider.introspect(first)["active"], 2 * ACCESS_TOKEN_TTL + 5, "the token to expire")
    with pytest.raises(AuthenticationFailed, match="rejected the OAuth2 token") as refused:
        ImapSession(ConnectionSettings.for_mailbox(record, 10, 10)).connect_oauth2(first)
    assert first not in str(refused.value)
    connector().close()
    assert tokens.refreshes == 2 and tokens.current.access_token != first

    # The clock passes the expiry (minus the margin): refreshed before the login, although the
    # provider would still have taken the old token.
    second = tokens.current.access_token
    assert provider.introspect(second)["active"]
    now[0] = tokens.current.expires_at or 0
    session = connector()
    assert tokens.refreshes == 3 and tokens.current.access_token != second
    assert session.mechanism == "XOAUTH2"
    session.close()


def test_oauthbearer_is_used_where_xoauth2_is_not_offered(
    cli: Cli, provider: OAuthProviderServer, dovecot_factory: Callable[..., DovecotServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = _oauth_dovecot(dovecot_factory, provider, mechanisms="oauthbearer")
    assert (added := _add(cli, provider, server)).code == 0, added.err
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    record = MailboxRecord.from_document(cli("imap", "list", "--json").json()[0])
    session = MailboxConnector(record, CredentialStore(_keyring(cli)), secret_registry=redactor, connect_timeout=10,
                               read_timeout=10)()
    try:
        assert session.mechanism == "OAUTHBEARER"
        assert session.select("INBOX").exists == 3
    finally:
        session.close()


@pytest.mark.skipif(CLIENT_SECRET not in SECRET_KINDS, reason="storage.credentials has no 'client-secret' kind yet")
def test_a_confidential_client_keeps_its_secret_in_the_keyring_and_authenticates_with_it(
    cli: Cli, provider: OAuthProviderServer, mail_server: DovecotServer
) -> None:
    added = _add(cli, provider, mail_server, "--client-secret-stdin", client=CONFIDENTIAL,
                 stdin=f"{CONFIDENTIAL.secret}\n")
    assert added.code == 0, added.err
    assert _keyring(cli).get_password(SERVICE, "alice/client-secret") == CONFIDENTIAL.secret
    assert _files_containing(cli.data_dir, CONFIDENTIAL.secret or "") == []
    synced = cli("imap", "sync", "alice", "--json")  # refreshes with the secret (HTTP Basic)
    assert synced.code == 0, synced.err
    assert synced.json()["fetched"] == 3


def test_an_imported_record_signs_in_in_the_browser_with_its_client_secret_from_a_file(
    cli: Cli, browser: BrowserPlan, provider: OAuthProviderServer, mail_server: DovecotServer, tmp_path: Path
) -> None:
    """``imap import`` takes an OAuth2 record through ``imap add``'s sign-in; the client secret comes
    from a file only its owner can read, never from the import file."""
    secret = tmp_path / "client-secret"
    secret.write_text(f"{CONFIDENTIAL.secret}\n")
    secret.chmod(0o600)
    record = {"email": EMAIL, "id": "alice", "provider": "custom", "auth_url": provider.url("/auth"),
              "token_url": provider.url("/token"), "scope": SCOPES, "client_id": CONFIDENTIAL.client_id,
              "host": mail_server.host, "port": mail_server.imaps_port, "cafile": str(mail_server.cert_path),
              "auth_timeout": 60, "consent": True, "client_secret_file": str(secret)}
    path = tmp_path / "mailboxes.jsonl"
    path.write_text(json.dumps(record) + "\n")
    imported = cli("imap", "import", str(path), "--json")
    assert imported.code == 0, imported.err + provider.log_tail()
    assert imported.json()["records"][0]["mailbox"]["auth"] == "oauth2"
    assert [p["title"] for p in browser.seen()] == ["Sign in", "Allow access", "Signed in"]
    assert _keyring(cli).get_password(SERVICE, "alice/client-secret") == CONFIDENTIAL.secret
    assert _refresh_token(cli) not in imported.out + imported.err
    synced = cli("imap", "sync", "alice", "--json")
    assert synced.code == 0, synced.err
    assert synced.json()["fetched"] == 3
