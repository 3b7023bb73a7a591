"""Watching one folder for changes: IMAP IDLE on a connection of its own, or polling without it.

Users of other sync tools report IDLE connections that look alive but stopped delivering. Here a
connection counts as dead on a server BYE, a socket that is readable but empty, an error, or a
renewal (DONE, NOOP, IDLE again, well before the 29-minute limit of RFC 2177) that gets no
answer in time; a dead connection is replaced after an exponential, jittered, capped back-off,
and every (re)connection asks for a catch-up sync so nothing that arrived meanwhile is missed.

While idle a watcher costs nothing: its thread blocks in the socket until the server says
something or the next renewal is due, and :meth:`IdleWatch.stop` wakes it at once by shutting the
connection down, so no loop wakes on a timer only to look at a stop flag.
"""

from __future__ import annotations

import imaplib
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from imapclient.exceptions import IMAPClientError

from .errors import AuthenticationFailed, ConnectionFailed, MailError, ProviderLimited
from .session import ImapSession

__all__ = ["SERVER_NOTIFICATION", "IdleWatch", "WatchEvent", "WatchNotPossible", "WatchSettings"]

#: Untagged responses that mean the folder changed: new mail, expunges, flag changes.
CHANGE_RESPONSES = {b"EXISTS", b"EXPUNGE", b"FETCH", b"VANISHED"}
#: The detail of a ``changed`` event the server caused (others are catch-ups after connecting).
SERVER_NOTIFICATION = "server notification"


class WatchNotPossible(MailError):
    """This way of watching cannot work on this server (e.g. no NOTIFY): give up, do not retry."""


@dataclass(frozen=True, slots=True)
class WatchSettings:
    renew_seconds: float = 9 * 60  # RFC 2177: servers may drop IDLE after 29 minutes
    poll_seconds: float = 60.0  # without IDLE
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 300.0
    #: How long to wait after the provider limited the account (a :class:`ProviderLimited`'s
    #: verdict, and the failures in a row): the mailbox's hold policy, in place of the back-off
    #: above, so a watcher does not log in again before the provider allows it.
    limited_wait: Callable[[object, int], float] | None = None


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """What a watcher reports. ``kind``: ``connected`` (detail: ``idle``, ``notify`` or ``polling``),
    ``changed`` (detail: why), ``disconnected`` (detail: the error), ``needs-reauth``,
    ``not-possible`` (detail: why this way of watching cannot work on the server)."""

    mailbox: str
    folder: str
    kind: str
    detail: str = ""


