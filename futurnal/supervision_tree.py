"""The application's wiring: the per-mailbox part of the supervision tree (supervisor -> fetcher,
mailbox actor, watchers) and the shared attachment processor, built from the generic toolkit of
:mod:`futurnal.supervisors` and the actors of :mod:`futurnal.actors`.

``futurnal.system.ActorSystem`` puts each mailbox's supervisor under a root of its own, beside
the sink's root and the scheduler's, so mailboxes can be added and removed (SIGHUP) one by one.
The attachment processor lives under the sink's root, after the sink: it starts after the sink
and stops before it, so its last results still find the sink.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pykka

from futurnal.actors import actor_names
from futurnal.actors.attachment_processor import AttachmentProcessorActor
from futurnal.actors.fetcher import FetcherActor
from futurnal.actors.folder_watcher import FolderWatcher
from futurnal.actors.mailbox import MailboxActor
from futurnal.config import ServiceSettings
from futurnal.events import EventBus
from futurnal.imap.connection_budget import ConnectionBudget
from futurnal.imap.connector import MailboxConnector
from futurnal.imap.idle_watch import WatchSettings
from futurnal.imap.live_connections import LiveConnections
from futurnal.imap.login_rate import LoginRateLimiter
from futurnal.logs.configure import redactor
from futurnal.mailboxes.fault_retry import local_fault_policy
from futurnal.mailboxes.pauses import PauseBoard
from futurnal.mailboxes.reconnects import ReconnectBoard
from futurnal.mailboxes.refused_logins import RefusedLogins
from futurnal.parse.parse_pools import ParsePools
from futurnal.storage.audit_log import AuditEvent
from futurnal.storage.clock import utc_now
from futurnal.storage.credentials import CredentialStore
from futurnal.storage.data_dir import DataDir
from futurnal.storage.registry import MailboxRecord
from futurnal.supervisors.backoff import RestartBackoff, call_later
from futurnal.supervisors.directory import ActorDirectory
from futurnal.supervisors.restart_intensity import RestartIntensity
from futurnal.supervisors.supervisor import ChildSpec, Supervisor
from futurnal.sync.freshness import WATCH_IDLE, watch_plan
from futurnal.sync.provider_holds import HoldPolicy

__all__ = ["TreeContext", "attachment_processor_spec", "live_connections", "mailbox_supervisor_spec",
           "watched_folders"]


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
    #: Sync a mailbox again, with back-off, after a local fault stopped it (a full disk): what a
    #: long-running system does; a one-shot sync reports the fault and ends instead.
    retry_local_faults: bool = True
    pauses: PauseBoard = field(default_factory=PauseBoard)
    #: Every open IMAP connection, cut at once when the system stops, and the login turns per
    #: server host that new ones wait for (see :func:`live_connections`).
    connections: LiveConnections = field(default_factory=LiveConnections)
    refused_logins: RefusedLogins = field(default_factory=RefusedLogins)
    #: The watched folders waiting to reconnect, kept from the events the system publishes.
    reconnects: ReconnectBoard = field(default_factory=ReconnectBoard)
    #: Parser processes lent to whichever mailbox syncs (see :func:`parse_pools`).
    parse_pools: ParsePools = field(default_factory=ParsePools)

    def intensity(self) -> RestartIntensity:
        return RestartIntensity(self.settings.max_restarts, self.settings.restart_window_seconds)


def live_connections(settings: ServiceSettings) -> LiveConnections:
    """One system's connections, with its logins paced per host as ``[network]`` says."""
    return LiveConnections(LoginRateLimiter(settings.logins_per_second_per_host, settings.login_burst_per_host))


def parse_pools(settings: ServiceSettings) -> ParsePools:
    """One system's parser pools: as many kept warm as syncs run at once, whatever the number of
    mailboxes, each of ``[sync] parse_workers`` processes."""
    return ParsePools(settings.parse_workers, settings.parse_timeout_seconds, settings.parse_memory_mb,
                      keep=settings.max_concurrent_syncs)


