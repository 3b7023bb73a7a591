"""The throwaway IMAP servers must behave like real servers that clients can trust, and keep one
contract, so that a test written against one runs against the other.

Each test runs against both servers the integration tests use: Dovecot (futurnal/demo/dovecot.py,
the system's Dovecot) and Cyrus (tests/servers/cyrus.py, unpacked into /opt/futurnal-test/cyrus
by bin/install-cyrus). What holds for one server only is either a test marked ``@only(...)`` or a
check under ``if kind.name == ...``, both naming the server.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from futurnal.demo import dovecot as dovecot_module
from futurnal.demo.dovecot import DovecotOptions, DovecotServer, DovecotUnavailable
from futurnal.demo.sample_mailbox import generate_mailbox
from tests.servers import cyrus as cyrus_module
from tests.servers.cyrus import CyrusOptions, CyrusServer, CyrusUnavailable, MessageRejected

from .cli import Cli

USER, PASSWORD = "alice", "secret-pw"  # created by the conftest factories
DOVECOT, CYRUS = "dovecot", "cyrus"

Server = DovecotServer | CyrusServer
ServerFactory = Callable[..., Server]


@dataclass(frozen=True)
class Kind:
    """What the contract needs to know about one server.

    Attributes:
        name: ``DOVECOT`` or ``CYRUS``.
        factory: The conftest fixture that makes its unstarted servers.
        welcome: A part of its greeting that names it.
        without_sync_extensions: Its options that hide IDLE, CONDSTORE and QRESYNC.
        refuses_in_sample: Its answers to the messages of ``generate_mailbox(60)`` it refuses.
        wrong_password_within: Seconds in which a wrong password is answered: the delay after a
            failed login is switched off (Cyrus would pause 3 s, Dovecot 2 s and more).
    """

    name: str
    factory: str
    welcome: bytes
    without_sync_extensions: Callable[[], Any]
    refuses_in_sample: tuple[str, ...]
    wrong_password_within: float


KINDS = {
    DOVECOT: Kind(
        DOVECOT, "dovecot_factory", b"Dovecot",
        lambda: DovecotOptions(capabilities="IMAP4rev1 LITERAL+ UIDPLUS"),
        refuses_in_sample=(), wrong_password_within=2.0,
    ),
    CYRUS: Kind(
        CYRUS, "cyrus_factory", b"Cyrus IMAP",
        lambda: CyrusOptions(suppress_capabilities="IDLE CONDSTORE QRESYNC"),
        # The header line without a colon is refused; the other broken messages are kept.
        refuses_in_sample=("NO Message contains invalid header",), wrong_password_within=1.0,
    ),
}


def only(name: str) -> pytest.MarkDecorator:
    """Run a test against one server only: what it checks is that server's own behaviour."""
    return pytest.mark.parametrize("kind", [name], indirect=True)


@pytest.fixture(params=[DOVECOT, CYRUS])
def kind(request: pytest.FixtureRequest) -> Kind:
    return KINDS[request.param]


@pytest.fixture
def make(kind: Kind, request: pytest.FixtureRequest) -> ServerFactory:
    """Unstarted servers of this kind with user alice/secret-pw, stopped and removed afterwards."""
    factory: ServerFactory = request.getfixturevalue(kind.factory)
    return factory


@pytest.fixture
def server(make: ServerFactory) -> Server:
    """A started server with one user, alice/secret-pw, and an empty INBOX."""
    started = make()
    started.start()
    return started


def _message(n: int) -> bytes:
    return (f"From: Bob <bob@example.com>\r\nTo: Alice <alice@futurnal.test>\r\n"
            f"Subject: message {n}\r\nDate: Mon, 03 Jun 2024 10:0{n}:00 +0000\r\n"
            f"Message-ID: <{n}@test.example>\r\n\r\nBody {n}\r\n").encode()


def _plain(server: Server) -> IMAPClient:
    client = IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=10)
    client.login(USER, PASSWORD)
    return client


