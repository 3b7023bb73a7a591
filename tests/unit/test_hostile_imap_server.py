"""The scriptable misbehaving IMAP server of the hardening tests, checked with the real IMAPClient."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import imapclient
import pytest
from imapclient.exceptions import IMAPClientError, LoginError

from ..servers.hostile_imap import Folder, HostileImap, Quirk

CYRILLIC = "Входящие от поставщиков"
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31mRed"


def message(n: int) -> bytes:
    return (f"From: s{n}@example.net\r\nTo: a@example.org\r\nSubject: message {n}\r\n"
            f"Message-ID: <m{n}@example.net>\r\n\r\nbody of {n}\r\n").encode()


ITEMS = ["BODY.PEEK[]", "FLAGS", "INTERNALDATE", "RFC822.SIZE"]


@pytest.fixture
def server() -> Iterator[HostileImap]:
    with HostileImap({
        "INBOX": Folder(7, {1: message(1), 2: message(2), 4294967294: message(3)}, flags={1: ("\\Seen",)}),
        CYRILLIC: Folder(2**33, {5: message(5)}),
        ESCAPES: Folder(9, {1: message(9)}),
        "Dense": Folder(11, {uid: message(uid) for uid in range(1, 16)}),
    }, timeout=10) as running:
        yield running


@pytest.fixture
def client(server: HostileImap) -> Iterator[imapclient.IMAPClient]:
    with imapclient.IMAPClient("127.0.0.1", port=server.port, ssl=False, timeout=10) as connected:
        connected.login("anyone", "anything")
        yield connected


def test_login_list_and_select_with_unicode_names_and_a_huge_uidvalidity(client: imapclient.IMAPClient) -> None:
    names = [name for _, _, name in client.list_folders()]
    assert names == ["INBOX", CYRILLIC, ESCAPES, "Dense"]
    inbox = client.select_folder("INBOX", readonly=True)
    assert inbox[b"EXISTS"] == 3 and inbox[b"UIDVALIDITY"] == 7 and inbox[b"UIDNEXT"] == 4294967295
    assert client.select_folder(CYRILLIC, readonly=True)[b"UIDVALIDITY"] == 2**33
    assert client.select_folder(ESCAPES, readonly=True)[b"EXISTS"] == 1
    assert client.folder_status(CYRILLIC, ["MESSAGES", "UIDNEXT"]) == {b"MESSAGES": 1, b"UIDNEXT": 6}
    with pytest.raises(IMAPClientError):
        client.select_folder("Nope", readonly=True)


def test_a_configured_login_refuses_other_credentials() -> None:
    with HostileImap(username="a", password="right") as server:
        with imapclient.IMAPClient("127.0.0.1", port=server.port, ssl=False, timeout=10) as client:
            with pytest.raises(LoginError):
                client.login("a", "wrong")
            client.login("a", "right")
            assert client.noop()


def test_fetch_answers_bodies_headers_flags_and_sizes(client: imapclient.IMAPClient) -> None:
    client.select_folder("INBOX", readonly=True)
    answer = client.fetch([1, 2, 4294967294], ITEMS)
    assert answer[1][b"BODY[]"] == message(1)
    assert answer[4294967294][b"BODY[]"] == message(3)
    assert answer[1][b"FLAGS"] == (b"\\Seen",)
    assert answer[2][b"RFC822.SIZE"] == len(message(2))
    headers = client.fetch([2], ["BODY.PEEK[HEADER]"])
    assert headers[2][b"BODY[HEADER]"] == message(2).split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    with pytest.raises(IMAPClientError):
        client.fetch([1], ["ENVELOPE"])  # not something this server knows: BAD


def test_sparse_uids_and_sequence_sets(client: imapclient.IMAPClient) -> None:
    client.select_folder("INBOX", readonly=True)
    assert client.search("ALL") == [1, 2, 4294967294]
    assert client.search(["UID", "2:*"]) == [2, 4294967294]
    assert client.search(["UID", "4294967295:*"]) == [4294967294]  # n:* always holds the highest UID
    client.select_folder("Dense", readonly=True)
    assert client.search(["UID", "3,7,9:12"]) == [3, 7, 9, 10, 11, 12]
    assert sorted(client.fetch([5, 6, 7, 8, 9, 10], ["RFC822.SIZE"])) == [5, 6, 7, 8, 9, 10]


def test_omit_body_the_first_time_or_always(server: HostileImap, client: imapclient.IMAPClient) -> None:
    server.folders["INBOX"].quirks[2] = Quirk(omit_body=1)
    server.folders["INBOX"].quirks[4294967294] = Quirk(omit_body=True)
    client.select_folder("INBOX", readonly=True)
    first = client.fetch([1, 2, 4294967294], ITEMS)
    assert b"BODY[]" in first[1] and b"BODY[]" not in first[2] and b"BODY[]" not in first[4294967294]
    assert first[2][b"FLAGS"] == () and first[2][b"RFC822.SIZE"] == len(message(2))
    second = client.fetch([2, 4294967294], ITEMS)
    assert second[2][b"BODY[]"] == message(2) and b"BODY[]" not in second[4294967294]
    assert server.body_fetches[("INBOX", 2)] == 2 and server.body_fetches[("INBOX", 1)] == 1


def test_fail_batch_with_refuses_every_body_fetch_holding_the_uid(
    server: HostileImap, client: imapclient.IMAPClient
) -> None:
    server.folders["Dense"].quirks[4] = Quirk(fail_batch_with="Internal error occurred.")
    client.select_folder("Dense", readonly=True)
    with pytest.raises(IMAPClientError, match=r"SERVERBUG.*Internal error occurred"):
        client.fetch([3, 4, 5], ITEMS)
    assert sorted(client.fetch([4], ["RFC822.SIZE"])) == [4]  # sizes alone are served
    assert client.fetch([5, 6], ITEMS)[6][b"BODY[]"] == message(6)


def test_a_lying_literal_is_streamed_and_size_lie_is_reported(
    server: HostileImap, client: imapclient.IMAPClient
) -> None:
    server.folders["INBOX"].quirks[1] = Quirk(literal_size=3_000_000, size_lie=2000)
    client.select_folder("INBOX", readonly=True)
    answer = client.fetch([1], ITEMS)[1]
    assert answer[b"RFC822.SIZE"] == 2000
    assert len(answer[b"BODY[]"]) == 3_000_000 and answer[b"BODY[]"].startswith(b"From: ")


def test_trickle_sends_the_body_at_the_given_rate(server: HostileImap, client: imapclient.IMAPClient) -> None:
    server.folders["INBOX"].quirks[2] = Quirk(trickle=len(message(2)) * 2.5)  # about 0.4 s for the body
    client.select_folder("INBOX", readonly=True)
    started = time.monotonic()
    assert client.fetch([2], ITEMS)[2][b"BODY[]"] == message(2)
    assert 0.3 < time.monotonic() - started < 5


def test_commands_are_counted_and_logged(server: HostileImap, client: imapclient.IMAPClient) -> None:
    before = server.command_count
    client.select_folder("INBOX", readonly=True)
    client.noop()
    assert server.command_count == before + 2
    assert server.commands()[-2:][0].endswith('EXAMINE "INBOX"') and server.commands()[-1].endswith("NOOP")
    encoded = imapclient.imap_utf7.encode(CYRILLIC).decode()
    client.select_folder(CYRILLIC, readonly=True)
    assert server.commands()[-1].endswith(f'EXAMINE "{encoded}"')


def test_unknown_commands_get_bad_and_idle_waits_for_done(client: imapclient.IMAPClient) -> None:
    with pytest.raises(IMAPClientError, match="unknown command CREATE"):
        client.create_folder("New")
    client.select_folder("INBOX", readonly=True)
    client.idle()
    time.sleep(0.2)
    assert client.idle_done()[0] == b"IDLE terminated"


def test_stop_cuts_open_connections(server: HostileImap, client: imapclient.IMAPClient) -> None:
    server.stop()
    with pytest.raises((OSError, IMAPClientError)):
        client.noop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).recv(1)
