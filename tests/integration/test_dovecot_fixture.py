"""The throwaway Dovecot must behave like a real server that clients can trust."""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from futurnal.demo import dovecot as dovecot_module
from futurnal.demo.dovecot import DovecotOptions, DovecotServer, DovecotUnavailable
from futurnal.demo.sample_mailbox import generate_mailbox

USER, PASSWORD = "alice", "secret-pw"  # created by the conftest fixtures
DovecotFactory = Callable[..., DovecotServer]


def _message(n: int) -> bytes:
    return (f"From: Bob <bob@example.com>\r\nTo: Alice <alice@futurnal.test>\r\n"
            f"Subject: message {n}\r\nDate: Mon, 03 Jun 2024 10:0{n}:00 +0000\r\n"
            f"Message-ID: <{n}@test.example>\r\n\r\nBody {n}\r\n").encode()


def _plain(server: DovecotServer) -> IMAPClient:
    client = IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=10)
    client.login(USER, PASSWORD)
    return client


def _flags(client: IMAPClient) -> list[set[bytes]]:
    """Flags of all messages in the selected folder, in UID order, without \\Recent."""
    fetched = client.fetch(client.search(), ["FLAGS"])
    return [set(fetched[uid][b"FLAGS"]) - {b"\\Recent"} for uid in sorted(fetched)]


def test_imaps_login_verifies_the_generated_certificate(dovecot: DovecotServer) -> None:
    context = ssl.create_default_context(cafile=str(dovecot.cert_path))
    assert context.check_hostname  # 127.0.0.1 matches only thanks to the IP SAN
    with IMAPClient(dovecot.host, port=dovecot.imaps_port, ssl_context=context,
                    timeout=10) as client:
        assert client.login(USER, PASSWORD)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0


def test_plain_imap_login_keeps_default_capabilities(dovecot: DovecotServer) -> None:
    with _plain(dovecot) as client:
        capabilities = set(client.capabilities())
    assert {b"IDLE", b"CONDSTORE", b"QRESYNC", b"MOVE", b"UIDPLUS"} <= capabilities


def test_explicit_capabilities_hide_extensions(dovecot_factory: DovecotFactory) -> None:
    server = dovecot_factory(DovecotOptions(capabilities="IMAP4rev1 LITERAL+ UIDPLUS"))
    server.start()
    with _plain(server) as client:
        capabilities = set(client.capabilities())
    assert b"UIDPLUS" in capabilities
    assert not {b"IDLE", b"CONDSTORE", b"QRESYNC"} & capabilities


def test_default_ca_rejects_the_self_signed_certificate(dovecot: DovecotServer) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(dovecot.host, port=dovecot.imaps_port,
                   ssl_context=ssl.create_default_context(), timeout=10)


def test_wrong_password_is_rejected_and_does_not_lock_out(dovecot: DovecotServer) -> None:
    for _ in range(2):
        with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=10) as client:
            with pytest.raises(LoginError):
                client.login(USER, "wrong-password")
    with _plain(dovecot) as client:  # would stall for seconds if the penalty were still on
        assert client.select_folder("INBOX")[b"EXISTS"] == 0


def test_messages_delivered_before_and_after_start_are_visible(
    dovecot_factory: DovecotFactory,
) -> None:
    server = dovecot_factory()
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


def test_idle_reports_messages_delivered_while_idling(dovecot: DovecotServer) -> None:
    with _plain(dovecot) as client:
        client.select_folder("INBOX")
        client.idle()
        try:
            dovecot.deliver(USER, _message(1))
            responses = client.idle_check(timeout=10)  # Dovecot pushes after about 0.5 s
        finally:
            client.idle_done()
    assert (1, b"EXISTS") in responses


def test_delivered_folders_appear_in_list(dovecot: DovecotServer) -> None:
    dovecot.deliver(USER, _message(1), folder="Archive")
    dovecot.deliver(USER, _message(2), folder="Projects/2025")
    dovecot.deliver(USER, _message(3), folder="Entwürfe")
    with _plain(dovecot) as client:
        names = {name for _flags_, _delim, name in client.list_folders()}
        assert {"INBOX", "Archive", "Projects/2025", "Entwürfe"} <= names
        assert client.select_folder("Entwürfe")[b"EXISTS"] == 1


def test_sample_mailbox_is_served_byte_for_byte(dovecot: DovecotServer) -> None:
    messages = generate_mailbox(40)
    for message in messages:
        dovecot.deliver(USER, message.raw, folder=message.folder, flags=message.flags)
    inbox = [m for m in messages if m.folder == "INBOX"]
    with _plain(dovecot) as client:
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == len(inbox)
        fetched = client.fetch(client.search(), ["BODY.PEEK[]", "RFC822.SIZE"])
        served = [fetched[uid] for uid in sorted(fetched)]
        assert [f[b"BODY[]"] for f in served] == [m.raw for m in inbox]
        assert [f[b"RFC822.SIZE"] for f in served] == [len(m.raw) for m in inbox]
        archived = client.select_folder("Archive", readonly=True)[b"EXISTS"]
        assert archived == len(messages) - len(inbox)


def test_users_added_while_running_can_log_in(dovecot: DovecotServer) -> None:
    dovecot.add_user("bob", "first-pw")
    with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=10) as client:
        client.login("bob", "first-pw")
    dovecot.add_user("bob", "second-pw")  # password change is picked up too
    with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=10) as client:
        with pytest.raises(LoginError):
            client.login("bob", "first-pw")
    with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=10) as client:
        client.login("bob", "second-pw")


def test_stop_is_idempotent_and_frees_the_port(dovecot: DovecotServer) -> None:
    port = dovecot.imap_port
    dovecot.stop()
    dovecot.stop()
    with pytest.raises(OSError):
        socket.create_connection((dovecot.host, port), timeout=2).close()


def test_deliver_rejects_unknown_users_and_flags(dovecot: DovecotServer) -> None:
    with pytest.raises(ValueError):
        dovecot.deliver("nobody-here", _message(1))
    with pytest.raises(ValueError):
        dovecot.deliver(USER, _message(1), flags="X")


def test_start_failure_reports_dovecots_own_error(
    dovecot_factory: DovecotFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = dovecot_factory()
    monkeypatch.setattr(dovecot_module, "_CONFIG", dovecot_module._CONFIG + "no_such_setting = 1\n")
    with pytest.raises(RuntimeError, match="no_such_setting"):
        server.start(timeout=10)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs Dovecot's processes as others")
def test_root_dir_unreachable_for_dovecot_users_is_a_clear_error(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    server = DovecotServer(private / "dovecot")
    with pytest.raises(RuntimeError, match="chmod o\\+x"):
        server.start()


def test_missing_dovecot_raises_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(dovecot_module.os, "access", lambda *_args: False)
    monkeypatch.setattr(dovecot_module.shutil, "which", lambda *_args: None)
    with pytest.raises(DovecotUnavailable, match="apt-get install dovecot-imapd"):
        DovecotServer(tmp_path)


def test_a_restarted_server_comes_back_on_the_same_ports_with_its_mail(dovecot) -> None:  # type: ignore[no-untyped-def]
    dovecot.deliver(USER, _message(1))
    before = (dovecot.imap_port, dovecot.imaps_port)
    dovecot.stop()
    dovecot.start()
    assert (dovecot.imap_port, dovecot.imaps_port) == before
    with _plain(dovecot) as client:
        client.select_folder("INBOX", readonly=True)
        assert len(client.search("ALL")) == 1
