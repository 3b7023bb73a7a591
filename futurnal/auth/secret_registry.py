"""What OAuth2 and IMAP need of the process's log redaction: a place to register each secret they handle.

Every password, client secret, authorization code and token is registered the moment the code
holds it, so no later log line, traceback included, can show it. The process-wide redactor of
:mod:`futurnal.logs` is one; whoever builds a connector or runs a sign-in passes it in, so the
domain never imports the logging set-up.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["SecretRegistry"]


class SecretRegistry(Protocol):
    """Remembers secrets so they never appear in what is logged."""

    def add_secret(self, secret: str | None) -> None:
        """Register ``secret``; None (and what is too short to be a secret) is ignored."""
        ...
