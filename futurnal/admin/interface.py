"""The admin use cases, one interface for both owners a data directory can have.

A data directory has one writer at a time: the command itself when no ``run`` serves it
(:class:`~futurnal.admin.local.LocalAdmin`, which writes the files under the data directory's
lock), or the running process (:class:`~futurnal.admin.remote.RemoteAdmin`, which asks it over
the admin console, so its actors start, stop or reschedule at once). :func:`~futurnal.admin.open_admin`
picks one; a command then calls the interface and never asks which it got.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from futurnal.storage.consent import ConsentRecord
from futurnal.storage.quarantine import QuarantineRecord
from futurnal.storage.registry import MailboxRecord, MailboxRegistry

__all__ = ["Admin", "MonitorView", "Reauthentication", "Removal", "RetryResult", "SyncProgress"]


class SyncProgress(Protocol):
    """Where a sync run by the command itself shows its progress (a terminal progress bar)."""

    def update(self, done: int, total: int, detail: str = "") -> None: ...

    def finish(self) -> None: ...


class MonitorView(Protocol):
    """Where ``monitor`` shows what it does: ``say`` a line about the watch itself, ``show`` an event
    document (as the console streams them)."""

    def say(self, line: str) -> None: ...

    def show(self, event: dict[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class Removal:
    """What removing a mailbox deleted: the counts of :func:`~futurnal.storage.purge.remove_mailbox`
    and the kinds of secret deleted from the keyring."""

    counts: dict[str, int]
    secrets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Reauthentication:
    """A renewed secret: its kind, and whether a running process restarted the mailbox's actors
    with it (None: no process runs; the next start uses it)."""

    secret_kind: str
    restarted: bool | None


@dataclass(frozen=True, slots=True)
class RetryResult:
    """One quarantined message tried again: stored as ``element_id``, or failed with ``error``."""

    record_id: str
    element_id: str | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


class Admin(Protocol):
    """The admin use cases. Bad input and conflicts (a mailbox already registered) raise
    ``ValueError``; an operation that cannot be done raises :class:`~futurnal.admin.errors.AdminError`.
    Errors of the running process come up as :class:`~futurnal.console.ConsoleError`."""

    def add_mailbox(self, record: MailboxRecord, scopes: tuple[str, ...], granted_by: str,
                    store_secret: Callable[[], None]) -> None:
        """Register ``record`` with its consent (both audited). ``store_secret`` puts its secret in
        the keyring; a mailbox is never left registered without it, nor a secret without its mailbox."""

    def remove_mailbox(self, mailbox_id: str, purge: bool) -> Removal:
        """Stop and unregister the mailbox, delete its secrets and, with ``purge``, its data; audited."""

    def status(self, record: MailboxRecord) -> dict[str, Any]:
        """The mailbox's status (``imap status --json``), with ``live`` when a process runs it."""

    def sync(self, record: MailboxRecord, folders: tuple[str, ...] = (), *, timeout: float | None = None,
             progress: SyncProgress | None = None, say: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Sync now and wait for the report (as ``imap sync --json``); ``say`` hears where it runs."""

    def set_schedule(self, mailbox_id: str, schedule: str | None, priority: str | None) -> dict[str, Any]:
        """Store a (validated) schedule and/or priority; the schedule as ``imap schedule --json`` shows it."""

    def set_budget(self, mailbox_id: str, daily_download_mb: int | None) -> dict[str, Any]:
        """Store the mailbox's daily download budget in MB (None: no budget); a running process
        restarts the mailbox's actors, so its fetcher counts against the new one at once. The
        budget as ``imap budget --json`` shows it."""

    def grant_consent(self, mailbox_id: str, granted_by: str, scopes: tuple[str, ...],
                      expires_at: str | None = None) -> ConsentRecord:
        """Record consent (audited); a mailbox stopped by a revocation starts again."""

    def revoke_consent(self, mailbox_id: str) -> bool:
        """Withdraw consent (audited) and stop the mailbox's actors; False when there was none."""

    def reauthenticate(self, record: MailboxRecord,
                       renew: Callable[[MailboxRegistry | None], str]) -> Reauthentication:
        """Renew the mailbox's secret: ``renew`` checks the new one and stores it in the keyring,
        returning its kind. It gets the registry when the mailbox's record may change (no process
        owns it), else None. Then the renewal is audited and the mailbox may sync again."""

    def retry_quarantined(self, record_id: str | None) -> list[RetryResult]:
        """Run one quarantined message (every one with None) through the current parser."""

    def drop_quarantined(self, record_id: str) -> QuarantineRecord | None:
        """Delete a quarantined message; its record when it was read here, None when the process dropped it."""

    def monitor(self, record: MailboxRecord, folders: tuple[str, ...], asked: tuple[str, ...],
                view: MonitorView) -> None:
        """Show the watching of ``folders`` (``asked``: the ones named by the user) until Ctrl+C;
        :class:`~futurnal.admin.errors.AdminError` when the watch ends otherwise."""
