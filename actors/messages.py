"""Every message the actors exchange: immutable facts and commands.

The messages of supervision (``Ping``, ``ChildExited``, ``PoisonMessage``, ``SiblingRestarted``,
``DescribeChildren``) are :mod:`futurnal.supervisors.protocol`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pykka import Future

from futurnal.attachments.plan import AttachmentWork
from futurnal.storage.attachment_queue import AttachmentJob
from futurnal.storage.element_store import ElementKey
from futurnal.sync.folder_sync import FolderSyncResult
from futurnal.sync.sync_runs import MailboxSyncReport

__all__ = [
    "DescribeMailbox",
    "CountPendingAttachments",
    "ExtractionFinished",
    "FolderChanged",
    "FolderSynced",
    "FolderWatchSeen",
    "ForgetMailbox",
    "FoldersResolved",
    "MarkDeleted",
    "MailboxSyncReport",
    "PauseMailbox",
    "ResolveFolders",
    "ResumeMailbox",
    "SubmitAttachments",
    "SyncFolder",
    "SyncTick",
    "UpdateAttachments",
    "UpdateFlags",
    "WriteElements",
]


@dataclass(frozen=True, slots=True)
class SyncTick:
    """Sync this mailbox now. ``reply_to`` gets a :class:`MailboxSyncReport` when the sync is done."""

    reason: str = "interval"
    folders: tuple[str, ...] = ()
    reply_to: Future[MailboxSyncReport] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ResolveFolders:
    """Command to the fetcher: resolve the mailbox's folder selection against LIST (run ``run_id``)."""

    run_id: int


@dataclass(frozen=True, slots=True)
class FoldersResolved:
    """The fetcher's answer to :class:`ResolveFolders`: the folders to sync, and per-folder errors."""

    run_id: int
    folders: tuple[str, ...]
    errors: tuple[tuple[str, str], ...] = ()
    needs_reauth: bool = False
    #: The error is a fault of this machine's (see ``LocalFault``): the mailbox retries by itself.
    local_fault: bool = False
    #: The provider holds the mailbox back until this UTC time: the mailbox retries once, then.
    held_until: str | None = None


@dataclass(frozen=True, slots=True)
class SyncFolder:
    """Command to the fetcher: bring one folder up to date (part of sync run ``run_id``)."""

    run_id: int
    folder: str


@dataclass(frozen=True, slots=True)
class FolderChanged:
    """From a folder watcher: the server said the folder changed (or the watcher reconnected)."""

    folder: str
    reason: str


@dataclass(frozen=True, slots=True)
class FolderWatchSeen:
    """From a folder watcher, through the mailbox actor, to the fetcher (the one writer of the
    folder-state file): what the watcher saw at ``at`` (UTC): a server notification, or a
    connection in ``mode``."""

    folder: str
    at: str
    server_event: bool
    mode: str | None = None


@dataclass(frozen=True, slots=True)
class FolderSynced:
    """The fetcher's answer to :class:`SyncFolder`: a result, or a one-line error."""

    run_id: int
    folder: str
    result: FolderSyncResult | None = None
    error: str | None = None
    needs_reauth: bool = False
    #: The error is a fault of this machine's (see ``LocalFault``): the mailbox retries by itself.
    local_fault: bool = False
    #: The provider holds the mailbox back until this UTC time: the mailbox retries once, then.
    held_until: str | None = None


@dataclass(frozen=True, slots=True)
class WriteElements:
    """Command to the sink: write these elements durably, then answer with how many."""

    elements: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class UpdateFlags:
    """Command to the sink: set these stored elements' flags; answers with how many changed."""

    updates: tuple[tuple[ElementKey, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class MarkDeleted:
    """Command to the sink: turn these elements into tombstones; answers with how many were live."""

    keys: tuple[ElementKey, ...]
    when: str


@dataclass(frozen=True, slots=True)
class UpdateAttachments:
    """Command to the sink: record extraction results (``index``, ``sha256``, ``status``, ``text``)
    in these elements; answers with how many changed. Idempotent."""

    updates: tuple[tuple[ElementKey, tuple[dict[str, Any], ...]], ...]


@dataclass(frozen=True, slots=True)
class SubmitAttachments:
    """From a fetcher to the attachment processor: keep these blobs and queue these extractions
    durably, then answer (the folder's watermark waits for that answer)."""

    work: tuple[AttachmentWork, ...]


@dataclass(frozen=True, slots=True)
class CountPendingAttachments:
    """Query to the attachment processor: how many elements still wait for extractions."""


@dataclass(frozen=True, slots=True)
class ExtractionFinished:
    """From one of the processor's workers to the processor: a job's results are with the sink
    (``stored``) or could not be delivered."""

    job: AttachmentJob
    stored: bool


@dataclass(frozen=True, slots=True)
class PauseMailbox:
    """Command to a mailbox actor: start no syncs until :class:`ResumeMailbox`.

    A run in flight finishes; ticks and watcher notifications meanwhile are remembered as one
    catch-up sync at resume. Answers with the mailbox's :class:`DescribeMailbox` snapshot.
    """


@dataclass(frozen=True, slots=True)
class ResumeMailbox:
    """Command to a mailbox actor: sync again (at once, if anything was missed while paused)."""


@dataclass(frozen=True, slots=True)
class DescribeMailbox:
    """Query to a mailbox actor: its live state (idle / syncing / paused / needs-reauth) as a dict."""


@dataclass(frozen=True, slots=True)
class ForgetMailbox:
    """Command to the sink and to the attachment processor (a purge): delete what each keeps of
    ``mailbox``, in its own thread so no write of theirs races the deletion; answers with a count."""

    mailbox: str
