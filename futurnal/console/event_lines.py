"""Events of the actor system as the console's ``subscribe`` stream sends them: plain JSON objects.

Only counts, folder names and ids: never subjects, addresses or message text, so a stream can be
logged or shown on a shared screen. Free text (errors, reasons) passes through the log redaction.
"""

from __future__ import annotations

from typing import Any

from futurnal.imap.idle_watch import WatchEvent
from futurnal.logs.configure import redactor
from futurnal.storage.clock import utc_now
from futurnal.supervisors.protocol import ActorRestarting
from futurnal.sync.folder_sync import MessageQuarantined, SyncProgress
from futurnal.sync.provider_holds import MailboxThrottled
from futurnal.sync.sync_runs import MailboxSyncReport, SyncStarted

__all__ = ["event_document"]


def event_document(event: Any) -> dict[str, Any] | None:
    """The stream line for ``event``; None for events the stream does not carry."""
    doc: dict[str, Any] | None
    if isinstance(event, SyncStarted):
        doc = {"event": "sync-started", "mailbox": event.mailbox, "folders": list(event.folders)}
    elif isinstance(event, SyncProgress):
        doc = {"event": "sync-progress", "mailbox": event.mailbox, "folder": event.folder, "done": event.done,
               "total": event.total}
    elif isinstance(event, MailboxSyncReport):
        report = event.to_document()
        report["errors"] = [{"folder": e["folder"], "error": redactor.redact(e["error"])} for e in report["errors"]]
        doc = {"event": "sync-finished", **report}
    elif isinstance(event, MessageQuarantined):
        doc = {"event": "quarantined", "mailbox": event.mailbox, "folder": event.folder, "uid": event.uid,
               "reason": redactor.redact(event.reason)}
    elif isinstance(event, ActorRestarting):
        doc = {"event": "actor-restarting" if event.restarted else "actor-stopped", "actor": event.child_id,
               "reason": redactor.redact(event.reason), "deaths": event.deaths}
    elif isinstance(event, MailboxThrottled):
        doc = {"event": "mailbox-throttled", "mailbox": event.mailbox, "kind": event.kind, "until": event.until,
               "reason": redactor.redact(event.reason), "repeats": event.repeats}
    elif isinstance(event, WatchEvent):
        doc = {"event": f"watch-{event.kind}", "mailbox": event.mailbox, "folder": event.folder,
               "detail": redactor.redact(event.detail)}
    else:
        return None
    return {"time": utc_now(), **doc}
