"""What each admin console command does in the running process: a message to the right actor.

``sync``, ``pause`` and ``resume`` go to the mailbox's actor, ``actors`` to the supervisors,
``quarantine retry`` writes through the sink actor; the answers come back from them. Every
failure becomes a :class:`ProtocolError` with a code, which the server turns into an error reply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import pykka

from futurnal.actors import actor_names
from futurnal.mailboxes.status import describe_budget, describe_schedule
from futurnal.scheduling.schedules import ScheduleError, parse_priority, parse_schedule
from futurnal.storage.consent import SCOPES, parse_expiry
from futurnal.storage.quarantine import InvalidRecordId, Quarantine
from futurnal.storage.registry import MailboxRecord
from futurnal.sync.quarantine_retry import drop_quarantined, retry_quarantined
from futurnal.system import ActorSystem, SystemNotRunning
from futurnal.system_operations import status_summary

from .command_specs import COMMANDS, STREAMS, command_spec, validate_args
from .protocol import ProtocolError, Request

__all__ = ["ConsoleCommands"]

_SYNC_TIMEOUT = 3600.0


class ConsoleCommands:
    """Runs validated requests against ``system``; ``shutdown`` is how the process is asked to stop.

    ``subscribe`` is not here: it is a stream, which the server runs itself.
    """

    def __init__(self, system: ActorSystem, shutdown: Callable[[], None]) -> None:
        self._system = system
        self._operations = system.operations
        self._admin = system.admin
        self._request_shutdown = shutdown

    def run(self, request: Request) -> Any:
        spec = command_spec(request.command)
        if spec.name in STREAMS:
            raise ProtocolError("bad-request", f"{spec.name} is a stream; only the socket server runs it")
        args = validate_args(spec, request.args)
        handler = getattr(self, f"_{spec.name}")
        try:
            return handler(**args)
        except SystemNotRunning as exc:
            raise ProtocolError("not-running", str(exc)) from None
        except pykka.Timeout as exc:
            raise ProtocolError("timeout", str(exc) or "no answer in time") from None

    def _help(self, command: str | None = None) -> Any:
        if command is not None:
            spec = command_spec(command)
            return {"command": spec.name, "usage": spec.usage(), "summary": spec.summary,
                    "params": [{"name": p.name, "help": p.help, "required": p.required} for p in spec.params]}
        return [{"command": spec.name, "usage": spec.usage(), "summary": spec.summary} for spec in COMMANDS.values()]

    def _status(self, mailbox: str | None = None) -> dict[str, Any]:
        queues = {}
        for node in self._operations.actor_tree():
            for child in _walk(node):
                if child["state"] == "running" and not actor_names.is_supervisor(child["id"]):
                    queues[child["id"]] = child["inbox"]
        reports = self._operations.status(self._mailbox_id(mailbox) if mailbox else None)
        return {"mailboxes": reports, "summary": status_summary(reports), "queues": queues}

    def _actors(self) -> dict[str, Any]:
        return {"tree": self._operations.actor_tree()}

    def _sync(self, mailbox: str, folders: list[str] | None = None, timeout: float = _SYNC_TIMEOUT) -> dict[str, Any]:
        try:
            return self._system.sync(self._mailbox_id(mailbox), tuple(folders or ()), timeout=timeout).to_document()
        except pykka.Timeout:
            raise ProtocolError("timeout", f"the sync of {mailbox} did not finish within {timeout:g}s; "
                                "it goes on in the background") from None

    def _pause(self, mailbox: str) -> dict[str, Any]:
        return self._operations.pause(self._mailbox_id(mailbox))

    def _resume(self, mailbox: str) -> dict[str, Any]:
        return self._operations.resume(self._mailbox_id(mailbox))

    def _quarantine(self, action: str, id: str | None = None, mailbox: str | None = None) -> dict[str, Any]:
        data_dir = self._system.data_dir
        store = data_dir.quarantine()
        if action == "list":
            return {"records": [asdict(record) for record in store.list(mailbox and self._known_id(mailbox))]}
        if action == "drop" and id is None:
            raise ProtocolError("bad-argument", "quarantine drop: which record? (an id from `quarantine list`)")
        records = store.list() if id is None else [self._quarantined(store, id)]
        if action == "drop":
            drop_quarantined(records[0], store, data_dir.audit_log())
            return {"dropped": records[0].id}
        settings = self._system.settings
        outcomes = retry_quarantined(records, store, data_dir.consent(),
                                     data_dir.audit_log(), self._system.write_elements,
                                     self._system.submit_attachments, settings.attachments,
                                     settings.parse_timeout_seconds, settings.parse_memory_mb)
        return {"outcomes": [{"record_id": o.record_id, "element_id": o.element_id, "error": o.error}
                             for o in outcomes]}

    def _consent(self, action: str, mailbox: str, scopes: list[str] | None = None, expires: str | None = None,
                 granted_by: str | None = None) -> dict[str, Any]:
        key = self._known_id(mailbox)
        if action == "show":
            record = self._system.data_dir.consent().get(key)
            return {"mailbox": key, "consent": None if record is None else asdict(record)}
        if action == "revoke":
            return {"mailbox": key, "revoked": self._admin.revoke_consent(key), "running": False}
        try:
            granted = self._admin.grant_consent(key, granted_by or "admin console",
                                                SCOPES if scopes is None else tuple(scopes), _expiry(expires))
        except ValueError as exc:
            raise ProtocolError("bad-argument", f"consent grant: {exc}") from None
        return {"mailbox": key, "consent": asdict(granted), "running": key in self._operations.mailbox_ids()}

    def _add(self, record: dict[str, Any], scopes: list[str] | None = None,
             granted_by: str | None = None) -> dict[str, Any]:
        try:
            mailbox = MailboxRecord.from_document(record)
            added = self._admin.add_mailbox(mailbox, consent=tuple(scopes) if scopes else False,
                                            granted_by=granted_by or "admin console")
        except (TypeError, ValueError) as exc:
            raise ProtocolError("bad-argument", f"add: {exc}") from None
        return {"mailbox": added.id, "running": added.id in self._operations.mailbox_ids()}

    def _remove(self, mailbox: str, purge: bool = False) -> dict[str, int]:
        return self._admin.remove_mailbox(self._known_id(mailbox), purge=purge)

    def _schedule(self, mailbox: str, spec: str | None = None, priority: str | None = None) -> dict[str, Any]:
        try:
            plan = None if spec is None else str(parse_schedule(spec))
            level = None if priority is None else str(parse_priority(priority))
        except ScheduleError as exc:
            raise ProtocolError("bad-argument", f"schedule: {exc}") from None
        record = self._admin.set_schedule(self._known_id(mailbox), plan, level)
        return {"mailbox": record.id, **describe_schedule(record, self._system.data_dir)}

    def _budget(self, mailbox: str, mb: int | None = None) -> dict[str, Any]:
        key = self._known_id(mailbox)
        record = self._operations.registered(key) if mb is None else self._admin.set_budget(key, mb or None)
        return {"mailbox": record.id, **describe_budget(record, self._system.data_dir)}

    def _reauthenticated(self, mailbox: str, auth: str | None = None) -> dict[str, Any]:
        key = self._known_id(mailbox)
        return {"mailbox": key, "restarted": self._admin.reauthenticated(key, auth)}

    def _reload(self) -> dict[str, Any]:
        return asdict(self._system.reload())

    def _shutdown(self) -> dict[str, Any]:
        self._request_shutdown()
        return {"stopping": True}

    # -- helpers ------------------------------------------------------------------------------

    def _mailbox_id(self, key: str) -> str:
        """A running mailbox's id from its id or address."""
        for mailbox_id in self._operations.mailbox_ids():
            if key == mailbox_id or key == self._operations.record(mailbox_id).email:
                return mailbox_id
        if (elsewhere := self._operations.run_elsewhere(key)) is not None:
            raise ProtocolError("unknown-mailbox", elsewhere)
        raise ProtocolError("unknown-mailbox", f"{key!r} is not a mailbox of this running process "
                            f"(running: {', '.join(self._operations.mailbox_ids()) or 'none'})")

    def _known_id(self, key: str) -> str:
        """A registered mailbox's id, running or not (consent is about stopped ones too)."""
        try:
            return self._operations.registered(key).id
        except LookupError as exc:
            raise ProtocolError("unknown-mailbox", str(exc)) from None

    @staticmethod
    def _quarantined(store: Quarantine, record_id: str) -> Any:
        try:
            record = store.get(record_id)
        except InvalidRecordId as exc:
            raise ProtocolError("bad-argument", f"quarantine: {exc}") from None
        if record is None:
            raise ProtocolError("not-found", f"no quarantined message {record_id!r} (see `quarantine list`)")
        return record


def _walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node["children"] for n in _walk(child))]


def _expiry(text: str | None) -> str | None:
    try:
        return None if text is None else parse_expiry(text)
    except ValueError as exc:
        raise ProtocolError("bad-argument", f"consent grant: {exc}") from None
