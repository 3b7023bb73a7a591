"""The admin use cases asked of the running process, over its admin console.

While ``run`` serves a data directory it is the only writer of its files: what would change them
is sent to it (it starts, stops or reschedules the mailbox's actors at once), and what it cannot
do for the caller (the keyring, a sign-in in the caller's browser) is done here around the request.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from futurnal.console.client import ConsoleClient, ConsoleError, connect_if_running
from futurnal.storage.audit_log import AuditEvent
from futurnal.storage.consent import ConsentRecord
from futurnal.storage.quarantine import QuarantineRecord
from futurnal.storage.registry import MailboxRecord, MailboxRegistry
from futurnal.sync.freshness import WATCH_NONE

from .errors import AdminError
from .interface import MonitorView, Reauthentication, Removal, RetryResult, SyncProgress
from .local import LocalAdmin

__all__ = ["RemoteAdmin"]


class RemoteAdmin:
    """:class:`~futurnal.admin.interface.Admin` through ``client``, the console of the process that
    serves ``local``'s data directory; ``local`` reads alongside it, and records what the process
    can no longer be told when it stopped meanwhile."""

    def __init__(self, client: ConsoleClient, local: LocalAdmin) -> None:
        self.client = client
        self._local = local

    def add_mailbox(self, record: MailboxRecord, scopes: tuple[str, ...], granted_by: str,
                    store_secret: Callable[[], None]) -> None:
        with self._local.data_dir.registry(read_only=True) as registry:
            registry.refuse_taken(record)  # before a secret is stored that another mailbox may own
        store_secret()
        try:
            self.client.call("add", record=record.to_document(), scopes=list(scopes), granted_by=granted_by)
        except ConsoleError as exc:
            if exc.code != "timeout":  # refused for sure: never a secret without its mailbox
                self._local.credentials.delete_secrets(record.id)
            raise

    def remove_mailbox(self, mailbox_id: str, purge: bool) -> Removal:
        counts = self.client.call("remove", mailbox=mailbox_id, purge=purge)  # its actors stop before it deletes
        secrets = self._local.credentials.delete_secrets(mailbox_id)
        self._local.data_dir.audit_log().append(AuditEvent.SECRETS_DELETED, mailbox=mailbox_id,
                                                         secrets=len(secrets))
        return Removal(counts, tuple(secrets))

    def status(self, record: MailboxRecord) -> dict[str, Any]:
        try:
            return dict(self.client.call("status", mailbox=record.id)["mailboxes"][0])
        except ConsoleError:  # not one of its mailboxes (consent revoked, or started for others)
            return self._local.status(record)

    def sync(self, record: MailboxRecord, folders: tuple[str, ...] = (), *, timeout: float | None = None,
             progress: SyncProgress | None = None, say: Callable[[str], None] | None = None) -> dict[str, Any]:
        if say is not None:
            say(f"syncing {record.id} through the running process (pid {self.client.server_pid})")
        return dict(self.client.call("sync", mailbox=record.id, folders=list(folders),
                                     **_given(timeout=timeout)))

    def set_schedule(self, mailbox_id: str, schedule: str | None, priority: str | None) -> dict[str, Any]:
        return dict(self.client.call("schedule", mailbox=mailbox_id,
                                     **_given(spec=schedule),
                                     **_given(priority=priority)))

    def set_budget(self, mailbox_id: str, daily_download_mb: int | None) -> dict[str, Any]:
        return dict(self.client.call("budget", mailbox=mailbox_id, mb=daily_download_mb or 0))

    def grant_consent(self, mailbox_id: str, granted_by: str, scopes: tuple[str, ...],
                      expires_at: str | None = None) -> ConsentRecord:
        doc = self.client.call("consent", action="grant", mailbox=mailbox_id, scopes=list(scopes),
                               granted_by=granted_by, **_given(expires=expires_at))
        return ConsentRecord(**{**doc["consent"], "scopes": tuple(doc["consent"]["scopes"])})

    def revoke_consent(self, mailbox_id: str) -> bool:
        return bool(self.client.call("consent", action="revoke", mailbox=mailbox_id)["revoked"])

    def reauthenticate(self, record: MailboxRecord,
                       renew: Callable[[MailboxRegistry | None], str]) -> Reauthentication:
        secret_kind = renew(None)  # the process owns the registry: the record stays as it is
        client = connect_if_running(self._local.data_dir.root)  # asked again: the sign-in may have taken minutes
        if client is None:  # the process stopped meanwhile: record it here, as without one
            self._local.reauthenticated(record)
            return Reauthentication(secret_kind, None)
        restarted = client.call("reauthenticated", mailbox=record.id, auth=record.auth)["restarted"]
        return Reauthentication(secret_kind, bool(restarted))

    def retry_quarantined(self, record_id: str | None) -> list[RetryResult]:
        result = self.client.call("quarantine", action="retry", **_given(id=record_id))
        return [RetryResult(o["record_id"], o["element_id"], o["error"]) for o in result["outcomes"]]

    def drop_quarantined(self, record_id: str) -> QuarantineRecord | None:
        self.client.call("quarantine", action="drop", id=record_id)
        return None

    def monitor(self, record: MailboxRecord, folders: tuple[str, ...], asked: tuple[str, ...],
                view: MonitorView) -> None:
        """`run` watches the mailbox already (its own watched folders): show its events."""
        try:
            live = self.client.call("status", mailbox=record.id)["mailboxes"]
        except ConsoleError as exc:
            if exc.code != "unknown-mailbox":
                raise
            live = []
        watched = [f["folder"] for f in live[0]["folders"] if f.get("watch", WATCH_NONE) != WATCH_NONE] if live else []
        doing = (f"watches {record.id} itself: {', '.join(watched)}" if watched
                 else f"runs {record.id} but watches none of its folders (it syncs on its schedule)")
        view.say(f"`run` (pid {self.client.server_pid}) owns this data directory and {doing}; showing its events. "
                 f"Ctrl+C stops this view, not the service")
        if not live:
            view.say(f"note: {record.id} is not running in that process (no consent?); its events will not come")
        unwatched = [folder for folder in asked if folder not in watched]
        if unwatched:
            view.say(f"note: the process does not watch {', '.join(unwatched)} (the mailbox's --watch setting "
                     "decides)")
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            for doc in self.client.events():
                if doc.get("mailbox") not in (None, record.id):
                    continue
                view.show(doc)
                if doc["event"] == "watch-needs-reauth":
                    raise AdminError(f"{doc['detail']} (futurnal-actors imap reauth {record.id})")
        except KeyboardInterrupt:
            return
        finally:
            signal.signal(signal.SIGTERM, previous)
        raise AdminError("the running process stopped; nothing watches the mailbox now")


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def _given(**values: Any) -> dict[str, Any]:
    """The optional request arguments that have a value: the console tells absent from null."""
    return {name: value for name, value in values.items() if value is not None}
