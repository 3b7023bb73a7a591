"""The throwaway Cyrus IMAP must behave like a real server, and our sync must work against it.

Cyrus is the second real server next to Dovecot (see tests/servers/cyrus.py); it is unpacked into
/opt/futurnal-test/cyrus by bin/install-cyrus.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from futurnal.demo.sample_mailbox import generate_mailbox
from tests.servers import cyrus as cyrus_module
from tests.servers.cyrus import CyrusOptions, CyrusServer, CyrusUnavailable, MessageRejected

from .cli import Cli

pytestmark = pytest.mark.integration

USER, PASSWORD = "alice", "secret-pw"




def _message(n: int) -> bytes:
    return (f"From: Bob <bob@example.com>\r\nTo: Alice <alice@futurnal.test>\r\n"
            f"Subject: message {n}\r\nDate: Mon, 03 Jun 2024 10:0{n}:00 +0000\r\n"
            f"Message-ID: <{n}@test.example>\r\n\r\nBody {n}\r\n").encode()


def _plain(server: CyrusServer) -> IMAPClient:
    client = IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=10)
    client.login(USER, PASSWORD)
    return client


def _flags(client: IMAPClient) -> list[set[bytes]]:
    """Flags of all messages in the selected folder, in UID order, without \\Recent."""
    fetched = client.fetch(client.search(), ["FLAGS"])
    return [set(fetched[uid][b"FLAGS"]) - {b"\\Recent"} for uid in sorted(fetched)]


def _server_uids(server: CyrusServer, folder: str) -> set[int]:
    with _plain(server) as client:
        client.select_folder(folder, readonly=True)
        return set(client.search("ALL"))


def test_imaps_login_verifies_the_generated_certificate(cyrus: CyrusServer) -> None:
    context = ssl.create_default_context(cafile=str(cyrus.cert_path))
    assert context.check_hostname  # 127.0.0.1 matches only thanks to the IP SAN
    with IMAPClient(cyrus.host, port=cyrus.imaps_port, ssl_context=context, timeout=10) as client:
        assert b"Cyrus IMAP" in client.welcome
        assert client.login(USER, PASSWORD)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0  # created at the first login


def test_default_ca_rejects_the_self_signed_certificate(cyrus: CyrusServer) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(cyrus.host, port=cyrus.imaps_port,
                   ssl_context=ssl.create_default_context(), timeout=10)


def test_plain_login_advertises_idle_condstore_and_qresync(cyrus: CyrusServer) -> None:
    with _plain(cyrus) as client:
        capabilities = set(client.capabilities())
        assert client.select_folder("INBOX")[b"HIGHESTMODSEQ"] >= 1
    assert {b"IDLE", b"CONDSTORE", b"QRESYNC", b"MOVE", b"UIDPLUS"} <= capabilities


def test_suppressed_capabilities_are_not_advertised(cyrus_factory: CyrusFactory) -> None:
    server = cyrus_factory(CyrusOptions(suppress_capabilities="IDLE CONDSTORE QRESYNC"))
    server.start()
    with _plain(server) as client:
        capabilities = set(client.capabilities())
    assert b"UIDPLUS" in capabilities
    assert not {b"IDLE", b"CONDSTORE", b"QRESYNC"} & capabilities


def test_wrong_password_is_rejected_at_once(cyrus: CyrusServer) -> None:
    for _ in range(2):
        with IMAPClient(cyrus.host, port=cyrus.imap_port, ssl=False, timeout=10) as client:
            started = time.monotonic()
            with pytest.raises(LoginError):
                client.login(USER, "wrong-password")
            assert time.monotonic() - started < 1  # Cyrus would pause 3 s by default
    with _plain(cyrus) as client:
        assert client.select_folder("INBOX")[b"EXISTS"] == 0


def test_messages_delivered_before_and_after_start_are_visible(
    cyrus_factory: CyrusFactory,
) -> None:
    server = cyrus_factory()
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
        assert in_uid_order[0][b"INTERNALDATE"] == datetime(2024, 6, 3, 10, 1, tzinfo=timezone.utc)
        assert client.select_folder("Archive", readonly=True)[b"EXISTS"] == 1
        assert _flags(client) == [{b"\\Seen", b"\\Flagged"}]


def test_delivered_folders_appear_in_list(cyrus: CyrusServer) -> None:
    cyrus.deliver(USER, _message(1), folder="Archive")
    cyrus.deliver(USER, _message(2), folder="Projects/2025")
    cyrus.deliver(USER, _message(3), folder="Entwürfe")
    with _plain(cyrus) as client:
        folders = {name: delimiter for _flags_, delimiter, name in client.list_folders()}
        assert {"INBOX", "Archive", "Projects", "Projects/2025", "Entwürfe"} <= folders.keys()
        assert folders["Projects/2025"] == b"/"
        assert client.select_folder("Entwürfe")[b"EXISTS"] == 1
        assert client.select_folder("Projects/2025")[b"EXISTS"] == 1


def test_deliver_recreates_a_folder_deleted_behind_its_back(cyrus: CyrusServer) -> None:
    cyrus.deliver(USER, _message(1), folder="Archive")
    with _plain(cyrus) as client:
        client.delete_folder("Archive")
    cyrus.deliver(USER, _message(2), folder="Archive")
    assert len(_server_uids(cyrus, "Archive")) == 1


def test_idle_reports_messages_delivered_while_idling(cyrus: CyrusServer) -> None:
    with _plain(cyrus) as client:
        client.select_folder("INBOX")
        client.idle()
        try:
            started = time.monotonic()
            cyrus.deliver(USER, _message(1))
            responses = client.idle_check(timeout=10)
            elapsed = time.monotonic() - started
        finally:
            client.idle_done()
    assert (1, b"EXISTS") in responses
    assert elapsed < 2  # pushed by idled; imapd alone would poll only every 60 s


def test_sample_mailbox_is_served_except_what_cyrus_refuses(cyrus_factory: CyrusFactory) -> None:
    server = cyrus_factory()
    messages = generate_mailbox(60)
    for message in messages:
        server.deliver(USER, message.raw, folder=message.folder, flags=message.flags)
    server.start()
    # The header line without a colon is refused; the other broken messages are kept.
    assert [r.reason for r in server.rejected] == ["NO Message contains invalid header"]
    assert b"has no colon" in server.rejected[0].raw
    refused = {r.raw for r in server.rejected}
    with _plain(server) as client:
        for folder in ("INBOX", "Archive"):
            kept = [m for m in messages if m.folder == folder and m.raw not in refused]
            assert client.select_folder(folder, readonly=True)[b"EXISTS"] == len(kept)
            fetched = client.fetch(client.search(), ["BODY.PEEK[]", "FLAGS"])
            served = [fetched[uid] for uid in sorted(fetched)]
            assert [f[b"BODY[]"] for f in served] == [m.raw for m in kept]


def test_deliver_after_start_raises_when_cyrus_refuses(cyrus: CyrusServer) -> None:
    broken = b"From: a@example.com\r\nNot a header\r\nSubject: x\r\n\r\nbody\r\n"
    with pytest.raises(MessageRejected, match="invalid header") as refused:
        cyrus.deliver(USER, broken)
    assert refused.value.raw == broken and cyrus.rejected == [refused.value]
    cyrus.deliver(USER, _message(1))  # the connection is still usable
    assert len(_server_uids(cyrus, "INBOX")) == 1


def test_users_added_while_running_can_log_in(cyrus: CyrusServer) -> None:
    cyrus.add_user("bob", "first-pw")
    with IMAPClient(cyrus.host, port=cyrus.imap_port, ssl=False, timeout=10) as client:
        client.login("bob", "first-pw")
    cyrus.add_user("bob", "second-pw")  # password change is picked up too
    with IMAPClient(cyrus.host, port=cyrus.imap_port, ssl=False, timeout=10) as client:
        with pytest.raises(LoginError):
            client.login("bob", "first-pw")
    with IMAPClient(cyrus.host, port=cyrus.imap_port, ssl=False, timeout=10) as client:
        client.login("bob", "second-pw")
    cyrus.deliver("bob", _message(1))
    with IMAPClient(cyrus.host, port=cyrus.imap_port, ssl=False, timeout=10) as client:
        client.login("bob", "second-pw")
        assert client.select_folder("INBOX")[b"EXISTS"] == 1


def test_stop_is_idempotent_and_frees_the_ports(cyrus: CyrusServer) -> None:
    ports = cyrus.imap_port, cyrus.imaps_port
    with _plain(cyrus):  # a connected client must not keep its imapd alive
        cyrus.stop()
    cyrus.stop()
    for port in ports:
        with pytest.raises(OSError):
            socket.create_connection((cyrus.host, port), timeout=2).close()


def test_restart_keeps_mail_and_users(cyrus: CyrusServer) -> None:
    cyrus.deliver(USER, _message(1), folder="Archive")
    cyrus.stop()
    cyrus.deliver(USER, _message(2))  # queued until the next start
    cyrus.start()
    assert cyrus.rejected == []
    assert len(_server_uids(cyrus, "INBOX")) == 1
    assert len(_server_uids(cyrus, "Archive")) == 1


def test_deliver_rejects_unknown_users_flags_and_folders(cyrus: CyrusServer) -> None:
    with pytest.raises(ValueError):
        cyrus.deliver("nobody-here", _message(1))
    with pytest.raises(ValueError):
        cyrus.deliver(USER, _message(1), flags="X")
    with pytest.raises(ValueError):
        cyrus.deliver(USER, _message(1), folder="a//b")


def test_missing_cyrus_names_the_install_script(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(cyrus_module, "CYRUS_DIR", tmp_path / "nothing-here")
    monkeypatch.setattr(cyrus_module, "_BIN", tmp_path / "nothing-here" / "bin")
    with pytest.raises(CyrusUnavailable, match="bin/install-cyrus"):
        CyrusServer(tmp_path / "root")


def test_cli_sync_stores_exactly_the_servers_messages(
    cyrus_factory: CyrusFactory, tmp_path: Path
) -> None:
    """The real CLI against Cyrus: IMAPS with --cafile, ``imap sync``, ``elements export``."""
    server = cyrus_factory()
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
