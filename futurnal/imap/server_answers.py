"""What a mail server's status answers ask of a client: slow down, wait, use fewer connections.

Providers say it in the text of OK, NO, BAD and BYE answers, some with a response code (RFC 3501
7.1, RFC 5530), some in words only, and not always where the RFC puts the code. The wordings
below are the providers' own, as public reports quote them:

- Gmail, a command that succeeded but costs too much: ``A2 OK Success [THROTTLED]`` (the code at
  the end: mscdex/node-imap#593, jstedfast/MailKit#1396), also on a NO;
- Gmail, the account's daily bandwidth or command budget spent:
  ``NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)`` (ljmerza/ha-email-
  sensor#16; the limits are Google Workspace's "Gmail bandwidth limits", chatwoot/chatwoot#6082);
- Gmail, over its 15 connections per account: ``NO [ALERT] Too many simultaneous connections.
  (Failure)``, to LOGIN or AUTHENTICATE (zone-eu/wildduck#35, jstedfast/MailKit#377);
- Office 365: ``NO Request is throttled. Suggested Backoff Time: 299910 milliseconds``, also as a
  BAD followed by ``* BYE Connection closed. 14`` (ikvk/imap_tools#135, imapsync/imapsync#198,
  simonrob/email-oauth2-proxy#191);
- RFC 5530: ``[UNAVAILABLE]`` (a subsystem is down: try later) and ``[LIMIT]`` (a limit of the
  server's was hit: try later, or do less).

:func:`classify` turns one answer into :data:`Verdict` values; :func:`parse_line` reads one from a
response line. Pure: no I/O, no clock, nothing of imapclient.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "Alert",
    "BackoffFor",
    "Coded",
    "Limit",
    "OverQuota",
    "ServerAnswer",
    "Throttled",
    "TooManyConnections",
    "Unavailable",
    "Verdict",
    "classify",
    "limiting",
    "parse_line",
]

STATUSES = ("OK", "NO", "BAD", "BYE", "PREAUTH")


@dataclass(frozen=True, slots=True)
class Throttled:
    """Gmail's ``[THROTTLED]``: the account is being slowed down; do less, more slowly, and go on."""

    text: str


@dataclass(frozen=True, slots=True)
class OverQuota:
    """Gmail's ``[OVERQUOTA]`` / "Account exceeded command or bandwidth limits": nothing more
    until the provider's limit window has passed (Gmail does not say when that is)."""

    text: str


@dataclass(frozen=True, slots=True)
class Unavailable:
    """``[UNAVAILABLE]`` (RFC 5530): the server cannot do it now; back off, then try again."""

    text: str


@dataclass(frozen=True, slots=True)
class Limit:
    """``[LIMIT]`` (RFC 5530): a limit of the server's was hit; back off, then try again."""

    text: str


@dataclass(frozen=True, slots=True)
class TooManyConnections:
    """"Too many simultaneous connections": the account's connection cap (shared with the user's
    other mail programs) is reached; use one connection fewer."""

    text: str


@dataclass(frozen=True, slots=True)
class BackoffFor:
    """Office 365's "Suggested Backoff Time: N milliseconds": no command before ``seconds`` pass."""

    seconds: float
    text: str


@dataclass(frozen=True, slots=True)
class Alert:
    """``[ALERT]`` (RFC 3501 7.1): text the server wants the user to read, as it wrote it."""

    text: str


@dataclass(frozen=True, slots=True)
class Coded:
    """A NO or BAD with a response code: worth a log line naming the code."""

    status: str
    code: str
    text: str


Verdict = Throttled | OverQuota | Unavailable | Limit | TooManyConnections | BackoffFor | Alert | Coded


@dataclass(frozen=True, slots=True)
class ServerAnswer:
    """One status answer: ``status`` (OK, NO, BAD, BYE), whether it was tagged, and its text."""

    status: str
    text: str
    tagged: bool = False

    @property
    def verdicts(self) -> tuple[Verdict, ...]:
        return classify(self.status, self.text)


