"""The admin interface: one chosen per command, the same audit trail whoever does the work."""

from __future__ import annotations

import ast
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from keyrings.alt.file import PlaintextKeyring

from futurnal.admin import Admin, AdminError, open_admin
from futurnal.admin.local import LocalAdmin
from futurnal.admin.remote import RemoteAdmin
from futurnal.admin.system_admin import SystemAdmin
from futurnal.config import ServiceSettings
from futurnal.console import ConsoleError
from futurnal.console.commands import ConsoleCommands
from futurnal.console.server import ConsoleServer
from futurnal.storage.audit_log import AuditEvent, AuditLog
from futurnal.storage.consent import SCOPES, ConsentRegistry
from futurnal.storage.credentials import CredentialStore
from futurnal.storage.data_dir import DataDir
from futurnal.storage.registry import MailboxRecord, MailboxRegistry, UnknownMailbox
from futurnal.storage.sync_state import FolderStateStore
from futurnal.system import ActorSystem, _connection


def _credentials(tmp_path: Path) -> CredentialStore:
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring.cfg")  # type: ignore[misc]
    return CredentialStore(backend)


def _record(key: str = "alice") -> MailboxRecord:
    return MailboxRecord(id=key, email=f"{key}@example.org", host="127.0.0.1", port=993, username=key,
                         security="tls", folders=("INBOX",))


def _local(data_dir: DataDir, tmp_path: Path) -> LocalAdmin:
    return LocalAdmin(data_dir, credentials=_credentials(tmp_path), settings=ServiceSettings, actor_system=ActorSystem)


def _open_admin(data_dir: DataDir, tmp_path: Path) -> Admin:
    return open_admin(data_dir, credentials=_credentials(tmp_path), settings=ServiceSettings, actor_system=ActorSystem)


@pytest.fixture
def local(tmp_path: Path) -> LocalAdmin:
    return _local(DataDir(tmp_path / "data"), tmp_path)


def _events(data_dir: DataDir) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k not in ("time", "prev", "hash")}
            for e in AuditLog(data_dir.audit_path).entries()]


def test_the_audit_events_keep_the_names_written_to_the_log() -> None:
    """The audit log's format is a promise: a renamed member must not rename what is written."""
    assert {str(e) for e in AuditEvent} == {
        "mailbox-added", "mailbox-removed", "mailbox-purged", "mailbox-parked", "mailbox-throttled", "secrets-deleted",
        "consent-granted", "consent-revoked", "sync", "needs-reauth", "reauth", "poison-quarantined",
        "quarantine-retried", "quarantine-dropped",
    }


