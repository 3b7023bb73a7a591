"""The admin console of a real `run` process, driven only through its Unix socket."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from futurnal.console import ConsoleError
from futurnal.demo.dovecot import DovecotServer
from futurnal.demo.sample_mailbox import generate_mailbox

from .cli import Cli
from .running_process import RunningProcess
from .sync_harness import ServerClient


@pytest.fixture
def server(dovecot_factory: Any) -> DovecotServer:
    server = dovecot_factory()
    for message in generate_mailbox(12, seed=3):
        server.deliver("alice", message.raw, folder="INBOX", flags=message.flags)
    server.start()
    return server


@pytest.fixture
def running(tmp_path: Path, server: DovecotServer) -> Iterator[RunningProcess]:
    cli = Cli(tmp_path)
    # Watching off, schedule manual: every sync in these tests is one the console asked for.
    assert cli.add(server, "--watch", "", "--schedule", "@manual").code == 0
    assert cli("imap", "sync", "alice").code == 0
    process = RunningProcess(cli)
    yield process
    process.finish()


def _raw_exchange(path: Path, payload: bytes) -> list[dict[str, Any]]:
    """Send bytes as they are and read reply lines until the server closes or goes quiet."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(str(path))
        try:
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
        except BrokenPipeError:
            pass  # the server answered and hung up before reading everything (an over-long line)
        data = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := conn.recv(65536):
                data += chunk
    return [json.loads(line) for line in data.splitlines()]


def test_status_sync_pause_resume_subscribe_and_shutdown_through_the_socket(
    running: RunningProcess, server: DovecotServer
) -> None:
    client = running.client
    status = client.call("status")
    (alice,) = status["mailboxes"]
    assert alice["mailbox"]["id"] == "alice" and alice["live"]["state"] == "idle"
    assert alice["connections"] == {"open": 0, "waiting_for_login": 0, "reconnecting": 0}  # no watcher, no sync
    assert status["summary"] == {"mailboxes": 1, "connected": 0, "waiting_to_connect": 0, "syncing": 0, "idle": 1,
                                 "connections_open": 0, "logins_waiting": 0}
    assert [(f["folder"], f["stored"]) for f in alice["folders"]] == [("INBOX", 12)]
    tree = client.call("actors")["tree"]
    mailbox_root = next(node for node in tree if node["id"] == "root/alice")
    (supervisor,) = mailbox_root["children"]
    assert {child["id"] for child in supervisor["children"]} == {"fetcher/alice", "mailbox/alice"}
    assert all(child["state"] == "running" and child["restarts"] == 0 for child in supervisor["children"])

    events: list[dict[str, Any]] = []
    stream = client.events()
    threading.Thread(target=lambda: events.extend(stream), daemon=True).start()
    ServerClient(server).append(1, tag="new")
    report = client.call("sync", mailbox="alice")
    assert report["ok"] and report["fetched"] == 1 and running.stored() == 13
    running.wait_for(lambda: any(e["event"] == "sync-finished" and e["fetched"] == 1 for e in events),
                     "the subscriber did not see the sync finish")
    assert any(e["event"] == "sync-started" and e["mailbox"] == "alice" for e in events)

    assert client.call("pause", mailbox="alice")["state"] == "paused"
    ServerClient(server).append(2, tag="while-paused")
    skipped = client.call("sync", mailbox="alice")
    assert skipped["skipped"] == "paused" and running.stored() == 13
    assert client.call("status", mailbox="alice")["mailboxes"][0]["live"]["missed_while_paused"] is True
    assert client.call("resume", mailbox="alice")["state"] in ("syncing", "idle")
    running.wait_for(lambda: running.stored() == 15, "resume did not catch up with what was missed")

    assert client.call("shutdown") == {"stopping": True}
    assert running.process.wait(timeout=60) == 0
    assert not running.socket_path.exists()


def test_malformed_requests_get_error_replies_and_the_console_keeps_serving(running: RunningProcess) -> None:
    path = running.socket_path
    replies = _raw_exchange(path, b'not json\n[1, 2]\n{"command": "stauts"}\n{"command": "sync"}\n'
                                  b'{"command": "sync", "args": {"mailbox": "nobody"}}\n'
                                  b'{"command": "pause", "args": {"mailbox": "alice", "extra": 1}}\n'
                                  b'{"id": 9, "command": "status", "args": {"mailbox": "alice"}}\n')
    codes = [reply["error"]["code"] if not reply["ok"] else "ok" for reply in replies]
    assert codes == ["bad-json", "bad-request", "unknown-command", "bad-argument", "unknown-mailbox",
                     "bad-argument", "ok"]
    assert "did you mean 'status'" in replies[2]["error"]["message"]
    assert replies[6]["id"] == 9
    too_long = _raw_exchange(path, b'{"command": "status", "args": {"x": "' + b"a" * (2 << 20) + b'"}}\n')
    assert too_long[-1]["error"]["code"] == "line-too-long"
    # A client that connects and says nothing holds only its own thread.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as idle:
        idle.connect(str(path))
        assert running.client.call("status")["mailboxes"][0]["mailbox"]["id"] == "alice"
    with pytest.raises(ConsoleError) as refused:
        running.client.call("sync", mailbox="alice", folders="INBOX")
    assert refused.value.code == "bad-argument"
    assert running.process.poll() is None


