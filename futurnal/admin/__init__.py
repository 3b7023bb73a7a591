"""The admin use cases (register, remove, sync, schedule, budget, consent, re-authentication, quarantine,
watching) behind one interface, done by whoever owns the data directory: the caller itself
(:class:`~futurnal.admin.local.LocalAdmin`) or the running ``run`` process, over its admin console
(:class:`~futurnal.admin.remote.RemoteAdmin`). :func:`open_admin` chooses, once per command. In
that process :class:`~futurnal.admin.system_admin.SystemAdmin` does them on its actor system.

Importing this package loads neither implementation: a command that fails early, or only reads,
does not pay for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import AdminError
from .interface import Admin, MonitorView, Reauthentication, Removal, RetryResult, SyncProgress

if TYPE_CHECKING:
    from futurnal.config import ServiceSettings
    from futurnal.storage.credentials import CredentialStore
    from futurnal.storage.data_dir import DataDir
    from futurnal.storage.element_store import ElementStore

    from .local import ActorSystemFactory

__all__ = [
    "Admin",
    "AdminError",
    "MonitorView",
    "Reauthentication",
    "Removal",
    "RetryResult",
    "SyncProgress",
    "open_admin",
]


def open_admin(
    data_dir: DataDir,
    *,
    credentials: CredentialStore,
    settings: Callable[[], ServiceSettings],
    actor_system: ActorSystemFactory,
    element_store: Callable[[], ElementStore] | None = None,
) -> Admin:
    """The running process's admin when one serves ``data_dir`` (its console answers), else this
    caller's own, on the files (``actor_system`` makes the one a sync or a watch runs in)."""
    from futurnal.console.client import connect_if_running

    from .local import LocalAdmin
    from .remote import RemoteAdmin

    local = LocalAdmin(data_dir, credentials=credentials, settings=settings, actor_system=actor_system,
                       element_store=element_store)
    client = connect_if_running(data_dir.root)
    return local if client is None else RemoteAdmin(client, local)
