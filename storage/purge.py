"""Unregistering a mailbox, and with ``purge`` deleting everything stored of it (one place for both
``imap remove`` and a running process asked to do it)."""

from __future__ import annotations

import shutil

from .attachment_queue import AttachmentJobQueue
from .audit_log import AuditLog
from .blob_store import BlobStore
from .consent import ConsentRegistry
from .data_dir import DataDir
from .element_store import ElementStore
from .quarantine import QuarantineStore
from .registry import MailboxRegistry

__all__ = ["remove_mailbox"]


def remove_mailbox(data_dir: DataDir, registry: MailboxRegistry, mailbox_id: str, *, purge: bool,
                   secrets: int = 0) -> dict[str, int]:
    """Unregister ``mailbox_id`` and withdraw its consent; with ``purge`` also delete its elements,
    quarantined messages, attachment blobs (those no other mailbox shares) and queued extractions,
    sync state and Gmail index. Audited with the counts (``secrets``: how many
    the caller deleted from the keyring). The caller holds the data directory's lock."""
    registry.remove(mailbox_id)
    ConsentRegistry(data_dir.consent_path).revoke(mailbox_id)
    counts = {"secrets": secrets}
    if purge:
        counts["elements"] = ElementStore(data_dir.elements_root).remove_mailbox(mailbox_id)
        counts["quarantined"] = QuarantineStore(data_dir.quarantine_root).remove_mailbox(mailbox_id)
        counts["blobs"] = BlobStore(data_dir.blobs_root).remove_mailbox(mailbox_id)
        AttachmentJobQueue(data_dir.attachment_queue_root).remove_mailbox(mailbox_id)
        data_dir.state_path(mailbox_id).unlink(missing_ok=True)
        shutil.rmtree(data_dir.gmail_index_root(mailbox_id), ignore_errors=True)
    AuditLog(data_dir.audit_path).append("mailbox-purged" if purge else "mailbox-removed", mailbox=mailbox_id,
                                         **counts)
    return counts
