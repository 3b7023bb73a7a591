"""Unregistering a mailbox, and with ``purge`` deleting everything stored of it (one place for both
``imap remove`` and a running process asked to do it)."""

from __future__ import annotations

import shutil
from typing import Protocol

from .attachment_queue import AttachmentJobQueue
from .audit_log import AuditEvent
from .blob_store import BlobStore
from .data_dir import DataDir
from .registry import MailboxRegistry
from .stores import open_store

__all__ = ["MailboxDataOwners", "remove_mailbox"]


class MailboxDataOwners(Protocol):
    """Whoever writes a mailbox's elements and attachment data; a running system's sink and
    attachment processor delete them in their own threads (a purge must not race their writes)."""

    def forget_elements(self, mailbox_id: str) -> int: ...

    def forget_attachments(self, mailbox_id: str) -> int: ...


class _FilesOnDisk:
    """No process running: the stores are deleted directly (the caller holds the lock)."""

    def __init__(self, data_dir: DataDir) -> None:
        self._data_dir = data_dir

    def forget_elements(self, mailbox_id: str) -> int:
        shared = self._data_dir.shared
        store = open_store(self._data_dir, url=shared.url if shared is not None else "")
        try:
            return store.remove_mailbox(mailbox_id)
        finally:
            store.close()

    def forget_attachments(self, mailbox_id: str) -> int:
        AttachmentJobQueue(self._data_dir.attachment_queue_root).remove_mailbox(mailbox_id)
        return BlobStore(self._data_dir.blobs_root).remove_mailbox(mailbox_id)


def remove_mailbox(data_dir: DataDir, registry: MailboxRegistry, mailbox_id: str, *, purge: bool,
                   secrets: int = 0, owners: MailboxDataOwners | None = None) -> dict[str, int]:
    """Unregister ``mailbox_id`` and withdraw its consent; with ``purge`` also delete its elements,
    quarantined messages, attachment blobs (those no other mailbox shares) and queued extractions,
    sync state and Gmail index. Audited with the counts (``secrets``: how many
    the caller deleted from the keyring). The caller holds the data directory's lock."""
    if data_dir.shared is not None:  # first: whichever process runs it writes nothing more for it
        data_dir.shared.retire_lease(mailbox_id)
    data_dir.consent().revoke(mailbox_id)
    counts = {"secrets": secrets}
    if purge:
        owners = owners or _FilesOnDisk(data_dir)
        counts["blobs"] = owners.forget_attachments(mailbox_id)  # first: its late results then find no element
        counts["elements"] = owners.forget_elements(mailbox_id)
        counts["quarantined"] = data_dir.quarantine().remove_mailbox(mailbox_id)
        data_dir.remove_state(mailbox_id)
        shutil.rmtree(data_dir.gmail_index_root(mailbox_id), ignore_errors=True)
    registry.remove(mailbox_id)  # last: a purge that failed half-way can be run again
    if data_dir.shared is not None:
        data_dir.shared.drop_lease(mailbox_id)
    data_dir.audit_log().append(AuditEvent.MAILBOX_PURGED if purge else AuditEvent.MAILBOX_REMOVED,
                                mailbox=mailbox_id, **counts)
    return counts
