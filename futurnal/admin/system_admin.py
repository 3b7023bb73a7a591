"""The admin use cases in the process that runs the actor system: what the admin console's commands
and an embedding application ask of it.

The files change as :class:`~futurnal.admin.local.LocalAdmin` changes them for a command (the
same audit entries); then the system's actors follow at once: a new mailbox starts, a removed or
revoked one stops, a schedule is taken, a new download budget or a renewed secret restarts the
mailbox. Each use case is one change of the system: no start, reload or stop comes between its
file part and its actors' part. The system is reached through :class:`RunningSystem`, so this
module imports no actor system.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from loguru import logger

from futurnal.storage.consent import SCOPES, ConsentRecord
from futurnal.storage.purge import MailboxDataOwners, remove_mailbox
from futurnal.storage.registry import MailboxRecord, MailboxRegistry

from .local import LocalAdmin

__all__ = ["RunningSystem", "SystemAdmin"]


class RunningSystem(Protocol):
    """The life cycle the admin use cases drive: a :class:`~futurnal.system.ActorSystem`."""

    @property
    def running(self) -> bool: ...

    def one_change(self) -> AbstractContextManager[object]:
        """Held for a whole use case: starting, reloading and stopping wait for it (it is reentrant)."""

    def writable_registry(self) -> AbstractContextManager[MailboxRegistry]:
        """The registry for writing: a running system holds the data directory's lock already."""

    def would_run(self, mailbox_id: str) -> bool:
        """A reload would start this newly registered mailbox: the system runs every one, or it among others."""

    def runs(self, mailbox_id: str) -> bool:
        """The mailbox's actors are part of the running system."""

    def reload(self) -> object:
        """Re-read the registry and schedules; start, stop and restart the mailboxes that changed."""

    def withhold(self, mailbox_id: str) -> None:
        """Stop the mailbox's actors, if they run, and start none until :meth:`admit`."""

    def admit(self, mailbox_id: str) -> bool:
        """A withheld mailbox may start again at the next reload; False when it was not withheld."""

    def restart_mailbox(self, mailbox_id: str) -> bool:
        """Start a running mailbox's actors afresh; False when they could not start (it no longer runs)."""

    def data_owners(self) -> MailboxDataOwners | None:
        """Who deletes a purged mailbox's elements and attachments: the actors that write them while
        the system runs; None when the files are the caller's to delete."""

    def request_sync(self, mailbox_id: str, folders: tuple[str, ...] = (), reason: str = "manual") -> object:
        """Ask for a sync of a running mailbox now."""


class SystemAdmin:
    """The admin use cases on ``system``; ``files`` is its data directory's :class:`LocalAdmin`,
    handed the system's own way to the registry."""

    def __init__(self, system: RunningSystem, files: LocalAdmin) -> None:
        self._system = system
        self._files = files

    def add_mailbox(self, record: MailboxRecord, *, consent: bool | tuple[str, ...], granted_by: str,
                    password: str | None = None) -> MailboxRecord:
        """Register ``record``, store its ``password`` in the credential store, record consent.

        ``consent`` True grants every scope (metadata, content, attachments); a tuple grants those.
        Without a consent (here or from ``consent grant``) the mailbox is registered but nothing is
        fetched. On a running system the mailbox's actors start at once (a reload).
        Unlike ``imap add`` this does not log in first: the first sync reports a bad password.
        """
        scopes = SCOPES if consent is True else tuple(consent or ())
        if set(scopes) - set(SCOPES):  # checked before anything is written
            raise ValueError(f"consent scopes must be some of {', '.join(SCOPES)}, not {', '.join(scopes)}")
        with self._system.one_change():
            store_password = None if password is None else (
                lambda: self._files.credentials.set_secret(record.id, "password", password))
            self._files.add_mailbox(record, scopes, granted_by, store_password)
            if self._system.would_run(record.id):
                self._system.reload()
        return record

    def remove_mailbox(self, mailbox_id: str, *, purge: bool) -> dict[str, int]:
        """Unregister a mailbox (stopping its actors when running) and, with ``purge``, delete its
        elements, quarantine and sync state; audited. Its secrets are the caller's to delete."""
        with self._system.one_change(), self._system.writable_registry() as registry:
            key = registry.get(mailbox_id).id
            self._system.withhold(key)  # its actors stop before its files go, so none of them writes into a purge
            self._system.admit(key)
            return remove_mailbox(self._files.data_dir, registry, key, purge=purge, owners=self._system.data_owners())

    def set_schedule(self, mailbox_id: str, schedule: str | None, priority: str | None) -> MailboxRecord:
        """Store a mailbox's schedule and/or priority (already validated); a running system's
        scheduler takes them at once, as after SIGHUP."""
        with self._system.one_change():
            record = self._files.store_schedule(mailbox_id, schedule, priority)
        if self._system.running:
            self._system.reload()
        return record

    def set_budget(self, mailbox_id: str, daily_download_mb: int | None) -> MailboxRecord:
        """Store a mailbox's daily download budget in MB (None: none); on a running system the
        reload restarts the mailbox's actors (its connection settings changed), so its fetcher
        counts against the new budget from then on, as after SIGHUP."""
        with self._system.one_change():
            record = self._files.store_budget(mailbox_id, daily_download_mb)
            if self._system.running:
                self._system.reload()
        return record

    def grant_consent(self, mailbox_id: str, granted_by: str, scopes: tuple[str, ...],
                      expires_at: str | None = None) -> ConsentRecord:
        """Record consent (audited); a mailbox stopped by :meth:`revoke_consent` starts again."""
        with self._system.one_change():  # one consent change at a time: a grant and a revoke must not interleave
            consent = self._files.grant_consent(mailbox_id, granted_by, scopes, expires_at)
            if self._system.admit(mailbox_id) and self._system.running:
                self._system.reload()
        return consent

    def revoke_consent(self, mailbox_id: str) -> bool:
        """Withdraw consent (audited) and stop the mailbox's actors; False if there was none."""
        with self._system.one_change():
            revoked = self._files.revoke_consent(mailbox_id)
            self._system.withhold(mailbox_id)
        return revoked

    def reauthenticated(self, mailbox_id: str, auth: str | None = None) -> bool:
        """The mailbox's secret in the keyring was renewed (``imap reauth``): audit it, and start
        its actors again, so watchers stopped by the refused login come back and the fetcher
        connects with the new secret, then sync. False when its actors are not running here
        (no consent, say): the secret is used whenever they start."""
        with self._system.one_change():
            with self._files.data_dir.registry(read_only=True) as registry:
                record = registry.get(mailbox_id)
            here = self._system.runs(record.id)
            # Without its actors here no fetcher owns the mailbox's state file: needs-reauth is cleared.
            self._files.record_reauth(record.id, auth or record.auth, clear_state=not here)
            if not here or not self._system.restart_mailbox(record.id):
                return False
        logger.bind(mailbox=record.id).info("signed in again; its actors restarted")
        self._system.request_sync(record.id, reason="signed in again")
        return True
