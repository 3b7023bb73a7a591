"""Operating a running actor system: each mailbox's status with its actor's live state, the
supervision tree, pause and resume, and the look-ups they take a mailbox's name through.

What the admin console's ``status``, ``actors``, ``pause`` and ``resume`` ask, answered by the
actors themselves. :class:`~futurnal.system.ActorSystem` owns one (``system.operations``) and
hands it what it runs; nothing here starts or stops an actor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC
from typing import TYPE_CHECKING, Any

import pykka

from futurnal.actors import actor_names
from futurnal.actors.messages import DescribeMailbox, PauseMailbox, ResumeMailbox
from futurnal.config import ServiceSettings
from futurnal.imap.live_connections import LiveConnections
from futurnal.mailboxes.reconnects import ReconnectBoard
from futurnal.mailboxes.status import mailbox_status
from futurnal.storage.data_dir import DataDir
from futurnal.storage.registry import MailboxRecord
from futurnal.supervisors.directory import ActorDirectory
from futurnal.supervisors.protocol import DescribeChildren
from futurnal.supervisors.supervised import inbox_size

if TYPE_CHECKING:
    from futurnal.storage.postgres.leases import LeaseHolder

__all__ = ["SystemNotRunning", "SystemOperations", "status_summary"]

LeaseHolders = Callable[[], Mapping[str, "LeaseHolder"]]


class SystemNotRunning(RuntimeError):
    """The call needs a started system (or the mailbox is not part of it)."""


class SystemOperations:
    """The operations on a running system's actors, found in its ``directory``.

    ``mailboxes`` gives the mailboxes it runs now, by id (a reload replaces that mapping, never
    changes it in place, so it is read without the system's lock); ``roots`` its root supervisors
    in start order. ``settings`` is read when a status is made.
    """

    def __init__(
        self,
        data_dir: DataDir,
        *,
        settings: Callable[[], ServiceSettings],
        directory: ActorDirectory,
        mailboxes: Callable[[], Mapping[str, MailboxRecord]],
        roots: Callable[[], Mapping[str, pykka.ActorRef[Any]]],
        connections: Callable[[], LiveConnections | None] = lambda: None,
        reconnects: ReconnectBoard | None = None,
        leases: LeaseHolders | None = None,
    ) -> None:
        self._data_dir = data_dir
        self._settings = settings
        self._directory = directory
        self._mailboxes = mailboxes
        self._roots = roots
        self._connections = connections
        self._reconnects = reconnects or ReconnectBoard()
        #: With a shared store: who holds each mailbox's lease (the mailboxes of other processes too).
        self._leases = leases

    def mailbox_ids(self) -> list[str]:
        """The mailboxes this running system has actors for."""
        return list(self._mailboxes())

    def record(self, key: str) -> MailboxRecord:
        """A running mailbox's registration, by id or address."""
        for record in self._mailboxes().values():
            if key in (record.id, record.email):
                return record
        if self._leases is not None:
            raise SystemNotRunning(self._run_elsewhere(key))
        raise SystemNotRunning(f"mailbox {key!r} is not part of this running system")

    def run_elsewhere(self, key: str) -> str | None:
        """With a shared store: which process runs a registered mailbox this one does not, as one
        line; None without a shared store, or for a mailbox no one registered."""
        if self._leases is None:
            return None
        try:
            self.registered(key)
        except LookupError:
            return None
        return self._run_elsewhere(key)

    def _run_elsewhere(self, key: str) -> str:
        """Which process runs a mailbox this one does not (a shared store), as one line."""
        try:
            record = self.registered(key)
        except LookupError:
            return f"mailbox {key!r} is not part of this running system"
        assert self._leases is not None
        holder = self._leases().get(record.id)
        if holder is None or not holder.held:
            return (f"mailbox {record.id} is run by no process at the moment (its lease is free or expired); "
                    "a process takes it at its next heartbeat")
        until = holder.expires_at.astimezone(UTC) if holder.expires_at else None
        return (f"mailbox {record.id} is run by another process: {holder.host} pid {holder.pid} "
                f"(lease until {until:%Y-%m-%dT%H:%M:%SZ}); ask that one")

    def registered(self, key: str) -> MailboxRecord:
        """A registered mailbox, running or not, by id or address; ``UnknownMailbox`` otherwise."""
        with self._data_dir.registry(read_only=True) as registry:
            return registry.get(key)

    def status(self, mailbox_id: str | None = None, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Each mailbox's stored status (as ``imap status --json``) with its actor's live state
        under ``live``: idle / syncing / paused / needs-reauth, its inbox depth, the last run;
        and under ``connections`` its IMAP connections: ``open``, ``waiting_for_login`` (for the
        host's login turn) and ``reconnecting`` (watched folders whose watcher waits out a back-off)."""
        mailboxes = self._mailboxes()
        holders = self._leases() if self._leases is not None else None
        if holders is not None:
            return self._shared_status(mailbox_id, mailboxes, holders, timeout)
        keys = [self.record(mailbox_id).id] if mailbox_id is not None else list(mailboxes)
        connections = self._connection_counts()
        return [self._running_status(mailboxes[key], connections, timeout) for key in keys if key in mailboxes]

    def _shared_status(self, mailbox_id: str | None, mailboxes: Mapping[str, MailboxRecord],
                       holders: Mapping[str, LeaseHolder], timeout: float) -> list[dict[str, Any]]:
        """With a shared store: every registered mailbox, those run here with their live state, the
        others with the process that runs them; each says who holds its lease under ``owner``."""
        if mailbox_id is not None:
            records = [self.registered(mailbox_id)]
        else:
            with self._data_dir.registry(read_only=True) as registry:
                records = registry.all()
        reports, connections = [], self._connection_counts()
        for record in records:
            holder = holders.get(record.id)
            if record.id in mailboxes:
                report = self._running_status(mailboxes[record.id], connections, timeout)
            else:
                report = mailbox_status(self._data_dir, record, self._settings(), running=False)
                report["connections"] = {"open": 0, "waiting_for_login": 0, "reconnecting": 0}
                report["live"] = {"mailbox": record.id, "state": "elsewhere" if holder and holder.held else "unowned",
                                  "detail": self._run_elsewhere(record.id)}
            report["owner"] = None if holder is None or not holder.held else {
                "host": holder.host, "pid": holder.pid, "process": holder.process, "here": record.id in mailboxes,
                "lease_expires": holder.expires_at.astimezone(UTC).isoformat() if holder.expires_at else None}
            reports.append(report)
        return reports

    def _running_status(self, record: MailboxRecord, connections: dict[str, dict[str, int]],
                        timeout: float) -> dict[str, Any]:
        """A mailbox run here: its stored status with its actor's live state and connections."""
        key = record.id
        report = mailbox_status(self._data_dir, record, self._settings(), running=True)
        report["connections"] = {kind: counts.get(key, 0) for kind, counts in connections.items()}
        try:
            report["live"] = self._ask_mailbox(key, DescribeMailbox(), timeout)
            _show_local_faults(report)
        except SystemNotRunning as exc:
            report["live"] = {"mailbox": key, "state": "down", "detail": str(exc)}
        except pykka.Timeout:
            report["live"] = {"mailbox": key, "state": "not answering",
                              "detail": f"its mailbox actor did not answer within {timeout:g}s"}
        return report

    def _connection_counts(self) -> dict[str, dict[str, int]]:
        """Per kind, by mailbox: counters the connections and the watchers' events keep, so a
        status of a thousand mailboxes asks nothing more of them."""
        live = self._connections()
        return {"open": live.open_by_owner() if live else {},
                "waiting_for_login": live.waiting_by_owner() if live else {},
                "reconnecting": self._reconnects.waiting()}

    def pause(self, mailbox_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """Start no syncs of the mailbox until :meth:`resume`; what is asked meanwhile is remembered."""
        return self._ask_mailbox(self.record(mailbox_id).id, PauseMailbox(), timeout)

    def resume(self, mailbox_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """Undo :meth:`pause`; one sync catches up with whatever was asked for while paused."""
        return self._ask_mailbox(self.record(mailbox_id).id, ResumeMailbox(), timeout)

    def actor_tree(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The supervision tree: each actor's id, state, restart count, inbox depth and children."""
        roots = []
        for root_id, ref in list(self._roots().items()):
            node: dict[str, Any] = {"id": root_id, "state": "running" if ref.is_alive() else "stopped",
                                    "restarts": 0, "restart_type": "permanent",
                                    "inbox": inbox_size(ref.actor_inbox) if ref.is_alive() else 0, "ref": ref}
            roots.append(_describe_subtree(node, timeout))
        return roots

    def _ask_mailbox(self, mailbox_id: str, message: DescribeMailbox | PauseMailbox | ResumeMailbox,
                     timeout: float) -> dict[str, Any]:
        """The mailbox actor's answer to ``message``: its live state."""
        mailbox = self._directory.get(actor_names.mailbox(mailbox_id))
        if mailbox is None:
            raise SystemNotRunning(f"mailbox {mailbox_id} is not running (restarting, parked or stopped)")
        try:
            live: dict[str, Any] = mailbox.ask(message, block=True, timeout=timeout)
        except pykka.ActorDeadError:  # pykka.Timeout goes up as it is: busy, not down
            raise SystemNotRunning(f"mailbox {mailbox_id} stopped before it answered") from None
        return live


def status_summary(reports: list[dict[str, Any]]) -> dict[str, int]:
    """Counts over the mailboxes of :meth:`SystemOperations.status`: ``connected`` (at least one
    open connection), ``waiting_to_connect`` (none open, and one waiting for its login turn or a
    watcher waiting out its back-off), ``syncing`` and ``idle`` (as its mailbox actor says); and
    in all, the ``connections_open`` and the ``logins_waiting`` for their turn."""
    summary = dict.fromkeys(("mailboxes", "connected", "waiting_to_connect", "syncing", "idle",
                             "connections_open", "logins_waiting"), 0)
    for report in reports:
        counts, state = report["connections"], report["live"].get("state")
        summary["mailboxes"] += 1
        summary["connected"] += counts["open"] > 0
        summary["waiting_to_connect"] += not counts["open"] and counts["waiting_for_login"] + counts["reconnecting"] > 0
        summary["syncing"] += state == "syncing"
        summary["idle"] += state == "idle"
        summary["connections_open"] += counts["open"]
        summary["logins_waiting"] += counts["waiting_for_login"]
    return summary


def _describe_subtree(node: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Fill in ``node``'s children by asking it, if it is a running supervisor; drops the refs."""
    ref = node.pop("ref")
    node["children"] = []
    if ref is not None and actor_names.is_supervisor(node["id"]) and node["state"] == "running":
        try:
            children = ref.ask(DescribeChildren(), timeout=timeout)
        except (pykka.ActorDeadError, pykka.Timeout):
            node["state"] = "not answering"
            return node
        node["children"] = [_describe_subtree(child, timeout) for child in children]
    return node


def _show_local_faults(report: dict[str, Any]) -> None:
    """A local fault the mailbox actor holds is each folder's last error: on a full disk the
    fetcher could not write it to the folder's state, where the error would otherwise be read."""
    faults = report["live"].get("local_faults") or {}
    for folder in report["folders"]:
        if error := faults.get(folder["folder"]) or faults.get("*"):
            folder["last_error"] = error