def _flags(client: IMAPClient) -> list[set[bytes]]:
    """Flags of all messages in the selected folder, in UID order, without \\Recent."""
    fetched = client.fetch(client.search(), ["FLAGS"])
    return [set(fetched[uid][b"FLAGS"]) - {b"\\Recent"} for uid in sorted(fetched)]


def _server_uids(server: Server, folder: str) -> set[int]:
    with _plain(server) as client:
        client.select_folder(folder, readonly=True)
        return set(client.search("ALL"))


# The contract, on both servers.


def test_imaps_login_verifies_the_generated_certificate(server: Server, kind: Kind) -> None:
    context = ssl.create_default_context(cafile=str(server.cert_path))
    assert context.check_hostname  # 127.0.0.1 matches only thanks to the IP SAN
    with IMAPClient(server.host, port=server.imaps_port, ssl_context=context, timeout=10) as client:
        assert kind.welcome in client.welcome
        assert client.login(USER, PASSWORD)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0  # Cyrus creates it at the first login


def test_default_ca_rejects_the_self_signed_certificate(server: Server) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(server.host, port=server.imaps_port,
                   ssl_context=ssl.create_default_context(), timeout=10)


def test_plain_login_advertises_idle_condstore_and_qresync(server: Server, kind: Kind) -> None:
    with _plain(server) as client:
        capabilities = set(client.capabilities())
        selected = client.select_folder("INBOX")
    assert {b"IDLE", b"CONDSTORE", b"QRESYNC", b"MOVE", b"UIDPLUS"} <= capabilities
    if kind.name == CYRUS:  # Cyrus reports it on SELECT even before CONDSTORE is enabled
        assert selected[b"HIGHESTMODSEQ"] >= 1


def test_hidden_sync_extensions_are_not_advertised(make: ServerFactory, kind: Kind) -> None:
    server = make(kind.without_sync_extensions())
    server.start()
    with _plain(server) as client:
        capabilities = set(client.capabilities())
    assert b"UIDPLUS" in capabilities
    assert not {b"IDLE", b"CONDSTORE", b"QRESYNC"} & capabilities


def test_wrong_password_is_rejected_at_once_and_does_not_lock_out(server: Server, kind: Kind) -> None:
    for _ in range(2):
        with IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=10) as client:
            started = time.monotonic()
            with pytest.raises(LoginError):
                client.login(USER, "wrong-password")
            assert time.monotonic() - started < kind.wrong_password_within
    with _plain(server) as client:  # would stall for seconds if a penalty were still on
        assert client.select_folder("INBOX")[b"EXISTS"] == 0


def test_messages_delivered_before_and_after_start_are_visible(make: ServerFactory) -> None:
    server = make()
    server.deliver(USER, _message(1), flags="S")
    server.deliver(USER, _message(2))
    server.deliver(USER, _message(3), folder="Archive", flags="FS")
    server.start()
    with _plain(server) as client:
        assert client.select_folder("INBOX")[b"EXISTS"] == 2
        assert _flags(client) == [{b"\\Seen"}, set()]
        server.deliver(USER, _message(4), flags="RS")  # while INBOX is selected
        client.noop()
        assert _flags(client) == [{b"\\Seen"}, set(), {b"\\Seen", b"\\Answered"}]
        client.normalise_times = False
        fetched = client.fetch(client.search(), ["ENVELOPE", "INTERNALDATE"])
        in_uid_order = [fetched[uid] for uid in sorted(fetched)]
        subjects = [f[b"ENVELOPE"].subject for f in in_uid_order]
        assert subjects == [b"message 1", b"message 2", b"message 4"]  # UIDs in delivery order
        # INTERNALDATE comes from the Date header, like a real arrival time.
        assert in_uid_order[0][b"INTERNALDATE"] == datetime(2024, 6, 3, 10, 1, tzinfo=UTC)
        assert client.select_folder("Archive", readonly=True)[b"EXISTS"] == 1
        assert _flags(client) == [{b"\\Seen", b"\\Flagged"}]