_CONNECT_AS_ANOTHER_USER = """
import socket, sys
with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
    conn.settimeout(10)
    conn.connect(sys.argv[1])
    # The refusal comes before any request is read (sending first could meet a closed socket).
    sys.stdout.write(conn.recv(65536).decode())
"""


def test_the_socket_is_private_and_other_users_are_refused_by_peer_credentials(
    running: RunningProcess, server: DovecotServer
) -> None:
    path = running.socket_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    running.finish()
    if os.getuid() != 0:
        pytest.skip("connecting as another user needs root")
    # A data directory another user can reach, with the console's modes loosened on purpose:
    # the peer-credential check alone must keep that user out.
    home = Path(tempfile.mkdtemp(prefix="futurnal-peer-"))
    try:
        home.chmod(0o711)
        cli = Cli(home)
        assert cli.add(server, "--watch", "", "--schedule", "@manual").code == 0
        process = RunningProcess(cli)
        try:
            process.socket_path.parent.chmod(0o711)
            process.socket_path.chmod(0o666)
            other = subprocess.run(["/usr/bin/python3", "-c", _CONNECT_AS_ANOTHER_USER, str(process.socket_path)],
                                   user=65534, group=65534, capture_output=True, text=True, timeout=30)
            assert other.returncode == 0, other.stderr
            reply = json.loads(other.stdout.splitlines()[0])
            assert reply["ok"] is False and reply["error"]["code"] == "refused"
            assert process.client.call("status")["mailboxes"]  # the owner still gets in
        finally:
            process.finish()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_ctl_and_the_imap_commands_go_through_the_running_process(
    running: RunningProcess, server: DovecotServer
) -> None:
    cli = running.cli
    status = cli("ctl", "status", "--json")
    assert status.code == 0 and status.json()["mailboxes"][0]["mailbox"]["id"] == "alice"
    assert "alice" in cli("ctl", "status").out
    ServerClient(server).append(1, tag="ctl")
    synced = cli("imap", "sync", "alice")  # the data dir is locked by `run`: this asks it instead
    assert synced.code == 0, synced.err
    assert "through the running process" in synced.err and "1 new message" in synced.out
    assert cli("ctl", "nonsense").code == 2
    unknown = cli("ctl", "sync", "nobody")
    assert unknown.code == 1 and "not a mailbox of this running process" in unknown.err

    assert cli("consent", "revoke", "alice").code == 0
    tree = cli("ctl", "actors", "--json").json()["tree"]
    assert "root/alice" not in {node["id"] for node in tree}  # revoking stopped the mailbox's actors
    assert cli("ctl", "sync", "alice").code == 1
    assert cli("consent", "grant", "alice").code == 0
    running.wait_for(lambda: "root/alice" in {n["id"] for n in cli("ctl", "actors", "--json").json()["tree"]},
                     "granting consent again did not start the mailbox")
    assert cli("ctl", "sync", "alice").code == 0
    audit = [entry["event"] for entry in cli("audit", "tail", "-n", "100", "--json").json()]
    last_revoked = len(audit) - 1 - audit[::-1].index("consent-revoked")
    assert "consent-granted" in audit[last_revoked:]
    assert cli("ctl", "shutdown").code == 0
    assert running.process.wait(timeout=60) == 0