def test_an_entry_written_from_the_enumeration_is_the_plain_string(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    entry = log.append(AuditEvent.CONSENT_REVOKED, mailbox="alice")
    assert type(entry["event"]) is str and json.loads(log.path.read_text())["event"] == "consent-revoked"
    assert log.verify().ok


def test_adding_records_the_mailbox_its_secret_and_its_consent_audited_in_order(local: LocalAdmin) -> None:
    local.add_mailbox(_record(), ("content", "metadata"), "tester",
                      lambda: local.credentials.set_secret("alice", "password", "pw"))
    assert local.credentials.get_secret("alice", "password") == "pw"
    consent = ConsentRegistry(local.data_dir.consent_path).get("alice")
    assert consent is not None and consent.scopes == ("metadata", "content")
    assert _events(local.data_dir) == [
        {"event": "mailbox-added", "mailbox": "alice", "host": "127.0.0.1", "security": "tls", "auth": "password",
         "folders": ["INBOX"]},
        {"event": "consent-granted", "mailbox": "alice", "granted_by": "tester", "scopes": ["metadata", "content"]},
    ]


def test_a_secret_that_cannot_be_stored_leaves_no_mailbox(local: LocalAdmin) -> None:
    def refuse() -> None:
        raise RuntimeError("keyring locked")

    with pytest.raises(RuntimeError):
        local.add_mailbox(_record(), SCOPES, "tester", refuse)
    with MailboxRegistry(local.data_dir.registry_path, read_only=True) as registry:
        assert registry.all() == []
    with pytest.raises(ValueError):  # and a taken id is refused as bad input
        local.add_mailbox(_record(), SCOPES, "tester", lambda: None)
        local.add_mailbox(_record(), SCOPES, "tester", lambda: None)


def test_consent_grant_and_revoke_are_audited_once_each(local: LocalAdmin) -> None:
    granted = local.grant_consent("alice", "tester", ("metadata",), "2099-01-01T00:00:00Z")
    assert granted.scopes == ("metadata",)
    assert local.revoke_consent("alice") is True
    assert local.revoke_consent("alice") is False  # nothing to revoke: nothing audited
    assert _events(local.data_dir) == [
        {"event": "consent-granted", "mailbox": "alice", "granted_by": "tester", "scopes": ["metadata"],
         "expires_at": "2099-01-01T00:00:00Z"},
        {"event": "consent-revoked", "mailbox": "alice"},
    ]


def test_reauthentication_renews_under_the_lock_clears_needs_reauth_and_is_audited(local: LocalAdmin) -> None:
    local.add_mailbox(_record(), (), "tester")
    state = local.data_dir.state_path("alice")
    store = FolderStateStore(state)
    store.set_needs_reauth("the server refused the login")
    store.close()
    seen: list[Any] = []
    done = local.reauthenticate(_record(), lambda registry: seen.append(registry) or "password")
    assert done.secret_kind == "password" and done.restarted is None
    assert isinstance(seen[0], MailboxRegistry)  # the record may change: the registry is handed over
    store = FolderStateStore(state, read_only=True)
    assert store.needs_reauth() is None
    store.close()
    assert _events(local.data_dir)[-1] == {"event": "reauth", "mailbox": "alice", "auth": "password"}


def test_a_missing_quarantined_message_is_an_admin_error(local: LocalAdmin) -> None:
    with pytest.raises(AdminError, match="no quarantined message"):
        local.drop_quarantined("0123456789abcdef")


def test_the_schedule_is_stored_and_shown(local: LocalAdmin) -> None:
    local.add_mailbox(_record(), (), "tester")
    shown = local.set_schedule("alice", "@manual", "high")
    assert shown["mailbox"] == "alice" and shown["schedule"] == "@manual" and shown["priority"] == "high"


def _downloaded(data_dir: DataDir, mailbox_id: str, count: int) -> None:
    """``count`` bytes fetched this hour, as the mailbox's fetcher counts them in its state file."""
    store = FolderStateStore(data_dir.state_path(mailbox_id))
    store.set_downloads({str(int(time.time() // 3600)): count})
    store.close()


def test_the_download_budget_is_stored_and_shown_with_what_was_downloaded(local: LocalAdmin) -> None:
    local.add_mailbox(_record(), (), "tester")
    _downloaded(local.data_dir, "alice", 1_500_000)
    shown = local.set_budget("alice", 1)
    assert {k: v for k, v in shown.items() if k != "download_budget"} == {"mailbox": "alice", "daily_download_mb": 1}
    budget = shown["download_budget"]
    assert (budget["limit_mb"], budget["used_mb"], budget["exhausted"]) == (1, 1.5, True) and budget["resets_at"]
    assert local.set_budget("alice@example.org", 2)["download_budget"]["exhausted"] is False  # by address too
    assert local.set_budget("alice", None) == {"mailbox": "alice", "daily_download_mb": None, "download_budget": None}
    with MailboxRegistry(local.data_dir.registry_path, read_only=True) as registry:
        assert registry.get("alice").daily_download_mb is None
    with pytest.raises(UnknownMailbox):
        local.set_budget("nobody", 5)
    assert [e["event"] for e in _events(local.data_dir)] == ["mailbox-added"]  # as schedules: not audited


class _System:
    """A running system that only records what the admin use cases ask of it."""

    def __init__(self, data_dir: DataDir) -> None:
        self.data_dir = data_dir
        self.running = True
        self.reloaded = 0

    def one_change(self) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def writable_registry(self) -> Iterator[MailboxRegistry]:
        with MailboxRegistry(self.data_dir.registry_path) as registry:
            yield registry

    def reload(self) -> object:
        self.reloaded += 1
        return None


def test_a_new_budget_reloads_a_running_system_which_restarts_the_mailbox(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path / "data")
    _local(data_dir, tmp_path).add_mailbox(_record(), (), "tester")
    system = _System(data_dir)
    files = LocalAdmin(data_dir, credentials=_credentials(tmp_path), settings=ServiceSettings,
                       actor_system=ActorSystem, writable_registry=system.writable_registry)
    admin = SystemAdmin(system, files)  # type: ignore[arg-type]
    assert admin.set_budget("alice", 700).daily_download_mb == 700 and system.reloaded == 1
    system.running = False
    assert admin.set_budget("alice", None).daily_download_mb is None and system.reloaded == 1
    # What the reload compares: a changed budget is a changed connection, so the mailbox restarts.
    assert _connection(_record().with_changes(daily_download_mb=700)) != _connection(_record())


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ActorSystem]:
    """A console serving a data directory (its system not started: these requests need no actor)."""
    system = ActorSystem(tmp_path / "data", settings=ServiceSettings(), credentials=_credentials(tmp_path))
    system.data_dir.ensure()
    server = ConsoleServer(system.data_dir.root / "console.sock", ConsoleCommands(system, lambda: None).run,
                           lambda _callback: lambda: None).start()
    yield system
    server.stop()


def test_the_admin_is_the_process_while_one_serves_the_data_directory(tmp_path: Path, served: ActorSystem) -> None:
    data_dir = served.data_dir
    admin = _open_admin(data_dir, tmp_path)
    assert isinstance(admin, RemoteAdmin)
    _local(data_dir, tmp_path).add_mailbox(_record(), (), "tester")
    # The same use case through the process leaves the same trail as done here.
    assert admin.grant_consent("alice", "tester", SCOPES).scopes == SCOPES
    assert admin.revoke_consent("alice") is True
    assert [e["event"] for e in _events(data_dir)] == ["mailbox-added", "consent-granted", "consent-revoked"]


def test_a_taken_address_is_refused_before_the_secret_is_stored_or_the_process_asked(
    tmp_path: Path, served: ActorSystem
) -> None:
    data_dir = served.data_dir
    _local(data_dir, tmp_path).add_mailbox(_record(), (), "tester")
    admin = _open_admin(data_dir, tmp_path)
    stored: list[str] = []
    with pytest.raises(ValueError, match="alice@example.org is already registered as alice"):
        admin.add_mailbox(_record("second").with_changes(email="alice@example.org"), SCOPES, "tester",
                          lambda: stored.append("second"))
    assert stored == [] and [e["event"] for e in _events(data_dir)] == ["mailbox-added"]


def test_the_budget_goes_through_the_process_while_one_serves_the_data_directory(
    tmp_path: Path, served: ActorSystem
) -> None:
    data_dir = served.data_dir
    _local(data_dir, tmp_path).add_mailbox(_record(), (), "tester")
    admin = _open_admin(data_dir, tmp_path)
    assert isinstance(admin, RemoteAdmin)
    shown = admin.set_budget("alice", 250)
    assert shown["daily_download_mb"] == 250 and shown["download_budget"]["limit_mb"] == 250
    assert admin.client.call("budget", mailbox="alice@example.org")["daily_download_mb"] == 250  # shown only
    assert admin.set_budget("alice", None) == {"mailbox": "alice", "daily_download_mb": None, "download_budget": None}
    with MailboxRegistry(data_dir.registry_path, read_only=True) as registry:
        assert registry.get("alice").daily_download_mb is None
    for bad in (-1, 1.5, "5", True):
        with pytest.raises(ConsoleError, match="mb must be a whole number, 0 or more"):
            admin.client.call("budget", mailbox="alice", mb=bad)
    with pytest.raises(ConsoleError) as unknown:
        admin.set_budget("nobody", 5)
    assert unknown.value.code == "unknown-mailbox"


def test_the_admin_is_this_command_when_nothing_serves_the_data_directory(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path / "data")
    data_dir.ensure()
    (data_dir.root / "console.sock").touch()  # a stale socket file answers nobody
    assert isinstance(_open_admin(data_dir, tmp_path), LocalAdmin)


_ROOT = Path(__file__).resolve().parents[2]
#: The commands that are clients of a running process by nature, and the error mapping in main.
_CONSOLE_CLIENTS = {"console_commands.py", "console_input.py", "top_command.py", "run_command.py", "main.py"}


def test_commands_reach_the_running_process_only_through_the_admin_interface() -> None:
    """No command asks itself whether `run` is up: that choice is made once, in futurnal.admin."""
    offenders = []
    for path in sorted((_ROOT / "futurnal" / "cli").glob("*.py")):
        if path.name in _CONSOLE_CLIENTS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("futurnal.console") \
                    and node.module != "futurnal.console.event_lines":
                offenders.append(f"{path.name}: from {node.module} import ...")
            if isinstance(node, ast.Attribute) and node.attr == "console":
                offenders.append(f"{path.name}: .console")
    assert offenders == []


def test_every_audit_entry_is_written_with_an_audit_event() -> None:
    """A literal event name at a writer could drift from the promised format; AuditEvent cannot."""
    literal = []
    for directory in ("futurnal", "actors", "supervisors", "storage"):
        for path in (_ROOT / directory).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "append"
                        and "audit" in ast.unparse(node.func.value).lower() and node.args
                        and any(isinstance(part, ast.Constant) for part in ast.walk(node.args[0]))):
                    literal.append(f"{path.relative_to(_ROOT)}:{node.lineno}")
    assert literal == []
