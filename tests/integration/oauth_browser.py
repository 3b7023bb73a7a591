"""A scripted "browser" for the OAuth2 tests: ``$BROWSER`` points here (through a small wrapper).

Python's ``webbrowser`` runs ``$BROWSER URL``; this follows the provider's real pages with an HTTP
session as a person would: the login form (a wrong password first when asked, to show the check
is real), the consent form, then the redirect to the application's loopback callback. It can
tamper with that last redirect (a forged or missing ``state``) the way an attacker's page would.

What it does is driven by a JSON plan (path in ``$FUTURNAL_TEST_BROWSER_PLAN``):
``{"login", "password", "wrong_password_first", "state": "keep" | "forged" | "missing", "log"}``;
every page it saw is appended to the ``log`` file as one JSON line. Nothing goes to stdout,
which belongs to the command that opened the browser.
"""

from __future__ import annotations

import json
import os
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

PLAN_VARIABLE = "FUTURNAL_TEST_BROWSER_PLAN"
CALLBACK_PATH = "/oauth2callback"


class _Page(HTMLParser):
    """The title, the text, and the forms of a page (action, method, named fields)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.title = ""
        self.text: list[str] = []
        self.forms: list[dict[str, Any]] = []
        self._in_title = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "title":
            self._in_title = True
        elif tag == "form":
            self.forms.append({"action": values.get("action", ""), "method": values.get("method", "get"), "fields": {}})
        elif tag == "input" and self.forms and values.get("name"):
            self.forms[-1]["fields"][values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif data.strip():
            self.text.append(data.strip())


class Browser:
    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.session = requests.Session()
        self.log_path = Path(plan["log"])

    def log(self, **entry: Any) -> None:
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")

    def go(self, method: str, url: str, data: dict[str, str] | None = None) -> tuple[str, requests.Response | None]:
        """Follow redirects until a page, or until the redirect to the application's callback (returned, not fetched)."""
        for _ in range(20):
            answer = self.session.request(method, url, data=data, allow_redirects=False, timeout=30)
            if not answer.is_redirect:
                return url, answer
            url, method, data = urljoin(url, answer.headers["Location"]), "GET", None
            if urlsplit(url).path == CALLBACK_PATH:
                return url, None
        raise RuntimeError("too many redirects")

    def page(self, step: str, answer: requests.Response) -> _Page:
        page = _Page(answer.text)
        self.log(step=step, status=answer.status_code, title=page.title.strip(), text=page.text)
        return page

    def submit(self, url: str, form: dict[str, Any], fields: dict[str, str]) -> tuple[str, requests.Response | None]:
        return self.go(form["method"].upper(), urljoin(url, form["action"]), {**form["fields"], **fields})

    def run(self, start: str) -> int:
        url, answer = self.go("GET", start)
        while answer is not None:
            page = self.page("page", answer)
            if page.title.strip() == "Sign in":
                if self.plan.get("wrong_password_first"):
                    self.plan["wrong_password_first"] = False
                    wrong = {"login": self.plan["login"], "password": "not-" + self.plan["password"]}
                    url, answer = self.submit(url, page.forms[0], wrong)
                    continue
                url, answer = self.submit(url, page.forms[0], {"login": self.plan["login"], "password": self.plan["password"]})
            elif page.title.strip() == "Allow access":
                url, answer = self.submit(url, page.forms[0], {})
            else:
                return 1  # an error page: logged above
        answer = self.session.get(self.tamper(url), allow_redirects=False, timeout=30)
        self.page("callback", answer)
        return 0

    def tamper(self, callback: str) -> str:
        parts = urlsplit(callback)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "state" or self.plan.get("state", "keep") == "keep"]
        if self.plan.get("state") == "forged":
            query.append(("state", "forged-by-someone-else"))
        return urlunsplit(parts._replace(query=urlencode(query)))


def main(argv: list[str]) -> int:
    plan = json.loads(Path(os.environ[PLAN_VARIABLE]).read_text(encoding="utf-8"))
    browser = Browser(plan)
    try:
        return browser.run(argv[1])
    except Exception as exc:  # the test reads the log; the command that opened us only sees the status
        browser.log(step="crash", error=f"{type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
