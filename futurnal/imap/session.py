"""One IMAP connection: connect securely, log in, select, fetch in bounded batches."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import imapclient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError
from imapclient.response_parser import parse_fetch_response
from loguru import logger

from futurnal.storage.registry import MailboxRecord

from .connection_budget import ConnectionBudget
from .errors import (
    AuthenticationFailed,
    CommandTimedOut,
    ConnectionFailed,
    FolderNotFound,
    MailError,
    ProviderLimited,
    ServerError,
    ServerHungUp,
    TlsVerificationFailed,
)
from .fetched import FETCH_ITEMS, GMAIL_ITEMS, HEADER_ITEMS, FetchAnswer, FetchedMessage, fetched_message
from .folders import ServerFolder, from_imapclient
from .live_connections import LiveConnections
from .security_probe import security_hint
from .server_answers import (
    Alert,
    BackoffFor,
    Coded,
    OverQuota,
    ServerAnswer,
    Throttled,
    TooManyConnections,
    Verdict,
    limiting,
    parse_line,
)
from .uidset import UidSet, to_sequence_set
from .wire_limits import DEFAULT_MAX_MESSAGE_BYTES, OversizedLiteral, WireLimits

__all__ = ["ConnectionSettings", "FolderChanges", "FolderStatus", "ImapSession", "OAUTH2_MECHANISMS"]

_T = TypeVar("_T")

SECURITY_MODES = ("tls", "starttls", "plain")
#: RFC 3501 2.3.1.1: UIDs and UIDVALIDITY are 32-bit; a bigger number is a server bug.
MAX_UID = 2**32 - 1
#: A command may take ``read_timeout`` plus its literals at this rate (``[network] min_transfer_bytes_per_second``).
DEFAULT_MIN_TRANSFER_RATE = 8 * 1024
#: Longest response line kept (imaplib's own limit): FETCH lines without their literals stay far below.
MAX_LINE_BYTES = 1_000_000
#: SASL mechanisms for bearer tokens, in order of preference: XOAUTH2 is what Gmail, Office 365
#: and Yahoo all take; OAUTHBEARER (RFC 7628) where a server offers only that.
OAUTH2_MECHANISMS = ("XOAUTH2", "OAUTHBEARER")


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """Where and how to connect. ``security='plain'`` is only ever used when asked for."""

    host: str
    port: int
    username: str
    security: str = "tls"
    cafile: str | None = None
    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    min_transfer_rate: float = DEFAULT_MIN_TRANSFER_RATE

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ValueError(f"security must be one of {', '.join(SECURITY_MODES)}, not {self.security!r}")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def for_mailbox(
        cls, record: MailboxRecord, connect_timeout: float, read_timeout: float, *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, min_transfer_rate: float = DEFAULT_MIN_TRANSFER_RATE,
    ) -> ConnectionSettings:
        return cls(
            host=record.host, port=record.port, username=record.username, security=record.security,
            cafile=record.cafile, connect_timeout=connect_timeout, read_timeout=read_timeout,
            max_message_bytes=max_message_bytes, min_transfer_rate=min_transfer_rate,
        )


@dataclass(frozen=True, slots=True)
class FolderStatus:
    """What SELECT said about a folder."""

    name: str
    uidvalidity: int
    uidnext: int | None
    exists: int
    highestmodseq: int | None


@dataclass(frozen=True, slots=True)
class FolderChanges:
    """What changed among already-known messages since a MODSEQ: new flags, and vanished UIDs."""

    flags: dict[int, tuple[str, ...]]
    vanished: UidSet


class _Client(imapclient.IMAPClient):  # type: ignore[misc]  # imapclient ships no type hints
    """IMAPClient plus a FETCH that takes a compact UID set (``1:500,502``).

    ``IMAPClient.fetch`` only accepts explicit UID lists (it filters its answer by them), which
    would make every batch command as long as its list of UIDs.
    """

    def fetch_uid_set(
        self, uid_set: str, data: list[str], modifiers: str | None = None
    ) -> tuple[dict[int, dict[bytes, Any]], list[bytes]]:
        """UID FETCH; returns the FETCH answers and any ``VANISHED`` lines (RFC 7162) that came with them."""
        self._imap.untagged_responses.pop("VANISHED", None)
        args = ["UID", "FETCH", uid_set, "(" + " ".join(data) + ")"]
        if modifiers:
            args.append(f"({modifiers})")
        tag = self._imap._command(*args)
        typ, lines = self._imap._command_complete("FETCH", tag)
        self._checkok("fetch", typ, lines)
        vanished = [v for v in self._imap.untagged_responses.pop("VANISHED", []) if v]
        typ, lines = self._imap._untagged_response(typ, lines, "FETCH")
        return parse_fetch_response(lines, self.normalise_times, True), vanished

    def preauth_capabilities(self) -> frozenset[str]:
        """What the server offered before login (``AUTH=...`` lives only here)."""
        return frozenset(_text(c).upper() for c in self._imap.capabilities)

    def bearer_login(self, mechanism: str, initial_response: str) -> None:
        """SASL AUTHENTICATE with a bearer token; raises LoginError with the server's reason.

        IMAPClient's own oauth2 logins answer a failure challenge (``+ <base64 JSON>``) by
        sending the token again; RFC 7628 wants an empty response, and the JSON says why the
        token was refused, which is worth keeping for the error message.
        """
        reports: list[bytes] = []

        def respond(challenge: bytes) -> str:
            if not reports and not challenge:  # the server's "+ ": send the token
                reports.append(b"")
                return initial_response
            reports.append(challenge)  # anything after the token is the failure report
            return ""

        try:
            self._command_and_check("authenticate", mechanism, respond)
        except IMAPClientError as exc:
            raise LoginError(_bearer_failure(exc, reports[1:])) from None


def _bearer_failure(exc: Exception, reports: list[bytes]) -> str:
    """The server's answer plus, when it sent one, the status from its JSON failure report."""
    reason = str(exc)
    for report in reports:
        try:
            status = json.loads(report).get("status")
        except (ValueError, AttributeError):
            continue
        if status:
            reason += f" (token status: {status})"
    return reason


