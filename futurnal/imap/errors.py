"""Mail-side failures, each worded so it can be shown to a user in one line."""

from __future__ import annotations

from futurnal.storage.errors import LocalFault

__all__ = [
    "AuthenticationFailed",
    "CaFileUnusable",
    "CommandTimedOut",
    "ConnectionFailed",
    "FolderNotFound",
    "MailError",
    "ProviderLimited",
    "ServerError",
    "ServerHungUp",
    "ServiceStopping",
    "TlsVerificationFailed",
]


class MailError(Exception):
    """Base class: talking to the mail server failed."""

    #: Whether trying again later can help (network trouble) or not (wrong password).
    transient = True


class ConnectionFailed(MailError):
    """The server could not be reached, or the connection broke."""


class ServiceStopping(ConnectionFailed):
    """The actor system is stopping: no new connection is opened, and none waits for its turn."""

    def __init__(self) -> None:
        super().__init__("the service is stopping; no new connection is opened")


class CommandTimedOut(ConnectionFailed):
    """A command ran past its deadline (no data for the read timeout, or slower than the least
    transfer rate). The connection may be dead, or the server may be unable to send what was
    asked for: a sync asks again, alone, on a new connection."""


class ServerHungUp(ConnectionFailed):
    """The server said BYE in the middle of a command and closed the connection: what Dovecot
    does when it cannot read one message of a FETCH. Unlike a network failure, it may be the
    messages asked for that caused it."""


class ProviderLimited(ConnectionFailed):
    """The provider asked the client to wait, slow down or use fewer connections (Gmail's
    ``[OVERQUOTA]``, Office 365's suggested backoff, ``[UNAVAILABLE]``, ``[LIMIT]``, too many
    simultaneous connections). ``verdict`` is the :mod:`~.server_answers` verdict that decided it;
    the connection is not to be used again, and the mailbox's owner decides how long to wait."""

    def __init__(self, message: str, verdict: object) -> None:
        super().__init__(message)
        self.verdict = verdict


class TlsVerificationFailed(MailError):
    """The server's certificate was not trusted; retrying will not change that."""

    transient = False


class AuthenticationFailed(MailError):
    """The server rejected the credentials; the user has to act."""

    transient = False


class FolderNotFound(MailError):
    """The folder does not exist on the server (or cannot be selected)."""

    transient = False


class ServerError(MailError):
    """The server answered NO / BAD to a command."""


class CaFileUnusable(MailError, LocalFault):
    """The mailbox's ``--cafile`` is missing or unreadable: nothing the server did, and nothing a
    retry fixes until the file is back, so it is a :class:`LocalFault` as much as a mail error."""
