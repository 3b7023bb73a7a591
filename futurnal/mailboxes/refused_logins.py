"""Mailboxes whose server refused the login: kept outside the mailbox actors so a restart remembers it."""

from __future__ import annotations

import threading

__all__ = ["RefusedLogins"]


class RefusedLogins:
    """A thread-safe map of mailbox id -> why the login was refused, one per actor system.

    A mailbox actor restarted after a crash must not try the refused secret again: one more failed
    login per restart is what gets accounts locked. The entry lasts until ``imap reauth`` renews
    the secret (:meth:`clear`) or the process stops; a new start tries the login once more.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reasons: dict[str, str] = {}

    def refuse(self, mailbox_id: str, reason: str) -> None:
        with self._lock:
            self._reasons[mailbox_id] = reason

    def reason(self, mailbox_id: str) -> str | None:
        with self._lock:
            return self._reasons.get(mailbox_id)

    def clear(self, mailbox_id: str) -> None:
        with self._lock:
            self._reasons.pop(mailbox_id, None)