def test_status_counts_logins_waiting_for_their_turn_and_a_stop_does_not_wait_for_them(
    tmp_path: Path, server: DovecotServer
) -> None:
    """One login to the host every 60 s: the watcher and the sync at start cannot both connect,
    ``ctl status`` says one waits, and SIGTERM ends the wait instead of sleeping through it."""
    cli = Cli(tmp_path)
    assert cli.add(server).code == 0  # watches INBOX, syncs at start: two connections
    running = RunningProcess(cli, FUTURNAL_NETWORK_LOGINS_PER_SECOND_PER_HOST=str(1 / 60),
                             FUTURNAL_NETWORK_LOGIN_BURST_PER_HOST="1")
    try:
        running.wait_for(lambda: running.client.call("status")["summary"]["logins_waiting"] == 1,
                         "no login waited for its turn")
        status = running.client.call("status")
        (alice,) = status["mailboxes"]
        assert alice["connections"]["waiting_for_login"] == 1
        assert status["summary"]["mailboxes"] == 1
        assert status["summary"]["connected"] + status["summary"]["waiting_to_connect"] == 1
        shown = cli("ctl", "status")
        assert shown.code == 0 and "1 waiting for a login turn" in shown.out
        assert cli("ctl", "status", "--json").json()["summary"]["logins_waiting"] == 1
    finally:
        started = time.monotonic()
        code, err = running.finish()
    assert code == 0, err
    assert time.monotonic() - started < 20  # the waiting login gave up at once, not after a minute


def test_ctl_without_a_running_process_says_so(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    done = cli("ctl", "status")
    assert done.code == 1 and "no futurnal-actors process is running" in done.err and "run" in done.err


def test_imap_add_and_remove_while_running_start_and_stop_the_mailbox_at_once(
    running: RunningProcess, server: DovecotServer
) -> None:
    cli = running.cli
    server.add_user("bob", "bob-pw")
    ServerClient(server, "bob", "bob-pw").append(3, tag="bob")
    added = cli.add(server, user="bob", mailbox_id="bob", password="bob-pw")
    assert added.code == 0, added.err
    assert "bob" in running.client.call("status")["mailboxes"][1]["mailbox"]["id"]
    # Registered through the running process: it starts at once and syncs, no SIGHUP needed.
    running.wait_for(lambda: sum(e["mailbox"] == "bob" for e in cli("elements", "export").lines()) == 3,
                     "the running process did not sync the mailbox added meanwhile")
    assert cli("ctl", "sync", "bob", "--json").json()["ok"]
    assert cli.add(server, user="bob", mailbox_id="bob2", password="bob-pw").code == 1  # same address
    assert "running: idle" in cli("imap", "status", "alice").out

    frame = cli("top", "--once")
    assert frame.code == 0 and "alice" in frame.out and "bob" in frame.out and "supervisor/bob" in frame.out
    assert "mailboxes: 2, " in frame.out and " waiting for a login turn" in frame.out

    removed = cli("imap", "remove", "bob", "--purge")
    assert removed.code == 0, removed.err
    assert "3 element(s)" in removed.out
    assert [r["mailbox"]["id"] for r in running.client.call("status")["mailboxes"]] == ["alice"]
    assert not any(e["mailbox"] == "bob" for e in cli("elements", "export", "--include-deleted").lines())
    assert not (cli.data_dir / "state" / "bob.json").exists()
    events = [(e["event"], e.get("mailbox")) for e in cli("audit", "tail", "-n", "100", "--json").json()]
    assert ("mailbox-purged", "bob") in events and ("secrets-deleted", "bob") in events


def test_restarts_and_quarantines_reach_subscribers_and_quarantine_is_handled_by_the_process(
    tmp_path: Path, server: DovecotServer
) -> None:
    cli = Cli(tmp_path)
    assert cli.add(server, "--watch", "", "--schedule", "@manual").code == 0
    # The fetcher dies on every message carrying the marker: poison, quarantined after 3 deaths.
    running = RunningProcess(cli, FUTURNAL_TEST_CRASH_ON="POISON-MARKER-7")
    try:
        assert running.client.call("sync", mailbox="alice")["fetched"] == 12
        events: list[dict[str, Any]] = []
        stream = running.client.events()
        threading.Thread(target=lambda: events.extend(stream), daemon=True).start()
        ServerClient(server).append(1, tag="POISON-MARKER-7")
        assert running.client.call("sync", mailbox="alice")["ok"]
        running.wait_for(lambda: any(e["event"] == "quarantined" for e in events), "no quarantined event")
        restarts = [e for e in events if e["event"] == "actor-restarting"]
        assert restarts and all(e["actor"] == "fetcher/alice" for e in restarts)
        tree = running.client.call("actors")["tree"]
        (supervisor,) = next(n for n in tree if n["id"] == "root/alice")["children"]
        assert next(c for c in supervisor["children"] if c["id"] == "fetcher/alice")["restarts"] == len(restarts)

        listed = cli("quarantine", "list", "--json")  # read alongside
        (record,) = listed.json()
        retried = cli("quarantine", "retry", record["id"])  # the parser itself is fine: it stores it now
        assert retried.code == 0, retried.err
        assert running.client.call("quarantine", action="list")["records"] == []
        assert running.stored() == 13
        assert cli("ctl", "reload").out.strip() == "reloaded: nothing changed"
    finally:
        running.finish()
