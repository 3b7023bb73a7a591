"""The name of every actor of the tree, made in one place.

A restart makes a new actor, so actors find each other by name in the actor directory, never by
a kept ref; the admin console shows these names too (``ctl actors``). Supervisor and root names
are the ids their parents start them under.
"""

from __future__ import annotations

__all__ = [
    "ATTACHMENTS", "LEASES_ROOT", "LEASE_KEEPER", "SCHEDULER", "SCHEDULER_ROOT", "SINK", "SINK_ROOT",
    "fetcher", "folder_watcher", "folders_watcher", "is_supervisor", "mailbox", "mailbox_root", "supervisor",
]

#: The sink, the only writer of the element store.
SINK = "sink"
#: The attachment processor (queue, blobs, extraction), under the sink's root.
ATTACHMENTS = "attachments"
#: The scheduler, sending each mailbox its SyncTick.
SCHEDULER = "scheduler"
#: The root supervisor of the sink and the attachment processor.
SINK_ROOT = "root/sink"
#: The root supervisor of the scheduler.
SCHEDULER_ROOT = "root/scheduler"
#: With a shared PostgreSQL store: the keeper of this process's mailbox leases, and its root.
LEASE_KEEPER = "leases"
LEASES_ROOT = "root/leases"

_SUPERVISOR_PREFIXES = ("root/", "supervisor/")


def fetcher(mailbox_id: str) -> str:
    """The mailbox's FetcherActor: its IMAP connection and folder syncs."""
    return f"fetcher/{mailbox_id}"


def mailbox(mailbox_id: str) -> str:
    """The mailbox's MailboxActor: its sync runs."""
    return f"mailbox/{mailbox_id}"


def folder_watcher(mailbox_id: str, folder: str) -> str:
    """The FolderWatcher of one folder of the mailbox."""
    return f"watcher/{mailbox_id}/{folder}"


def folders_watcher(mailbox_id: str) -> str:
    """The one FolderWatcher of several folders of the mailbox (NOTIFY, else IDLE per folder)."""
    return f"watcher/{mailbox_id}/*"


def supervisor(mailbox_id: str) -> str:
    """The supervisor of the mailbox's fetcher, mailbox actor and watchers."""
    return f"supervisor/{mailbox_id}"


def mailbox_root(mailbox_id: str) -> str:
    """The root supervisor holding the mailbox's supervisor."""
    return f"root/{mailbox_id}"


def is_supervisor(name: str) -> bool:
    """Whether ``name`` is a supervisor's (a root or a mailbox's), which can be asked for its children."""
    return name.startswith(_SUPERVISOR_PREFIXES)
