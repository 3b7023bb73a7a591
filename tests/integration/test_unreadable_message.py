"""One message the server cannot read does not block its folder (real Dovecot).

Dovecot cannot read a message file it has no permission for: the UID FETCH of a batch holding it
fails part-way (Dovecot 2.3 sends what it read, then ``* BYE FETCH failed: Internal error
occurred...`` and closes the connection). The service has to store the readable messages,
quarantine the unreadable one with the server's answer, and keep syncing the folder afterwards.
"""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from futurnal.demo.dovecot import DovecotServer

from .cli import Cli, Result, stored_count

pytestmark = pytest.mark.integration

USER, PASSWORD = "alice", "secret-pw"
BAD = 3  # the unreadable message: the third delivered, so UID 3
REFUSAL = "Internal error occurred"  # what Dovecot says when it cannot read a message file


def message(n: int) -> bytes:
    return (
        f"From: Sender {n} <s{n}@example.net>\r\nTo: alice@example.org\r\nSubject: message {n}\r\n"
        f"Message-ID: <unreadable-test-{n}@example.net>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\n"
        f"Body of message {n}.\r\n"
    ).encode()


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def message_file(server: DovecotServer, n: int) -> Path:
    """The maildir file holding message ``n`` (found by its Message-ID, in cur/ or new/)."""
    maildir = server.root / "home" / USER / "Maildir"
    marker = f"<unreadable-test-{n}@example.net>".encode()
    found = [p for sub in ("cur", "new") for p in (maildir / sub).iterdir() if marker in p.read_bytes()]
    assert len(found) == 1, found
    return found[0]


def make_unreadable(path: Path) -> None:
    """Take every permission away. Dovecot's mail processes run as ``nobody`` when the tests run
    as root, and as the test's own user otherwise; neither may read a mode-000 file (only root
    could, and Dovecot refuses to run mail processes as root). Replacing the file by a directory
    or a dangling symlink would not do: Dovecot 2.3 then reports the message as expunged."""
    path.chmod(0)


def raw_batch_answer(server: DovecotServer, uids: str) -> list[bytes]:
    """Ask Dovecot for ``UID FETCH uids (BODY.PEEK[])`` by hand; return the lines it sent after the
    command (literals included) up to its tagged answer or the end of the connection."""
    with socket.create_connection((server.host, server.imap_port), timeout=30) as sock:
        stream = sock.makefile("rwb")

        def command(tag: bytes, text: bytes) -> list[bytes]:
            stream.write(tag + b" " + text + b"\r\n")
            stream.flush()
            lines = []
            while line := stream.readline():
                lines.append(line)
                if line.startswith(tag + b" "):
                    break
            return lines

        assert stream.readline().startswith(b"* OK")
        assert command(b"a", f"LOGIN {USER} {PASSWORD}".encode())[-1].startswith(b"a OK")
        assert command(b"b", b"EXAMINE INBOX")[-1].startswith(b"b OK")
        return command(b"c", f"UID FETCH {uids} (BODY.PEEK[])".encode())


def refusals_logged(server: DovecotServer) -> int:
    """How many times Dovecot failed to open a message file (it logs each attempt)."""
    log = (server.root / "dovecot.log").read_text(encoding="utf-8", errors="replace")
    return len(re.findall(r"open\(.*\) failed: Permission denied", log))


def refusals_settled(server: DovecotServer, at_least: int, seconds: float = 10.0) -> int:
    """The refusal count once Dovecot's log has caught up. Its mail processes hand log lines to a
    separate log process, so a line can reach the file a moment after the client saw the answer:
    wait until at least ``at_least`` are there, then until the count holds still for half a
    second (so a later "no new refusal" check is not passed only because a line was late)."""
    deadline = time.monotonic() + seconds
    count = refusals_logged(server)
    while count < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
        count = refusals_logged(server)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        again = refusals_logged(server)
        if again == count:
            break
        count = again
    return count


def sync(cli: Cli) -> Result:
    return cli("imap", "sync", "alice", "--timeout", "60", "--json", timeout=150)


def quarantined(cli: Cli) -> list[dict[str, Any]]:
    listed = cli("quarantine", "list", "--json")
    assert listed.code == 0, listed.err
    return list(listed.json())


def stored_uids(cli: Cli) -> list[int]:
    return sorted(e["uid"] for e in cli("elements", "export").lines())


def assert_clean_exit(done: Result) -> None:
    """Exit 0, the report parses, and nothing on stderr looks like a traceback."""
    assert done.code == 0, f"exit {done.code}: {done.err.strip()[-2000:]}"
    assert "Traceback" not in done.err
    report = done.json()
    assert report["ok"] is True and not report["errors"], report


def test_an_unreadable_message_is_quarantined_and_the_folder_goes_on(cli: Cli, dovecot_factory: Any) -> None:
    server: DovecotServer = dovecot_factory()
    for n in range(1, 6):
        server.deliver(USER, message(n))
    server.start()
    make_unreadable(message_file(server, BAD))

    # Dovecot really refuses a batch holding it: it sends the messages before it, then gives up on
    # the whole command (BYE and a closed connection in 2.3, NO in other versions) -- the later
    # messages of the batch never come.
    answer = raw_batch_answer(server, "1:5")
    last = answer[-1].decode("ascii", "replace")
    assert re.match(r"(\* BYE|c NO) ", last) and REFUSAL in last, answer
    assert not any(b"Body of message 5." in line for line in answer), answer
    refused_before = refusals_settled(server, at_least=1)
    assert refused_before >= 1

    assert cli.add(server).code == 0
    first = sync(cli)
    assert_clean_exit(first)
    assert stored_count(cli.data_dir) == 4, first.err
    assert stored_uids(cli) == [1, 2, 4, 5]
    records = quarantined(cli)
    assert [(r["folder"], r["uid"]) for r in records] == [("INBOX", BAD)], records
    assert REFUSAL in records[0]["reason"], records[0]["reason"]
    assert first.json()["folders"][0]["quarantined"] == 1, first.out

    # The next sync neither asks for it again nor fails.
    refused_after_first = refusals_settled(server, at_least=refused_before + 1)
    assert refused_after_first > refused_before  # the sync did meet the refusal
    second = sync(cli)
    assert_clean_exit(second)
    assert second.json()["fetched"] == 0, second.out
    assert refusals_settled(server, at_least=0) == refused_after_first, "the unreadable message was fetched again"
    assert stored_uids(cli) == [1, 2, 4, 5]
    assert [r["uid"] for r in quarantined(cli)] == [BAD]

    # New mail behind it is picked up: the folder is not blocked.
    for n in (6, 7):
        server.deliver(USER, message(n))
    third = sync(cli)
    assert_clean_exit(third)
    assert third.json()["fetched"] == 2, third.out
    assert stored_uids(cli) == [1, 2, 4, 5, 6, 7]
    assert stored_count(cli.data_dir) + len(quarantined(cli)) == 7  # nothing lost
    assert refusals_settled(server, at_least=0) == refused_after_first

    status = cli("imap", "status", "alice", "--json")
    assert status.code == 0, status.err
    (inbox,) = [f for f in status.json()["folders"] if f["folder"] == "INBOX"]
    assert inbox["last_uid"] == 7 and not inbox["last_error"], inbox