def attachment_processor_spec(context: TreeContext) -> ChildSpec:
    """The shared attachment processor; restarted like any child, it re-reads its disk queue."""

    def start_processor(parent: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
        return AttachmentProcessorActor.start(
            settings=context.settings.attachments, data_dir=context.data_dir, directory=context.directory,
            write_timeout=context.settings.write_timeout_seconds, supervisor=parent,
        )

    return ChildSpec(actor_names.ATTACHMENTS, start_processor, shutdown_timeout=context.settings.stop_timeout_seconds)


def mailbox_supervisor_spec(context: TreeContext, record: MailboxRecord) -> ChildSpec:
    context.reconnects.forget(record.id)  # watchers of an earlier start (a reload) wait no more
    # One budget per mailbox, outliving restarts of the actors that draw on it.
    budget = ConnectionBudget(context.settings.max_connections_per_mailbox)
    connect = MailboxConnector(
        record, context.credentials, secret_registry=redactor, connect_timeout=context.settings.connect_timeout_seconds,
        read_timeout=context.settings.read_timeout_seconds, budget=budget,
        max_message_bytes=context.settings.batch.max_message_bytes,
        min_transfer_rate=context.settings.min_transfer_bytes_per_second, live=context.connections,
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
            parse_pools=context.parse_pools,
            supervisor=parent,
        )

    # Outlives restarts of the mailbox actor, like the budget: a fault that lasts keeps backing off.
    fault_retry = RestartBackoff(local_fault_policy())

    def start_mailbox(parent: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
        return MailboxActor.start(
            mailbox_id=record.id,
            directory=context.directory,
            events=context.events,
            pauses=context.pauses,
            refused_logins=context.refused_logins,
            retry=fault_retry if context.retry_local_faults else None,
            schedule=call_later,
            supervisor=parent,
        )

    timeout = context.settings.stop_timeout_seconds
    children = [
        ChildSpec(actor_names.fetcher(record.id), start_fetcher, shutdown_timeout=timeout),
        ChildSpec(actor_names.mailbox(record.id), start_mailbox, shutdown_timeout=timeout),
    ]
    if context.watch:
        children += _watcher_specs(context, record, connect, watched_folders(record, budget))

    def park(reason: str) -> None:
        # Runs after the mailbox's actors have stopped, so the state file has no other writer.
        context.reconnects.forget(record.id)
        states = context.data_dir.folder_states(record.id)
        try:
            states.set_parked(reason, utc_now())
        finally:
            states.close()
        context.data_dir.audit_log().append(AuditEvent.MAILBOX_PARKED, mailbox=record.id, reason=reason)

    def start_supervisor(parent: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
        return Supervisor.start(
            child_id=actor_names.supervisor(record.id),
            specs=children,
            directory=context.directory,
            intensity=context.intensity(),
            supervisor=parent,
            on_give_up=park,
            publish=context.events.publish,
        )

    # Temporary: a mailbox whose actors keep failing is parked (with its reason in `imap status`)
    # rather than restarted by the root, whose own intensity would then take every mailbox down.
    return ChildSpec(
        actor_names.supervisor(record.id), start_supervisor, restart="temporary", shutdown_timeout=timeout * 2
    )


def watched_folders(record: MailboxRecord, budget: ConnectionBudget) -> tuple[str, ...]:
    """The folders that get a watcher: as many as the budget leaves beside the fetcher's connection.

    The others are still synced on the mailbox's schedule.
    """
    return tuple(folder for folder, how in watch_plan(record.watch, budget.limit).items() if how == WATCH_IDLE)


def _watcher_specs(
    context: TreeContext, record: MailboxRecord, connect: MailboxConnector, within_budget: tuple[str, ...]
) -> list[ChildSpec]:
    """One watcher per folder; or, for several folders with ``watch.notify``, one watcher that
    tries NOTIFY (every watched folder on one connection) and falls back to per-folder IDLE."""
    folders = tuple(dict.fromkeys(record.watch))
    if context.settings.watch_notify and len(folders) > 1:
        return [_watcher_spec(context, record, actor_names.folders_watcher(record.id), folders, connect,
                              notify=True, idle_room=len(within_budget))]
    return [_watcher_spec(context, record, actor_names.folder_watcher(record.id, folder), (folder,), connect)
            for folder in within_budget]


def _watcher_spec(
    context: TreeContext, record: MailboxRecord, child_id: str, folders: tuple[str, ...], connect: MailboxConnector,
    *, notify: bool = False, idle_room: int | None = None,
) -> ChildSpec:
    holds = HoldPolicy(context.settings.overquota_wait_seconds)
    settings = WatchSettings(
        renew_seconds=context.settings.idle_renew_seconds, poll_seconds=context.settings.poll_seconds,
        limited_wait=lambda verdict, repeats: holds.hold(verdict, "", repeats).seconds,
    )

    def start_watcher(parent: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
        return FolderWatcher.start(
            child_id=child_id, mailbox_id=record.id, folders=folders, connect=connect, directory=context.directory,
            events=context.events, settings=settings, notify=notify, idle_room=idle_room,
            system_stopping=context.stopping, supervisor=parent,
        )

    return ChildSpec(child_id, start_watcher, shutdown_timeout=context.settings.stop_timeout_seconds)
