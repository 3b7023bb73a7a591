"""Run the actor system just long enough to sync one mailbox, showing progress."""

from __future__ import annotations

import time

from typing import TYPE_CHECKING, Any

from futurnal.storage.consent import ConsentRegistry, NoConsent
from futurnal.storage.registry import MailboxRecord

from .context import CommandContext
from .output import ProgressBar, UserError

if TYPE_CHECKING:
    from futurnal.sync.sync_runs import MailboxSyncReport

__all__ = ["run_sync"]


def run_sync(
    ctx: CommandContext,
    record: MailboxRecord,
    folders: tuple[str, ...] = (),
    *,
    timeout: float | None = None,
    show_progress: bool = True,
    progress: ProgressBar | None = None,
) -> MailboxSyncReport:
    """Sync ``record`` through the real actor tree and return the report."""
    # Imported here: the actor system is most of the CLI's start-up, and most commands need none of it.
    import pykka

    from futurnal.sync.folder_sync import SyncProgress
    from futurnal.system import ActorSystem, SystemNotRunning

    bar = progress or ProgressBar(f"syncing {record.id}", enabled=None if show_progress else False)

    def on_event(event: Any) -> None:
        if isinstance(event, SyncProgress):
            bar.update(event.done, event.total, event.folder)

    try:
        ConsentRegistry(ctx.data_dir.consent_path).require(record.id)
    except NoConsent as exc:
        raise UserError(str(exc)) from None
    system = ActorSystem(ctx.data_dir.root, settings=ctx.settings(), credentials=ctx.credentials)
    try:
        system.start([record.id], schedule=False, watch=False)
    except SystemNotRunning as exc:
        raise UserError(str(exc)) from None
    unsubscribe = system.subscribe(on_event)
    try:
        started = time.monotonic()
        report = system.sync(record.id, folders, timeout=timeout)
        # A one-shot sync also waits for its attachments' text (each extraction is time-limited);
        # what a --timeout leaves undone is extracted at the next sync or `run`.
        system.wait_for_attachments(None if timeout is None else max(timeout - (time.monotonic() - started), 0))
        return report
    except SystemNotRunning as exc:
        raise UserError(str(exc)) from None
    except pykka.Timeout:
        raise UserError(f"sync of {record.id} did not finish within {timeout:g}s; it resumes next time") from None
    finally:
        unsubscribe()
        bar.finish()
        system.stop()