def test_delivered_folders_appear_in_list(server: Server) -> None:
    server.deliver(USER, _message(1), folder="Archive")
    server.deliver(USER, _message(2), folder="Projects/2025")
    server.deliver(USER, _message(3), folder="Entwürfe")
    with _plain(server) as client:
        folders = {name: delimiter for _flags_, delimiter, name in client.list_folders()}
        assert {"INBOX", "Archive", "Projects", "Projects/2025", "Entwürfe"} <= folders.keys()
        assert folders["Projects/2025"] == b"/"
        assert client.select_folder("Entwürfe")[b"EXISTS"] == 1
        assert client.select_folder("Projects/2025")[b"EXISTS"] == 1


def test_deliver_recreates_a_folder_deleted_behind_its_back(server: Server) -> None:
    server.deliver(USER, _message(1), folder="Archive")
    with _plain(server) as client:
        client.delete_folder("Archive")
    server.deliver(USER, _message(2), folder="Archive")
    assert len(_server_uids(server, "Archive")) == 1


def test_idle_reports_messages_delivered_while_idling(server: Server) -> None:
    with _plain(server) as client:
        client.select_folder("INBOX")
        client.idle()
        try:
            started = time.monotonic()
            server.deliver(USER, _message(1))
            responses = client.idle_check(timeout=10)
            elapsed = time.monotonic() - started
        finally:
            client.idle_done()
    assert (1, b"EXISTS") in responses
    # Pushed: Dovecot after about 0.5 s, Cyrus by idled (its imapd alone would poll every 60 s).
    assert elapsed < 2


def test_sample_mailbox_is_served_byte_for_byte_except_what_the_server_refuses(
    make: ServerFactory, kind: Kind
) -> None:
    server = make()
    messages = generate_mailbox(60)
    assert {m.folder for m in messages} == {"INBOX", "Archive"}
    for message in messages:
        server.deliver(USER, message.raw, folder=message.folder, flags=message.flags)
    server.start()
    rejected = server.rejected if isinstance(server, CyrusServer) else []  # Dovecot takes all
    assert tuple(r.reason for r in rejected) == kind.refuses_in_sample
    if kind.name == CYRUS:
        assert b"has no colon" in rejected[0].raw
    refused = {r.raw for r in rejected}
    with _plain(server) as client:
        for folder in ("INBOX", "Archive"):
            kept = [m for m in messages if m.folder == folder and m.raw not in refused]
            assert client.select_folder(folder, readonly=True)[b"EXISTS"] == len(kept)
            fetched = client.fetch(client.search(), ["BODY.PEEK[]", "RFC822.SIZE"])
            served = [fetched[uid] for uid in sorted(fetched)]
            assert [f[b"BODY[]"] for f in served] == [m.raw for m in kept]
            assert [f[b"RFC822.SIZE"] for f in served] == [len(m.raw) for m in kept]


def test_users_added_while_running_can_log_in(server: Server) -> None:
    server.add_user("bob", "first-pw")
    with IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=10) as client:
        client.login("bob", "first-pw")
    server.add_user("bob", "second-pw")  # password change is picked up too
    with IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=10) as client:
        with pytest.raises(LoginError):
            client.login("bob", "first-pw")
    with IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=10) as client:
        client.login("bob", "second-pw")
    server.deliver("bob", _message(1))
    with IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=10) as client:
        client.login("bob", "second-pw")
        assert client.select_folder("INBOX")[b"EXISTS"] == 1


def test_stop_is_idempotent_and_frees_the_ports(server: Server) -> None:
    ports = server.imap_port, server.imaps_port
    with _plain(server):  # a connected client must not keep its imapd alive
        server.stop()
    server.stop()
    for port in ports:
        with pytest.raises(OSError):
            socket.create_connection((server.host, port), timeout=2).close()


def test_restart_keeps_mail_and_users(server: Server, kind: Kind) -> None:
    server.deliver(USER, _message(1), folder="Archive")
    before = server.imap_port, server.imaps_port
    server.stop()
    server.deliver(USER, _message(2))  # Cyrus queues it until the next start
    server.start()
    if kind.name == DOVECOT:  # Dovecot comes back where its clients expect it
        assert (server.imap_port, server.imaps_port) == before
    if isinstance(server, CyrusServer):
        assert server.rejected == []
    assert len(_server_uids(server, "INBOX")) == 1
    assert len(_server_uids(server, "Archive")) == 1