def _bearer_response(mechanism: str, username: str, access_token: str) -> str:
    if mechanism == "OAUTHBEARER":  # RFC 7628 3.1, with the GS2 header naming the user
        user = username.replace("=", "=3D").replace(",", "=2C")
        return f"n,a={user},\x01auth=Bearer {access_token}\x01\x01"
    return f"user={username}\x01auth=Bearer {access_token}\x01\x01"


def _tls_context(cafile: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class _AnswerTap:
    """Installed on one imaplib connection (``imap._get_line`` is wrapped): keeps every status
    answer (OK, NO, BAD, BYE, tagged or not) that carries a verdict of :mod:`.server_answers`,
    until the session takes them. imaplib keeps no tagged OK text, and drops a response code's
    words; this sees each line as the server sent it. Data lines (``* 12 FETCH``) are skipped
    after two bytes, literals are never seen (they are read apart)."""

    #: Answers kept between two takes at most (an IDLE that lasts hours may hear many).
    KEEP = 64

    def __init__(self, imap: Any) -> None:
        self._get_line = imap._get_line
        self.answers: list[ServerAnswer] = []
        imap._get_line = self._line

    def _line(self) -> bytes:
        line: bytes = self._get_line()
        if not (line[:2] == b"* " and line[2:3].isdigit()):
            answer = parse_line(line)
            if answer is not None and answer.verdicts:
                self.answers.append(answer)
                del self.answers[:-self.KEEP]
        return line

    def take(self) -> list[ServerAnswer]:
        answers, self.answers = self.answers, []
        return answers


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class ImapSession:
    """A logged-in IMAP connection with the few operations the sync needs.

    Every socket operation has a timeout; every failure is turned into a :class:`MailError`
    subclass whose message names the server and says what to do.
    """

    def __init__(
        self, settings: ConnectionSettings, budget: ConnectionBudget | None = None,
        live: LiveConnections | None = None, *, owner: str = "",
    ) -> None:
        self.settings = settings
        self._budget = budget
        self._live = live
        self._owner = owner  # the mailbox id that ``live`` counts this connection under
        self._holds_lease = False
        self._client: _Client | None = None
        self._wire: WireLimits | None = None
        self.capabilities: frozenset[str] = frozenset()
        self.extensions: frozenset[str] = frozenset()
        #: The SASL mechanism of an OAuth2 login, None for a password login.
        self.mechanism: str | None = None
        self._tap: _AnswerTap | None = None
        #: A wait the server asked for in answer to a command that still succeeded: the next
        #: command is not sent (see :meth:`_guard`).
        self._pending_limit: Verdict | None = None
        #: ``[THROTTLED]`` answers heard since the owner last took the count (:meth:`take_throttled`).
        self.throttled = 0
        #: The server's ``[ALERT]`` texts, as it wrote them, newest last (a few at most).
        self.alerts: list[str] = []
        self._log = logger.bind(mailbox=owner) if owner else logger

    def connect(self, password: str) -> ImapSession:
        """Connect and log in; with a budget, the connection holds one of its slots until closed."""
        return self._leased(lambda: self._connect(lambda client: self._password_login(client, password)))

    def connect_oauth2(self, access_token: str) -> ImapSession:
        """Connect and log in with an OAuth2 access token (SASL XOAUTH2, or OAUTHBEARER if only that is offered)."""
        return self._leased(lambda: self._connect(lambda client: self._oauth2_login(client, access_token)))

    def _leased(self, connect: Callable[[], ImapSession]) -> ImapSession:
        """Take a slot of the budget, then the host's login turn (so the turn is used at once), then connect."""
        if self._budget is not None:
            self._budget.acquire(timeout=self.settings.connect_timeout)
            self._holds_lease = True
        try:
            if self._live is not None:
                self._live.take_turn(self.settings.host, self._owner)
            return connect()
        except BaseException:
            self._release_lease()
            raise

    def _release_lease(self) -> None:
        if self._holds_lease and self._budget is not None:
            self._holds_lease = False
            self._budget.release()

    def _password_login(self, client: _Client, password: str) -> None:
        s = self.settings
        try:
            client.login(s.username, password)
        except LoginError as exc:
            rejected = f"{s.address} rejected the login of {s.username}: check the password"
            raise _refused(exc, s.address, rejected) from None

    def _oauth2_login(self, client: _Client, access_token: str) -> None:
        s = self.settings
        offered = client.preauth_capabilities()
        mechanism = next((m for m in OAUTH2_MECHANISMS if f"AUTH={m}" in offered), OAUTH2_MECHANISMS[0])
        try:
            client.bearer_login(mechanism, _bearer_response(mechanism, s.username, access_token))
        except LoginError as exc:
            raise _refused(exc, s.address, f"{s.address} rejected the OAuth2 token of {s.username} ({exc})") from None
        self.mechanism = mechanism

    def _connect(self, login: Callable[[_Client], None]) -> ImapSession:
        s = self.settings
        timeout = imapclient.SocketTimeout(connect=s.connect_timeout, read=s.read_timeout)
        context = _tls_context(s.cafile) if s.security != "plain" else None
        try:
            client = _Client(
                s.host, port=s.port, ssl=s.security == "tls", ssl_context=context, timeout=timeout
            )
        except ssl.SSLCertVerificationError as exc:
            raise TlsVerificationFailed(
                f"TLS certificate of {s.address} is not trusted ({exc.verify_message}); "
                "pass --cafile FILE if the server uses a private CA"
            ) from None
        except ssl.SSLError as exc:
            hint = security_hint(s.host, s.port, s.security)
            raise ConnectionFailed(hint or f"TLS handshake with {s.address} failed: {exc.reason or exc}") from None
        except (socket.gaierror, socket.herror) as exc:
            raise ConnectionFailed(f"cannot resolve {s.host}: {exc.strerror or exc}") from None
        except TimeoutError:
            hint = security_hint(s.host, s.port, s.security) if s.security != "tls" else None
            raise ConnectionFailed(hint or f"cannot reach {s.address}: timed out after {s.connect_timeout:g}s") from None
        except OSError as exc:
            raise ConnectionFailed(f"cannot reach {s.address}: {exc.strerror or exc}") from None
        except IMAPClientError as exc:
            raise ConnectionFailed(f"{s.address} refused the connection: {exc}") from None
        self._client = client
        self._tap = _AnswerTap(client._imap)
        if self._live is not None:
            try:
                self._live.add(self, self._owner)
            except ConnectionFailed:
                self.close()
                raise
        self._wire = WireLimits(
            client._imap, max_literal=s.max_message_bytes, read_timeout=s.read_timeout,
            min_rate=s.min_transfer_rate, max_line=MAX_LINE_BYTES,
        )
        if s.security == "starttls":
            try:
                client.starttls(context)
            except ssl.SSLCertVerificationError as exc:
                self.close()
                raise TlsVerificationFailed(
                    f"TLS certificate of {s.address} is not trusted ({exc.verify_message}); "
                    "pass --cafile FILE if the server uses a private CA"
                ) from None
            except (ssl.SSLError, OSError, IMAPClientError) as exc:
                self.close()
                raise ConnectionFailed(f"STARTTLS with {s.address} failed: {exc}") from None
        client.normalise_times = False
        # IMAPClient turns on imaplib's protocol trace and formats every line, message bodies
        # included, for a logger that discards it: about half the client's CPU on a big fetch.
        # Off also means no protocol line can ever carry a credential into a log.
        client._imap.debug = 0
        self._client = client
        try:
            try:
                login(client)
            except (OSError, IMAPClientError) as exc:
                raise ConnectionFailed(f"login to {s.address} failed: {exc}") from None
            except MailError as exc:
                self._failed(exc)  # a login refused for too many connections or a quota is no bad password
                raise
            self._succeeded()
        except MailError:
            self.close()
            raise
        try:
            self.capabilities = frozenset(_text(c).upper() for c in self._guard(client.capabilities))
            self._enable_sync_extensions()
        except MailError:
            self.close()  # logged in but unusable: do not leave the socket (and its lease) behind
            raise
        return self

    def _enable_sync_extensions(self) -> None:
        """ENABLE QRESYNC (which implies CONDSTORE), else CONDSTORE, so SELECT reports HIGHESTMODSEQ."""
        wanted = [ext for ext in ("QRESYNC", "CONDSTORE") if ext in self.capabilities]
        if not wanted or "ENABLE" not in self.capabilities:
            self.extensions = frozenset(wanted)  # CONDSTORE without ENABLE still works per command
            return
        enabled = self._guard(lambda: self.client.enable(wanted[0]))
        names = {_text(e).upper() for e in enabled}
        self.extensions = frozenset({"QRESYNC", "CONDSTORE"} if "QRESYNC" in names else names & {"CONDSTORE"})

    @property
    def gmail(self) -> bool:
        return "X-GM-EXT-1" in self.capabilities

    def list_folders(self) -> list[ServerFolder]:
        return from_imapclient(self._guard(self.client.list_folders))

    def message_count(self, folder: str) -> int:
        """STATUS (MESSAGES): how many messages ``folder`` holds, without selecting it."""
        answer = self._guard(lambda: self.client.folder_status(folder, [b"MESSAGES"]))
        return int(answer[b"MESSAGES"])

    @property
    def condstore(self) -> bool:
        return "CONDSTORE" in self.extensions

    @property
    def qresync(self) -> bool:
        return "QRESYNC" in self.extensions

    @property
    def client(self) -> _Client:
        if self._client is None:
            raise ConnectionFailed("not connected")
        return self._client

    def select(self, folder: str, *, read_write: bool = False) -> FolderStatus:
        """EXAMINE (read-only), so syncing never changes \\Seen or anything else; with
        ``read_write``, SELECT, for a server that saves a folder's UIDs only in read-write sessions
        (bodies are still fetched with BODY.PEEK, so no flag changes either way)."""
        self._refuse_if_limited()
        try:
            status = self._select(folder, read_write)
        except MailError as exc:
            self._failed(exc)
            raise
        self._succeeded()
        return status

    def _select(self, folder: str, read_write: bool) -> FolderStatus:
        try:
            with self._deadline():
                answer = self.client.select_folder(folder, readonly=not read_write)
        except TimeoutError:
            raise ConnectionFailed(f"{self.settings.address} did not answer SELECT in time") from None
        except IMAPClientAbortError as exc:  # the connection broke; the folder may be fine
            raise ConnectionFailed(f"connection to {self.settings.address} broke: {exc}") from None
        except IMAPClientError as exc:
            raise FolderNotFound(f"cannot open folder {folder!r} on {self.settings.address}: {_reason(exc)}") from None
        except OSError as exc:
            raise ConnectionFailed(f"connection to {self.settings.address} broke: {exc}") from None

        def number(key: bytes) -> int | None:
            value = answer.get(key)
            return int(value) if value is not None else None

        uidvalidity = number(b"UIDVALIDITY")
        if uidvalidity is None:
            raise ServerError(f"{self.settings.address} sent no UIDVALIDITY for {folder!r}")
        if not 0 < uidvalidity <= MAX_UID:
            raise ServerError(
                f"{self.settings.address} sent UIDVALIDITY {uidvalidity} for {folder!r}, not a 32-bit number "
                "above 0 (RFC 3501): the folder is skipped until the server is fixed"
            )
        return FolderStatus(
            name=folder,
            uidvalidity=uidvalidity,
            uidnext=number(b"UIDNEXT"),
            exists=number(b"EXISTS") or 0,
            highestmodseq=number(b"HIGHESTMODSEQ"),
        )

    def sizes(self, criteria: str) -> dict[int, int]:
        """UID -> RFC822.SIZE for a UID range such as ``101:2100``."""
        response, _ = self._guard(lambda: self.client.fetch_uid_set(criteria, ["RFC822.SIZE"]))
        low, _, high = criteria.partition(":")
        top = None if high in ("", "*") else int(high)
        # ``n:*`` always includes the highest UID even when it is below n (RFC 3501 6.4.8), and
        # unsolicited FETCH responses may name other messages: keep only what was asked for.
        return {
            uid: int(data[b"RFC822.SIZE"])
            for uid, data in response.items()
            if b"RFC822.SIZE" in data and uid >= int(low) and (top is None or uid <= top)
        }

    def fetch_messages(self, uids: Iterable[int], expected_bytes: int = 0) -> FetchAnswer:
        """Fetch full messages without setting \\Seen.

        A UID answered without a body, or not at all, is listed as missing (it may have been
        expunged meanwhile, or the server may be failing: the caller asks again); a body larger
        than ``max_message_bytes`` is drained unread and listed as too large. The answer may hold
        ``expected_bytes`` (the sizes the server announced) plus one ``max_message_bytes`` of
        bodies in memory: a body past that, from a server whose sizes lie, is drained and listed
        as missing, to be asked for alone.
        """
        wanted = sorted(set(uids))
        if not wanted:
            return FetchAnswer([], [], {})
        items = FETCH_ITEMS + (GMAIL_ITEMS if self.gmail else [])
        keep = self.settings.max_message_bytes + max(expected_bytes, 0)
        response, _ = self._guard(lambda: self.client.fetch_uid_set(to_sequence_set(wanted), items), keep=keep)
        messages: list[FetchedMessage] = []
        missing: list[int] = []
        too_large: dict[int, int] = {}
        for uid in wanted:
            data = response.get(uid)
            body = data.get(b"BODY[]") if data is not None else None
            if isinstance(body, OversizedLiteral) and body.size > self.settings.max_message_bytes:
                too_large[uid] = body.size
            elif isinstance(body, OversizedLiteral):  # over the answer's budget, not the limit
                missing.append(uid)
            elif body is None or data is None or (message := fetched_message(uid, data)) is None:
                missing.append(uid)
            else:
                messages.append(message)
        return FetchAnswer(messages, missing, too_large)

    def fetch_headers(self, uids: Iterable[int]) -> list[FetchedMessage]:
        """The header section, flags and dates of messages too large to download whole."""
        wanted = sorted(set(uids))
        if not wanted:
            return []
        response, _ = self._guard(lambda: self.client.fetch_uid_set(to_sequence_set(wanted), HEADER_ITEMS))
        found = []
        for uid in wanted:
            data = response.get(uid)
            if data is None:
                continue
            header = data.get(b"BODY[HEADER]")
            data = {**data, b"BODY[]": b"" if header is None or isinstance(header, OversizedLiteral) else header}
            message = fetched_message(uid, data)
            if message is not None:
                found.append(message)
        return found

    def uids_between(self, first: int, last: int) -> UidSet:
        """Every UID from ``first`` to ``last`` the folder holds now: one command across any gap."""
        found = self._guard(lambda: self.client.search(["UID", f"{first}:{last}"]))
        return UidSet.of(uid for uid in found if first <= uid <= last)

    def changes_since(self, modseq: int, up_to_uid: int) -> FolderChanges:
        """Flags changed since ``modseq`` among UIDs ``1..up_to_uid``, and (with QRESYNC) what vanished."""
        modifiers = f"CHANGEDSINCE {modseq}" + (" VANISHED" if self.qresync else "")
        response, vanished_lines = self._guard(
            lambda: self.client.fetch_uid_set(f"1:{up_to_uid}", ["FLAGS"], modifiers)
        )
        vanished = UidSet()
        for line in vanished_lines:
            text = _text(line).strip()
            if text.upper().startswith("(EARLIER)"):
                text = text[len("(EARLIER)"):].strip()
            vanished = vanished.union(UidSet.parse(text))
        flags = {
            uid: tuple(_text(f) for f in data[b"FLAGS"])
            for uid, data in response.items()
            if b"FLAGS" in data and uid <= up_to_uid
        }
        return FolderChanges(flags, vanished)

    def flags(self, criteria: str) -> dict[int, tuple[str, ...]]:
        """Current flags for a UID range (the fallback when the server has no CONDSTORE)."""
        response, _ = self._guard(lambda: self.client.fetch_uid_set(criteria, ["FLAGS"]))
        return {uid: tuple(_text(f) for f in data[b"FLAGS"]) for uid, data in response.items() if b"FLAGS" in data}

    def uids(self, up_to_uid: int) -> UidSet:
        """Every UID from 1 to ``up_to_uid`` the folder holds now (deletion check without QRESYNC)."""
        found = self._guard(lambda: self.client.search(["UID", f"1:{up_to_uid}"]))
        return UidSet.of(uid for uid in found if uid <= up_to_uid)

    def _guard(self, call: Callable[[], _T], keep: int | None = None) -> _T:
        """Run one command under the connection's deadline, holding at most ``keep`` bytes of
        literals (default one ``max_message_bytes``); turn failures into :class:`MailError`, and
        a failure the server explained as a limit of its own into :class:`ProviderLimited`."""
        self._refuse_if_limited()
        try:
            result = self._guarded(call, keep)
        except MailError as exc:
            self._failed(exc)
            raise
        self._succeeded()
        return result

    def take_answers(self) -> list[ServerAnswer]:
        """The answers with a verdict heard since the last take (a watcher's IDLE, between commands)."""
        return self._tap.take() if self._tap is not None else []

    def take_throttled(self) -> int:
        """How many ``[THROTTLED]`` answers came since the last call; counts from 0 again."""
        count, self.throttled = self.throttled, 0
        return count

    def _refuse_if_limited(self) -> None:
        """No command on a connection whose server asked for a wait (in answer to a command that
        succeeded all the same): that command's owner learns it now."""
        limit, self._pending_limit = self._pending_limit, None
        if limit is not None:
            raise ProviderLimited(_limited_message(self.settings.address, limit), limit)

    def _failed(self, exc: MailError) -> None:
        """A command failed: raise :class:`ProviderLimited` instead when the server said why."""
        limit = limiting(self._heed())
        if limit is not None and not isinstance(exc, ProviderLimited):
            raise ProviderLimited(_limited_message(self.settings.address, limit), limit) from None

    def _succeeded(self) -> None:
        limit = limiting(self._heed())
        if limit is not None:
            self._pending_limit = limit

    def _heed(self) -> list[Verdict]:
        """Log what the last command's answers said (alerts as the server wrote them, every coded
        NO or BAD with its code), count throttling, and return every verdict."""
        verdicts: list[Verdict] = []
        for answer in self.take_answers():
            for verdict in answer.verdicts:
                verdicts.append(verdict)
                if isinstance(verdict, Alert):
                    self.alerts = [*self.alerts[-4:], verdict.text]
                    self._log.warning("{address} alert: {text}", address=self.settings.address, text=verdict.text)
                elif isinstance(verdict, Coded):
                    self._log.info("{address} answered {status} [{code}]: {text}", address=self.settings.address,
                                   status=verdict.status, code=verdict.code, text=verdict.text)
                elif isinstance(verdict, Throttled):
                    self.throttled += 1
                    self._log.debug("{address} throttles this account: {text}", address=self.settings.address,
                                    text=verdict.text)
        return verdicts

    def _guarded(self, call: Callable[[], _T], keep: int | None) -> _T:
        s = self.settings
        try:
            with self._deadline(keep):
                return call()
        except TimeoutError:
            raise CommandTimedOut(
                f"{s.address} did not answer in time (no data for {s.read_timeout:g}s, or slower than "
                f"{s.min_transfer_rate:g} bytes/s)"
            ) from None
        except IMAPClientAbortError as exc:
            bye = self._farewell()
            if bye is not None:
                raise ServerHungUp(f"{s.address} ended the connection in the middle of a command: {bye}") from None
            raise ConnectionFailed(f"connection to {s.address} broke: {exc}") from None
        except OSError as exc:
            raise ConnectionFailed(f"connection to {s.address} broke: {exc}") from None
        except IMAPClientError as exc:
            raise ServerError(f"{s.address} refused a command: {_reason(exc)}") from None

    def _farewell(self) -> str | None:
        """The text of a BYE the server sent before it hung up, if it sent one."""
        imap = getattr(self._client, "_imap", None)
        said = imap.untagged_responses.get("BYE") if imap is not None else None
        return _text(said[-1]).strip() if said else None

    @contextmanager
    def _deadline(self, keep: int | None = None) -> Iterator[None]:
        """One command's time limit and literal budget (see :mod:`futurnal.imap.wire_limits`)."""
        wire = self._wire
        if wire is not None:
            wire.start_command(keep)
        try:
            yield
        finally:
            if wire is not None:
                wire.end_command()

    def cut(self) -> None:
        """Shut the socket down from any thread: a read blocked on it returns at once (stop)."""
        client = self._client
        sock = getattr(getattr(client, "_imap", None), "sock", None)
        if sock is None:
            return
        try:
            # The plain socket's shutdown, also for TLS: SSLSocket.shutdown would unwrap the TLS
            # object under the reading thread's feet; this only ends the stream under it.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        """Log out politely, or just drop the socket if that fails."""
        if self._live is not None:
            self._live.discard(self)
        client, self._client = self._client, None
        if client is None:
            self._release_lease()
            return
        try:
            client.logout()
        except Exception:
            try:
                client.shutdown()
            except Exception:
                pass
        finally:
            self._release_lease()

    def __enter__(self) -> ImapSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _reason(exc: Exception) -> str:
    text = str(exc)
    for prefix in ("select failed: ", "fetch failed: "):
        text = text.removeprefix(prefix)
    return text.strip() or exc.__class__.__name__


def _limited_message(address: str, limit: Verdict) -> str:
    """What a :class:`ProviderLimited` says, the server's words included."""
    text = getattr(limit, "text", "")
    if isinstance(limit, OverQuota):
        return f"{address} says the account exceeded its command or bandwidth limits: {text}"
    if isinstance(limit, BackoffFor):
        return f"{address} asks for no command for {limit.seconds:g} s: {text}"
    if isinstance(limit, TooManyConnections):
        return f"{address} refuses more simultaneous connections: {text}"
    return f"{address} cannot serve this now and asks to try later: {text}"


def _refused(exc: LoginError, address: str, rejected: str) -> MailError:
    """What a refused login means: ``[UNAVAILABLE]`` is the server unable to check credentials
    right now (Dovecot while its auth process starts, a provider that cannot reach its token
    service), retried like a lost connection; anything else is a rejection, for the user to fix."""
    if isinstance(exc.__context__, IMAPClientAbortError):
        # The connection broke during the login (IMAPClient reports that as a refused login too):
        # nothing was said about the credentials.
        return ConnectionFailed(f"connection to {address} broke during the login: {exc.__context__}")
    if "[UNAVAILABLE]" in str(exc).upper():
        return ConnectionFailed(f"{address} cannot check logins right now ({exc})")
    return AuthenticationFailed(rejected)
