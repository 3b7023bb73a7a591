"""The supervision tree: root -> sink, one supervisor per mailbox (fetcher, mailbox), scheduler."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from futurnal.actors.directory import ActorDirectory
from futurnal.actors.messages import Ping
from futurnal.actors.fetcher import FetcherActor
from futurnal.actors.mailbox import MailboxActor
from futurnal.actors.scheduler import SchedulerActor
from futurnal.schedules import scheduled_mailboxes
from futurnal.actors.sink import ElementSink, SinkActor
from futurnal.config import ServiceSettings
from futurnal.events import EventBus
from futurnal.actors.folder_watcher import FolderWatcher
from futurnal.mail.connection_budget import ConnectionBudget
from futurnal.mail.connector import MailboxConnector
from futurnal.mail.folder_sync import utc_now
from futurnal.mail.idle_watch import WatchSettings
from futurnal.storage.audit_log import AuditLog
from futurnal.storage.sync_state import FolderStateStore
from futurnal.storage.credentials import CredentialStore
from futurnal.storage.data_dir import DataDir
from futurnal.storage.registry import MailboxRecord

from .restart_intensity import RestartIntensity
from .supervisor import ChildSpec, Supervisor

__all__ = ["TreeContext", "start_root"]


@dataclass(frozen=True, slots=True)
class TreeContext:
    """What every actor of one system shares, handed down explicitly (no globals)."""

    settings: ServiceSettings
    data_dir: DataDir
    credentials: CredentialStore
    directory: ActorDirectory
    events: EventBus
    stopping: threading.Event
    watch: bool = True

    def intensity(self) -> RestartIntensity:
        return RestartIntensity(self.settings.max_restarts, self.settings.restart_window_seconds)


def _mailbox_supervisor_spec(context: TreeContext, record: MailboxRecord) -> ChildSpec:
    # One budget per mailbox, outliving restarts of the actors that draw on it.
    budget = ConnectionBudget(context.settings.max_connections_per_mailbox)
    connect = MailboxConnector(
        record, context.credentials, connect_timeout=context.settings.connect_timeout_seconds,
        read_timeout=context.settings.read_timeout_seconds, budget=budget,
    )

    def start_fetcher(parent: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
        return FetcherActor.start(
            record=record,
            settings=context.settings,
            data_dir=context.data_dir,
            connect=connect,
            directory=context.directory,
            events=context.events,
            stopping=context.stopping,
            supervisor=parent,
        )

    def start_mailbox(parent: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
        return MailboxActor.start(
            mailbox_id=record.id,
            directory=context.directory,
            events=context.events,
            supervisor=parent,
        )

    timeout = context.settings.stop_timeout_seconds
    children = [
        ChildSpec(f"fetcher/{record.id}", start_fetcher, shutdown_timeout=timeout),
        ChildSpec(f"mailbox/{record.id}", start_mailbox, shutdown_timeout=timeout),
    ]
    if context.watch:
        children += [_watcher_spec(context, record, folder, connect) for folder in watched_folders(record, budget)]

    def park(reason: str) -> None:
        # Runs after the mailbox's actors have stopped, so the state file has no other writer.
        states = FolderStateStore(context.data_dir.state_path(record.id))
        try:
            states.set_parked(reason, utc_now())
        finally:
            states.close()
        AuditLog(context.data_dir.audit_path).append("mailbox-parked", mailbox=record.id, reason=reason)

    def start_supervisor(parent: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
        return Supervisor.start(
            child_id=f"supervisor/{record.id}",
            specs=children,
            directory=context.directory,
            intensity=context.intensity(),
            supervisor=parent,
            on_give_up=park,
        )

    # Temporary: a mailbox whose actors keep failing is parked (with its reason in `imap status`)
    # rather than restarted by the root, whose own intensity would then take every mailbox down.
    return ChildSpec(
        f"supervisor/{record.id}", start_supervisor, restart="temporary", shutdown_timeout=timeout * 2
    )


def watched_folders(record: MailboxRecord, budget: ConnectionBudget) -> tuple[str, ...]:
    """The folders that get a watcher: as many as the budget leaves beside the fetcher's connection.

    The others are still synced on the mailbox's schedule.
    """
    return record.watch[: max(budget.limit - 1, 0)]


def _watcher_spec(context: TreeContext, record: MailboxRecord, folder: str, connect: MailboxConnector) -> ChildSpec:
    settings = WatchSettings(
        renew_seconds=context.settings.idle_renew_seconds, poll_seconds=context.settings.poll_seconds
    )

    def start_watcher(parent: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
        return FolderWatcher.start(
            mailbox_id=record.id, folder=folder, connect=connect, directory=context.directory,
            events=context.events, settings=settings, supervisor=parent,
        )

    return ChildSpec(f"watcher/{record.id}/{folder}", start_watcher, shutdown_timeout=context.settings.stop_timeout_seconds)


def start_root(
    context: TreeContext,
    *,
    sink: ElementSink,
    mailboxes: list[MailboxRecord],
    schedule: bool,
    on_give_up: Callable[[str], None],
) -> pykka.ActorRef[Any]:
    """Start the whole tree; children start in this order and stop in the reverse one.

    The sink starts first and stops last, so writes in flight during shutdown still land.
    """
    specs = [ChildSpec("sink", lambda parent: SinkActor.start(sink=sink, supervisor=parent))]
    specs += [_mailbox_supervisor_spec(context, record) for record in mailboxes]
    if schedule:
        plans = scheduled_mailboxes(mailboxes)
        specs.append(
            ChildSpec(
                "scheduler",
                lambda parent: SchedulerActor.start(
                    directory=context.directory, mailboxes=plans,
                    max_concurrent=context.settings.max_concurrent_syncs, supervisor=parent,
                ),
            )
        )
    root = Supervisor.start(
        child_id="root",
        specs=specs,
        directory=context.directory,
        intensity=context.intensity(),
        on_give_up=on_give_up,
    )
    root.ask(Ping(), timeout=60)
    return root
