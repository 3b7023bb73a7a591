"""A real OAuth2 / OpenID Connect provider on 127.0.0.1 (npm ``oidc-provider``), for end-to-end tests.

The server itself is ``tests/oauth_provider/server.js``; ``bin/install-oauth-provider`` puts its
pinned dependencies in ``tests/oauth_provider/node_modules``. :class:`OAuthProviderServer` writes
its configuration (users, clients, token lifetimes), starts it on a free port and stops it.

It enforces what a real provider does: PKCE on every authorization, a password check on its login
page, a consent page, refresh tokens only when ``offline_access`` was granted (with
``prompt=consent``), rotation of a public client's refresh tokens, revocation, and RFC 7662
introspection for the IMAP server (Dovecot's ``oauth2`` passdb), restricted to access tokens.
"""

from __future__ import annotations

import json
import queue
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from futurnal.demo.server_process import NeverReady, ServerProcess

PROVIDER_DIR = Path(__file__).resolve().parents[1] / "oauth_provider"
INSTALL_SCRIPT = "bin/install-oauth-provider"
CALLBACK = "http://127.0.0.1/oauth2callback"  # native clients: any loopback port is accepted (RFC 8252 7.3)


class OAuthProviderUnavailable(RuntimeError):
    """Node.js or the provider's npm packages are missing, so callers can skip instead of crash."""


@dataclass(frozen=True)
class OAuthClient:
    """One registered application: public (no secret, PKCE only) unless it has a secret."""

    client_id: str
    secret: str | None = None

    def metadata(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "application_type": "native",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "redirect_uris": [CALLBACK],
            **({"client_secret": self.secret, "token_endpoint_auth_method": "client_secret_basic"}
               if self.secret else {"token_endpoint_auth_method": "none"}),
        }


@dataclass(frozen=True)
class ProviderConfig:
    """Who may sign in, which apps exist, and how long access tokens live.

    Attributes:
        introspector: The (id, secret) of the client the IMAP server uses to introspect tokens.
    """

    users: Mapping[str, str]
    clients: Sequence[OAuthClient]
    introspector: tuple[str, str] = ("dovecot", "dovecot-introspection-secret")
    access_token_ttl: int = 60

    def document(self) -> dict[str, Any]:
        introspector_id, introspector_secret = self.introspector
        return {
            "users": dict(self.users),
            "clients": [c.metadata() for c in self.clients] + [
                {"client_id": introspector_id, "client_secret": introspector_secret,
                 "grant_types": [], "response_types": [], "redirect_uris": []},
            ],
            "introspectors": [introspector_id],
            "access_token_ttl": self.access_token_ttl,
        }


class OAuthProviderServer(ServerProcess):
    """One ``node server.js`` process; its config and log live in ``root``."""

    def __init__(self, root: Path, config: ProviderConfig) -> None:
        """Raises OAuthProviderUnavailable when Node.js or the installed packages are missing."""
        self._node = shutil.which("node")
        if self._node is None:
            raise OAuthProviderUnavailable(f"Node.js is not installed, so the test OAuth2 provider cannot run: "
                                           f"install Node.js 20+ and npm, then run `{INSTALL_SCRIPT}`")
        if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
            raise OAuthProviderUnavailable(f"the test OAuth2 provider is not installed: run `{INSTALL_SCRIPT}`")
        self.root = root
        self.config = config
        self.issuer = ""

    def start(self, timeout: float = 20.0) -> None:
        """Start and wait for its ready line; raises RuntimeError with its log if it does not come."""
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "provider.json"
        config.write_text(json.dumps(self.config.document()), encoding="utf-8")
        config.chmod(0o600)
        proc = self._launch([self._node or "node", str(PROVIDER_DIR / "server.js"), str(config)],
                            self.root / "provider.log", pipe_stdout=True, cwd=PROVIDER_DIR)
        stdout = proc.stdout
        assert stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()

        def announced(deadline: float) -> str | None:
            """Its first line on stdout is a JSON object naming the issuer, once it listens."""
            try:
                line = lines.get(timeout=max(0.0, min(0.05, deadline - time.monotonic())))
            except queue.Empty:
                return "did not announce itself"
            try:
                ready = json.loads(line or "null")
            except ValueError:
                ready = None
            if not isinstance(ready, dict) or "issuer" not in ready:
                raise NeverReady(f"announced itself with {line[:200]!r}")
            self.issuer = ready["issuer"]
            return None

        problem = self._wait_ready(announced, timeout, interval=0)
        if problem is not None:
            self.stop()
            raise RuntimeError(f"the test OAuth2 provider did not start: it {problem}; "
                               f"its log:\n{self.log_tail()}")

    def url(self, path: str) -> str:
        return f"{self.issuer}{path}"

    @property
    def introspection_url_with_credentials(self) -> str:
        """What Dovecot's oauth2 passdb is given: the introspecting client's credentials in the URL."""
        client, secret = self.config.introspector
        return self.issuer.replace("http://", f"http://{client}:{secret}@") + "/token/introspection"

    def introspect(self, token: str) -> dict[str, Any]:
        """Ask the provider about an access token, as Dovecot does."""
        answer = requests.post(self.url("/token/introspection"), data={"token": token},
                               auth=self.config.introspector, timeout=10)
        answer.raise_for_status()
        return dict(answer.json())

    def revoke(self, token: str, client: OAuthClient) -> None:
        """Revoke a token as its client (RFC 7009); a refresh token takes its whole grant with it."""
        auth = (client.client_id, client.secret) if client.secret else None
        data = {"token": token, **({} if client.secret else {"client_id": client.client_id})}
        answer = requests.post(self.url("/token/revocation"), data=data, auth=auth, timeout=10)
        answer.raise_for_status()

    def log_tail(self, lines: int = 30) -> str:
        path = self.root / "provider.log"
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
