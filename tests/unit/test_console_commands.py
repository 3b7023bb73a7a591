"""The console's commands checking what a client sends: quarantine ids, mailbox records, timeouts."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from keyrings.alt.file import PlaintextKeyring

from futurnal.config import ServiceSettings
from futurnal.console.commands import ConsoleCommands
from futurnal.console.server import ConsoleServer
from futurnal.storage.consent import SCOPES, ConsentRegistry
from futurnal.storage.credentials import CredentialStore
from futurnal.storage.quarantine import QuarantineStore
from futurnal.system import ActorSystem


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[socket.socket, ActorSystem]]:
    """The console of a system on its own data directory (not started: these commands are
    refused before any actor is asked), and a client connected to it."""
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring.cfg")  # type: ignore[misc]
    system = ActorSystem(tmp_path / "data", settings=ServiceSettings(), credentials=CredentialStore(backend))
    system.data_dir.ensure()
    commands = ConsoleCommands(system, lambda: None)
    server = ConsoleServer(system.data_dir.root / "console.sock", commands.run, lambda _callback: lambda: None).start()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(10)
    conn.connect(str(server.path))
    yield conn, system
    conn.close()
    server.stop()


def _ask(conn: socket.socket, line: str) -> dict[str, Any]:
    conn.sendall(line.encode() + b"\n")
    reply = b""
    while not reply.endswith(b"\n"):
        reply += conn.recv(65536)
    return json.loads(reply)


def _request(command: str, **args: Any) -> str:
    return json.dumps({"command": command, "args": args})


def _outside(tmp_path: Path) -> dict[str, Path]:
    """A crafted record with its bytes and a file it names, all outside the data directory."""
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("not the service's to read or delete")
    record = {"id": "../../outside/victim", "mailbox": "alice", "folder": "INBOX", "uidvalidity": 1, "uid": 1,
              "reason": "crafted", "attempts": 1, "first_seen": "", "last_seen": ""}
    (outside / "evil.json").write_text(json.dumps(record))
    (outside / "evil.eml").write_bytes(b"Subject: from outside\r\n\r\nsecret\r\n")
    return {"json": outside / "evil.json", "eml": outside / "evil.eml", "victim": victim}


def test_traversal_ids_are_refused_and_nothing_outside_is_read_or_deleted(
    console: Any, tmp_path: Path
) -> None:
    conn, system = console
    files = _outside(tmp_path)
    quarantine = system.data_dir.quarantine_root
    quarantine.mkdir()
    depth = len(quarantine.relative_to(tmp_path).parts)
    for record_id in ("../" * depth + "outside/evil", str(tmp_path / "outside" / "evil"), "0123456789abcdef\n"):
        for action in ("drop", "retry"):
            reply = _ask(conn, _request("quarantine", action=action, id=record_id))
            assert reply["ok"] is False and reply["error"]["code"] == "bad-argument", reply
            assert "is not a quarantine record id" in reply["error"]["message"]
    assert all(path.exists() for path in files.values())
    assert not system.data_dir.element_db_path.exists()  # nothing was stored as an element


def test_a_record_naming_another_id_or_a_planted_link_reaches_nothing_outside(console: Any, tmp_path: Path) -> None:
    conn, system = console
    files = _outside(tmp_path)
    quarantine = system.data_dir.quarantine_root
    quarantine.mkdir()
    (quarantine / "0123456789abcdef.json").write_text(files["json"].read_text())  # its "id" leads outside
    (quarantine / "fedcba9876543210.json").write_text(files["json"].read_text())
    (quarantine / "fedcba9876543210.eml").symlink_to(files["eml"])

    ConsentRegistry(system.data_dir.consent_path).grant("alice", "test", SCOPES)

    listed = _ask(conn, _request("quarantine", action="list"))["result"]["records"]
    assert sorted(r["id"] for r in listed) == ["0123456789abcdef", "fedcba9876543210"]  # the file names
    [outcome] = _ask(conn, _request("quarantine", action="retry", id="fedcba9876543210"))["result"]["outcomes"]
    assert outcome["element_id"] is None and "leads out of the quarantine directory" in outcome["error"]
    dropped = _ask(conn, _request("quarantine", action="drop", id="0123456789abcdef"))
    assert dropped["result"] == {"dropped": "0123456789abcdef"}
    assert not (quarantine / "0123456789abcdef.json").exists()
    assert all(path.exists() for path in files.values())
    assert not system.data_dir.element_db_path.exists()


def test_the_store_refuses_every_id_it_did_not_make(tmp_path: Path) -> None:
    store = QuarantineStore(tmp_path / "quarantine")
    made = store.record_id("alice", "INBOX", 1, 7)
    assert store.get(made) is None
    for bad in ("../x", "0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0", "0123456789abcdef\n",
                "/etc/passwd", "", "0123456789abcdeg"):
        for call in (store.get, store.raw, store.drop):
            with pytest.raises(ValueError, match="is not a quarantine record id"):
                call(bad)


def test_add_refuses_a_record_with_a_port_that_is_no_number(console: Any) -> None:
    conn, system = console
    record = {"id": "alice", "email": "alice@example.org", "host": "imap.example.org", "port": "abc",
              "username": "alice"}
    reply = _ask(conn, _request("add", record=record))
    assert reply["error"]["code"] == "bad-argument"
    assert "port must be a TCP port" in reply["error"]["message"]
    for bad in ({"port": 0}, {"port": True}, {"folders": "INBOX"}, {"sync_interval_seconds": 1.5}, {"host": ""}):
        assert _ask(conn, _request("add", record={**record, "port": 993, **bad}))["error"]["code"] == "bad-argument"
    assert not system.data_dir.registry_path.exists()  # nothing was registered


@pytest.mark.parametrize("timeout", ["NaN", "Infinity", "-Infinity", "1e999", "0", "-5", "true", "1" + "0" * 400])
def test_sync_refuses_a_timeout_that_is_not_a_finite_positive_number(console: Any, timeout: str) -> None:
    conn, _system = console
    reply = _ask(conn, f'{{"command": "sync", "args": {{"mailbox": "alice", "timeout": {timeout}}}}}')
    assert reply["error"]["code"] == "bad-argument", reply
    assert "timeout must be a positive number" in reply["error"]["message"]