def test_deliver_rejects_unknown_users_flags_and_folders(server: Server) -> None:
    with pytest.raises(ValueError):
        server.deliver("nobody-here", _message(1))
    with pytest.raises(ValueError):
        server.deliver(USER, _message(1), flags="X")
    with pytest.raises(ValueError):
        server.deliver(USER, _message(1), folder="a//b")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the servers' processes as others")
def test_root_dir_unreachable_for_the_servers_users_is_a_clear_error(
    make: ServerFactory, tmp_path: Path
) -> None:
    server_class = type(make())  # skips (or fails on CI) if the server is not installed
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    server = server_class(private / "server")
    with pytest.raises(RuntimeError, match="chmod o\\+x"):
        server.start()


# Dovecot only.


@only(DOVECOT)
def test_start_failure_reports_dovecots_own_error(
    make: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make()
    monkeypatch.setattr(dovecot_module, "_CONFIG", dovecot_module._CONFIG + "no_such_setting = 1\n")
    with pytest.raises(RuntimeError, match="no_such_setting"):
        server.start(timeout=10)


@only(DOVECOT)
def test_missing_dovecot_raises_a_clear_error(
    kind: Kind, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(dovecot_module.os, "access", lambda *_args: False)
    monkeypatch.setattr(dovecot_module.shutil, "which", lambda *_args: None)
    with pytest.raises(DovecotUnavailable, match="apt-get install dovecot-imapd"):
        DovecotServer(tmp_path)


# Cyrus only.


@only(CYRUS)
def test_deliver_after_start_raises_when_cyrus_refuses(server: CyrusServer) -> None:
    broken = b"From: a@example.com\r\nNot a header\r\nSubject: x\r\n\r\nbody\r\n"
    with pytest.raises(MessageRejected, match="invalid header") as refused:
        server.deliver(USER, broken)
    assert refused.value.raw == broken and server.rejected == [refused.value]
    server.deliver(USER, _message(1))  # the connection is still usable
    assert len(_server_uids(server, "INBOX")) == 1


@only(CYRUS)
def test_missing_cyrus_names_the_install_script(
    kind: Kind, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(cyrus_module, "CYRUS_DIR", tmp_path / "nothing-here")
    monkeypatch.setattr(cyrus_module, "_BIN", tmp_path / "nothing-here" / "bin")
    with pytest.raises(CyrusUnavailable, match="bin/install-cyrus"):
        CyrusServer(tmp_path / "root")


@only(CYRUS)
def test_cli_sync_stores_exactly_the_servers_messages(make: ServerFactory, tmp_path: Path) -> None:
    """The real CLI against Cyrus: IMAPS with --cafile, ``imap sync``, ``elements export``."""
    server = make()
    assert isinstance(server, CyrusServer)
    for message in generate_mailbox(300):
        server.deliver(USER, message.raw, folder=message.folder, flags=message.flags)
    server.start()
    assert len(server.rejected) == 1  # the header line without a colon
    expected = {folder: _server_uids(server, folder) for folder in ("INBOX", "Archive")}
    total = sum(len(uids) for uids in expected.values())
    assert total == 299

    cli = Cli(tmp_path / "cli")
    added = cli.add(server, folders="INBOX,Archive")  # type: ignore[arg-type]
    assert added.code == 0, added.err
    done = cli("imap", "sync", "alice", "--json")
    assert done.code == 0, done.err
    report = done.json()
    assert report["ok"] and report["fetched"] == total, report

    elements = cli("elements", "export").lines()
    for folder, uids in expected.items():
        assert sorted(e["uid"] for e in elements if e["folder"] == folder) == sorted(uids)
    assert len({e["id"] for e in elements}) == total

    again = cli("imap", "sync", "alice", "--json")
    assert again.code == 0, again.err
    assert again.json()["fetched"] == 0
