"""The browser step of OAuth2: a loopback callback server, the user's browser, the code exchange.

Desktop applications receive the authorization code on ``http://127.0.0.1:PORT/...`` (RFC 8252
7.3): no redirect URI has to be registered per port, and the code never leaves the machine. The
server here answers exactly one callback, checks its ``state`` against the one we sent (a
mismatch means the response is not the answer to our request: a forgery or a stale tab), and
gives up after a timeout instead of waiting forever on a closed browser tab.
"""

from __future__ import annotations

import hmac
import html
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from .oauth2 import OAuth2Client, OAuth2Error, Pkce, TokenClient, TokenSet, authorization_url, new_state
from .secret_registry import SecretRegistry

__all__ = [
    "AuthorizationDenied",
    "AuthorizationTimedOut",
    "LoopbackCallback",
    "StateMismatch",
    "run_authorization",
]

CALLBACK_PATH = "/oauth2callback"


class AuthorizationDenied(OAuth2Error):
    """The provider redirected back with an error (the user said no, or the request was bad)."""


class StateMismatch(OAuth2Error):
    """The callback's ``state`` was missing or not ours: it is not the answer to our request."""


class AuthorizationTimedOut(OAuth2Error):
    """Nobody came back from the browser in time."""


@dataclass(frozen=True, slots=True)
class _Outcome:
    code: str | None = None
    error: OAuth2Error | None = None


class LoopbackCallback:
    """A one-shot HTTP server on 127.0.0.1 (a free port) that waits for the provider's redirect.

    The first request to :data:`CALLBACK_PATH` decides the outcome, whatever it is; the browser
    page and :meth:`wait` say the same thing. Other paths (a favicon) get a 404 and change nothing.
    The code it receives is registered with ``secret_registry`` at once.
    """

    def __init__(self, expected_state: str, *, secret_registry: SecretRegistry) -> None:
        self._expected = expected_state
        self._secret_registry = secret_registry
        self._decided = threading.Event()
        self._outcome = _Outcome()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="oauth2-callback", daemon=True
        )
        self._thread.start()

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{CALLBACK_PATH}"

    def wait(self, timeout: float) -> str:
        """The authorization code, or the reason there is none."""
        if not self._decided.wait(timeout):
            raise AuthorizationTimedOut(
                f"no answer from the browser within {timeout:g} s; run the command again "
                "(--auth-timeout SECONDS waits longer)"
            )
        if self._outcome.error is not None:
            raise self._outcome.error
        assert self._outcome.code is not None
        return self._outcome.code

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackCallback:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _decide(self, query: dict[str, list[str]]) -> tuple[int, str, str]:
        """Settle the outcome from a callback's parameters; returns (HTTP status, title, text) for the page."""
        with self._lock:
            if self._decided.is_set():
                return 409, "Already finished", "This sign-in was already answered; you can close this window."
            outcome, page = _judge(query, self._expected)
            self._secret_registry.add_secret(outcome.code)
            self._outcome = outcome
            self._decided.set()
            return page


def _judge(query: dict[str, list[str]], expected_state: str) -> tuple[_Outcome, tuple[int, str, str]]:
    """The state is checked first: an error or a code with the wrong state is not ours to believe."""
    state = (query.get("state") or [""])[0]
    if not state or not hmac.compare_digest(state.encode(), expected_state.encode()):
        which = "no state" if not state else "a state that does not match the request"
        forged = StateMismatch(
            f"the browser came back with {which}: the answer was rejected as possibly forged; nothing was stored"
        )
        text = (f"This response carries {which}, so it was rejected: it may be forged. Nothing was stored; "
                "start again from the command line.")
        return _Outcome(error=forged), (400, "Sign-in rejected", text)
    if query.get("error"):
        reason = query["error"][0] + (f": {query['error_description'][0]}" if query.get("error_description") else "")
        error = AuthorizationDenied(f"the provider refused the authorization ({reason}); nothing was stored")
        return _Outcome(error=error), (403, "Sign-in refused", f"The provider refused: {reason}.")
    code = (query.get("code") or [""])[0]
    if not code:
        error = AuthorizationDenied("the provider came back without an authorization code; nothing was stored")
        return _Outcome(error=error), (400, "Sign-in failed", "The provider sent no authorization code.")
    return _Outcome(code=code), (200, "Signed in", "You are signed in. You can close this window and return to the terminal.")


def _handler_for(callback: LoopbackCallback) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != CALLBACK_PATH:
                self._page(404, "Not found", "Nothing here.")
                return
            self._page(*callback._decide(parse_qs(url.query)))

        def _page(self, status: int, title: str, text: str) -> None:
            body = (
                f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
                f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # request lines carry the authorization code

    return Handler


def run_authorization(
    client: OAuth2Client,
    client_secret: str | None,
    *,
    secret_registry: SecretRegistry,
    timeout: float,
    announce: Callable[[str], None],
    open_browser: Callable[[str], bool] = webbrowser.open,
) -> TokenSet:
    """The whole browser step: callback server, browser, wait, code exchange.

    ``announce`` gets the URL first, for a headless machine where no browser opens. The browser
    is started on a helper thread because ``webbrowser`` waits for console browsers (and for a
    ``$BROWSER`` command) to exit, and the timeout must hold regardless. The code and the tokens
    are registered with ``secret_registry``, so no log line shows them.
    """
    state, pkce = new_state(), Pkce.generate()
    with LoopbackCallback(state, secret_registry=secret_registry) as callback:
        url = authorization_url(client, callback.redirect_uri, state, pkce)
        announce(url)
        threading.Thread(target=_open_quietly, args=(open_browser, url), name="oauth2-browser", daemon=True).start()
        code = callback.wait(timeout)
    tokens = TokenClient(client, client_secret, secret_registry=secret_registry).exchange(
        code, pkce, callback.redirect_uri
    )
    if not tokens.refresh_token:
        raise OAuth2Error(
            "the provider issued no refresh token, so access would end within the hour; check that the "
            "scopes allow offline access (offline_access, or access_type=offline)"
        )
    return tokens


def _open_quietly(open_browser: Callable[[str], bool], url: str) -> None:
    try:
        open_browser(url)
    except Exception:  # no browser is fine: the URL was printed
        pass