class IdleWatch:
    """The watch loop of one folder; ``run`` blocks until :meth:`stop` (call it on a thread).

    ``stop`` is the owner's flag, shared by its watches; setting it alone ends a loop only at its
    next renewal, so the owner calls :meth:`stop` on each watch, which also cuts its connection.
    """

    def __init__(
        self,
        *,
        mailbox: str,
        folder: str,
        connect: Callable[[], ImapSession],
        notify: Callable[[WatchEvent], None],
        stop: threading.Event,
        settings: WatchSettings = WatchSettings(),
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        halt: threading.Event | None = None,
    ) -> None:
        """``halt``: the whole system is stopping (it cut every connection): end without the
        reconnecting a cut connection would otherwise get."""
        self.mailbox, self.folder = mailbox, folder
        self._halt = halt
        self._connect = connect
        self._notify = notify
        self._stop = stop
        self._settings = settings
        self._clock = clock
        self._jitter = jitter
        self._session: ImapSession | None = None  # the open connection, for stop() to cut
        self._session_lock = threading.Lock()
        self.mode: str = "starting"

    def stop(self) -> None:
        """End the loop from any thread, at once: set the flag, and shut down the connection a
        blocked read waits on (the read returns, the loop sees the flag)."""
        self._stop.set()
        with self._session_lock:
            session = self._session
        if session is not None:
            session.cut()

    def _stopped(self) -> bool:
        return self._stop.is_set() or (self._halt is not None and self._halt.is_set())

    def run(self) -> None:
        failures = 0
        while not self._stopped():
            session: ImapSession | None = None
            limited: float | None = None
            try:
                session = self._connect()
                with self._session_lock:
                    self._session = session
                if self._stopped():  # stop() ran before it could see this session to cut it
                    break
                self.mode = self._prepare(session)
                failures = 0
                self._event("connected", self.mode)
                self._poll(session) if self.mode == "polling" else self._idle(session)
            except WatchNotPossible as exc:
                self.mode = "not-possible"
                self._event("not-possible", str(exc))
                return
            except AuthenticationFailed as exc:
                self.mode = "needs-reauth"
                self._event("needs-reauth", str(exc))
                return
            except (MailError, OSError, imaplib.IMAP4.error, IMAPClientError, Exception) as exc:
                # Anything else too (a locked keyring, a library bug): a watcher that silently
                # stopped is exactly the failure users of other tools complain about.
                if self._stopped():
                    break  # the connection was cut to stop: not a failure to report
                failures += 1
                self.mode = "reconnecting"
                self._event("disconnected", f"{exc.__class__.__name__}: {exc}")
                if isinstance(exc, ProviderLimited) and self._settings.limited_wait is not None:
                    limited = self._settings.limited_wait(exc.verdict, failures - 1)
            finally:
                with self._session_lock:
                    self._session = None
                if session is not None:
                    session.close()
            if failures:
                self._stop.wait(limited if limited is not None else self._backoff(failures))
        self.mode = "stopped"

    def _prepare(self, session: ImapSession) -> str:
        """Get the connection ready to be told about changes; return how: ``idle`` or ``polling``."""
        session.select(self.folder)
        return "idle" if "IDLE" in session.capabilities else "polling"

    def _backoff(self, failures: int) -> float:
        s = self._settings
        ceiling = min(s.backoff_max_seconds, s.backoff_initial_seconds * 2 ** (failures - 1))
        return float(ceiling * (0.5 + self._jitter() / 2))  # "equal jitter": never zero, never in lockstep

    def _idle(self, session: ImapSession) -> None:
        client = session.client
        client.idle()
        # Only now: whatever arrives from here on is announced by IDLE, and the catch-up sync
        # (which starts after this) sees everything that arrived before.
        self._event("changed", "catch-up after connecting")
        renew_at = self._clock() + self._settings.renew_seconds
        while not self._stopped():
            # Blocks until the server speaks, the connection ends (stop() cuts it), or renewal.
            responses = client.idle_check(timeout=max(renew_at - self._clock(), 0.0))
            if self._stopped():
                return  # cut by stop(): nothing left to end politely
            if not responses and _peer_closed(client.socket()):
                # IMAPClient swallows EOF in idle_check and returns nothing, forever.
                raise ConnectionFailed("the server closed the connection during IDLE")
            self._react(responses)
            if self._clock() >= renew_at:
                # Ending IDLE needs the server's tagged answer: a silent dead connection fails here.
                self._react(client.idle_done()[1])
                self._react(client.noop()[1])
                client.idle()
                renew_at = self._clock() + self._settings.renew_seconds
        try:  # stopping: end IDLE politely before the session logs out
            client.idle_done()
        except Exception:
            pass

    def _poll(self, session: ImapSession) -> None:
        client = session.client
        self._event("changed", "catch-up after connecting")
        next_poll = self._clock() + self._settings.poll_seconds
        while not self._stop.wait(max(next_poll - self._clock(), 0)):  # set() wakes it at once
            if self._clock() >= next_poll:
                self._react(client.noop()[1])
                next_poll = self._clock() + self._settings.poll_seconds

    def _react(self, responses: list[tuple[object, ...]] | list[object]) -> None:
        for response in responses:
            if isinstance(response, tuple) and b"BYE" in _words(response):
                raise ConnectionFailed(f"the server ended the connection: {response!r}")
        for folder in self._changed_folders(responses):
            self._notify(WatchEvent(self.mailbox, folder, "changed", SERVER_NOTIFICATION))

    def _changed_folders(self, responses: list[tuple[object, ...]] | list[object]) -> list[str]:
        """The folders these untagged responses say changed: here, the one selected."""
        for response in responses:
            if isinstance(response, tuple) and len(response) >= 2 and _words(response) & CHANGE_RESPONSES:
                return [self.folder]
        return []

    def _event(self, kind: str, detail: str) -> None:
        self._notify(WatchEvent(self.mailbox, self.folder, kind, detail))


def _words(response: tuple[object, ...]) -> set[bytes]:
    return {part.upper() for part in response if isinstance(part, bytes)}


def _peer_closed(sock: socket.socket) -> bool:
    """True when the connection is at end of file (the peer has gone).

    Peeks a duplicate of the raw descriptor, because a TLS socket refuses MSG_PEEK; at TCP level
    a closed connection reads zero bytes whether or not TLS runs on top.
    """
    try:
        raw = socket.socket(fileno=os.dup(sock.fileno()))
    except OSError:
        return True
    try:
        return raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True
    finally:
        raw.close()