#: A response code anywhere in the text (Gmail puts ``[THROTTLED]`` after it): the atom, its arguments.
_CODE = re.compile(r"\[([A-Za-z][A-Za-z0-9.-]*)(?:\s[^\]]*)?\]")
_OVERQUOTA_WORDS = re.compile(r"exceeded\s+command\s+or\s+bandwidth\s+limits", re.IGNORECASE)
_TOO_MANY_WORDS = re.compile(r"too\s+many\s+simultaneous\s+connections", re.IGNORECASE)
_BACKOFF_WORDS = re.compile(r"suggested\s+backoff\s+time:?\s*(\d{1,12})\s*(milliseconds|ms|seconds|s)\b", re.IGNORECASE)
#: Office 365 suggests up to about 5 minutes; a larger number is taken as at most a day.
_MAX_BACKOFF_SECONDS = 86_400.0


def codes(text: str) -> tuple[str, ...]:
    """The response codes in ``text``, upper case, in order."""
    return tuple(match.group(1).upper() for match in _CODE.finditer(text))


def classify(status: str, text: str) -> tuple[Verdict, ...]:
    """Every verdict one answer carries, strongest first (see :func:`limiting`).

    ``status`` is OK, NO, BAD or BYE; ``text`` what followed it (response code included).
    ``NO [ALERT] Too many simultaneous connections. (Failure)`` is both a
    :class:`TooManyConnections` and an :class:`Alert`; ``NO [OVERQUOTA] ...`` an
    :class:`OverQuota` and a :class:`Coded`.
    """
    status = status.upper()
    text = text.strip()
    found = codes(text)
    verdicts: list[Verdict] = []
    if "OVERQUOTA" in found or _OVERQUOTA_WORDS.search(text):
        verdicts.append(OverQuota(text))
    if (backoff := _BACKOFF_WORDS.search(text)) is not None:
        amount = float(backoff.group(1))
        seconds = amount / 1000 if backoff.group(2).lower() in ("milliseconds", "ms") else amount
        verdicts.append(BackoffFor(min(seconds, _MAX_BACKOFF_SECONDS), text))
    if _TOO_MANY_WORDS.search(text):
        verdicts.append(TooManyConnections(text))
    if "UNAVAILABLE" in found:
        verdicts.append(Unavailable(text))
    if "LIMIT" in found:
        verdicts.append(Limit(text))
    if "THROTTLED" in found and not any(isinstance(v, OverQuota) for v in verdicts):
        verdicts.append(Throttled(text))
    if "ALERT" in found:
        verdicts.append(Alert(_without_code(text, "ALERT")))
    if status in ("NO", "BAD") and found:
        verdicts.append(Coded(status, found[0], text))
    return tuple(verdicts)


def limiting(verdicts: tuple[Verdict, ...] | list[Verdict]) -> Verdict | None:
    """The verdict that decides what happens next, if any: over quota, then a backoff the server
    named, then too many connections, then unavailable or limit. :class:`Throttled`,
    :class:`Alert` and :class:`Coded` never stop a command that succeeded."""
    for kind in (OverQuota, BackoffFor, TooManyConnections, Unavailable, Limit):
        for verdict in verdicts:
            if isinstance(verdict, kind):
                return verdict
    return None


#: ``* OK ...``, ``* BYE ...``, ``A12 NO ...``: a status response line (a FETCH or LIST line is not).
_LINE = re.compile(rb"^(\*|[A-Za-z0-9]+)\s+(OK|NO|BAD|BYE|PREAUTH)(?:\s(.*?))?\r?\n?$", re.IGNORECASE | re.DOTALL)


def parse_line(line: bytes) -> ServerAnswer | None:
    """The status answer a response line holds, None for any other line (data, continuation)."""
    match = _LINE.match(line)
    if match is None:
        return None
    tag, status, rest = match.groups()
    return ServerAnswer(status.decode("ascii").upper(), (rest or b"").decode("utf-8", "replace"),
                        tagged=tag != b"*")


def _without_code(text: str, code: str) -> str:
    """An ``[ALERT]`` answer's words: the code taken out, the rest as the server wrote it."""
    return re.sub(rf"\[{code}\]\s*", "", text, count=1, flags=re.IGNORECASE).strip() or text
