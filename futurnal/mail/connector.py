"""Opening a logged-in session for a mailbox: its settings, its secret, its connection budget."""

from __future__ import annotations

from futurnal.storage.credentials import CredentialStore
from futurnal.storage.registry import MailboxRecord

from .connection_budget import ConnectionBudget
from .errors import AuthenticationFailed
from .session import ConnectionSettings, ImapSession

__all__ = ["MailboxConnector"]


class MailboxConnector:
    """Callable that returns a new connected :class:`ImapSession`; shared by fetcher and watchers."""

    def __init__(
        self,
        record: MailboxRecord,
        credentials: CredentialStore,
        *,
        connect_timeout: float,
        read_timeout: float,
        budget: ConnectionBudget | None = None,
    ) -> None:
        self._record = record
        self._credentials = credentials
        self._settings = ConnectionSettings.for_mailbox(record, connect_timeout, read_timeout)
        self._budget = budget

    def __call__(self) -> ImapSession:
        password = self._credentials.get_secret(self._record.id, "password")
        if password is None:
            raise AuthenticationFailed(f"no password for {self._record.id} in the keyring; add the mailbox again")
        return ImapSession(self._settings, self._budget).connect(password)
