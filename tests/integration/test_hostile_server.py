"""The CLI against a server that misbehaves on purpose (tests/servers/hostile_imap.py).

Each test scripts one way a real server goes wrong (a FETCH answer without the body, a batch
refused for one bad message, a literal far larger than announced, a body that trickles in, a
UIDVALIDITY or a folder name no sane server sends, a UID space with a huge gap) and checks
through the real ``futurnal-actors`` command that nothing is lost silently, memory stays
bounded, the sync ends, and the terminal is never fed raw control characters. No Dovecot needed.
"""

from __future__ import annotations

import subprocess
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..servers.hostile_imap import Folder, HostileImap, Quirk
from .cli import COMMAND, Cli, Result, stored_count
from .peak_memory import run_measured

pytestmark = pytest.mark.integration

MAILBOX = "hostile"
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31mRed\x9b0m"  # OSC title, clear screen, colours; \x9b is C1 CSI
CYRILLIC = "Архив переписки с поставщиками оборудования за весь 2025"  # 56 characters
CJK = ("项目档案与往来邮件归档" * 8)[:80]
MEMORY_CEILING_MB = 300


def message(n: int, body_bytes: int = 0) -> bytes:
    """A small valid message, optionally padded with ``body_bytes`` of text lines."""
    lines = (b"line of padding text for a large message, seventy-odd bytes long...\r\n" * (body_bytes // 70 + 1))
    return (
        f"From: Sender {n} <s{n}@example.net>\r\nTo: a@example.org\r\nSubject: message {n}\r\n"
        f"Message-ID: <hostile-{n}@example.net>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\n"
        f"Body of message {n}.\r\n"
    ).encode() + lines[:body_bytes]


def messages(*uids: int) -> dict[int, bytes]:
    return {uid: message(uid) for uid in uids}


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start a hostile server from a folder script; every server is stopped after the test."""
    started: list[HostileImap] = []

    def start(folders: dict[str, Folder]) -> HostileImap:
        server = HostileImap(folders, timeout=20)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def register(cli: Cli, server: HostileImap, *extra: str, folders: str = "INBOX") -> None:
    added = cli("imap", "add", "--email", "a@example.org", "--host", "127.0.0.1", "--port", str(server.port),
                "--username", "a", "--password-stdin", "--security", "plain", "--id", MAILBOX,
                "--folders", folders, "--consent", *extra, stdin="pw\n")
    assert added.code == 0, added.err


def sync(cli: Cli, *extra: str, timeout: float = 120) -> Result:
    return cli("imap", "sync", MAILBOX, "--timeout", "60", *extra, timeout=timeout)


def quarantined(cli: Cli) -> list[dict[str, Any]]:
    listed = cli("quarantine", "list", "--json")
    assert listed.code == 0, listed.err
    return list(listed.json())


def stored_uids(cli: Cli, folder: str = "INBOX") -> list[int]:
    return sorted(e["uid"] for e in cli("elements", "export").lines() if e["folder"] == folder)


def folder_status(cli: Cli, folder: str) -> dict[str, Any]:
    status = cli("imap", "status", MAILBOX, "--json")
    assert status.code == 0, status.err
    (found,) = [f for f in status.json()["folders"] if f["folder"] == folder]
    return dict(found)


def control_characters(text: str) -> set[str]:
    """C0 and C1 control characters in ``text``, newline and tab aside."""
    return {ch for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\t"}


# -- 1. a FETCH answer without BODY[] ----------------------------------------------------------

def test_a_body_missing_once_is_asked_for_again_and_stored(cli: Cli, serve: Any) -> None:
    server = serve({"INBOX": Folder(7, messages(1, 2, 3, 4), quirks={3: Quirk(omit_body=1)})})
    register(cli, server)
    done = sync(cli)
    assert done.code == 0, done.err
    assert stored_uids(cli) == [1, 2, 3, 4]
    assert quarantined(cli) == []
    assert server.body_fetches[("INBOX", 3)] == 2


def test_a_body_never_sent_is_quarantined_and_the_rest_is_stored(cli: Cli, serve: Any) -> None:
    server = serve({"INBOX": Folder(7, messages(1, 2, 3, 4, 5), quirks={3: Quirk(omit_body=True)})})
    register(cli, server)
    done = sync(cli)
    assert done.code == 0, done.err
    assert stored_uids(cli) == [1, 2, 4, 5]
    records = quarantined(cli)
    assert [(r["folder"], r["uid"]) for r in records] == [("INBOX", 3)]
    assert "did not send" in records[0]["reason"]
    assert stored_count(cli.data_dir) + len(records) == len(server.folders["INBOX"].messages)  # nothing lost

    asked = server.body_fetches[("INBOX", 3)]
    again = sync(cli)
    assert again.code == 0, again.err
    assert server.body_fetches[("INBOX", 3)] == asked  # not fetched again
    assert len(quarantined(cli)) == 1 and stored_uids(cli) == [1, 2, 4, 5]
    assert folder_status(cli, "INBOX")["last_uid"] == 5


# -- 2. messages too large, announced honestly or not -------------------------------------------

def test_a_message_larger_than_the_limit_is_quarantined_without_downloading_it(cli: Cli, serve: Any) -> None:
    big = message(2, body_bytes=1_500_000)
    server = serve({"INBOX": Folder(7, {**messages(1, 3), 2: big})})
    cli.env["FUTURNAL_SYNC_MAX_MESSAGE_BYTES"] = "1000000"
    register(cli, server)
    done = sync(cli)
    assert stored_uids(cli) == [1, 3], done.err
    records = quarantined(cli)
    assert [r["uid"] for r in records] == [2] and "too large" in records[0]["reason"]
    assert server.body_fetches[("INBOX", 2)] == 0  # the body was never asked for


def test_a_lying_gigabyte_literal_does_not_grow_the_process(cli: Cli, serve: Any) -> None:
    liar = Quirk(literal_size=1 << 30, size_lie=2000)
    server = serve({"INBOX": Folder(7, messages(1, 2, 3, 4), quirks={3: liar})})
    cli.env["FUTURNAL_SYNC_MAX_MESSAGE_BYTES"] = "1000000"
    register(cli, server)
    done = run_measured([COMMAND, "imap", "sync", MAILBOX, "--timeout", "60"], cli.env, timeout=150)
    assert done.own_peak_mb < MEMORY_CEILING_MB, (
        f"imap sync peaked at {done.own_peak_mb:.0f} MiB ({done.seconds:.0f}s): {done.err[-500:]}"
    )
    assert stored_uids(cli) == [1, 2, 4], done.err
    records = quarantined(cli)
    assert [r["uid"] for r in records] == [3] and "too large" in records[0]["reason"]


def test_many_large_bodies_under_small_announced_sizes_do_not_grow_the_process(cli: Cli, serve: Any) -> None:
    # Each body is under the limit, but the sizes lie: a batch of sixteen was answered with 320 MB,
    # all held at once (a peak near 800 MB, growing with the count). A batch holds what its sizes
    # announced plus a message or two; the rest is drained and asked for one by one.
    liar = Quirk(literal_size=20_000_000, size_lie=2000)
    server = serve({"INBOX": Folder(7, messages(*range(1, 19)), quirks={uid: liar for uid in range(2, 18)})})
    cli.env["FUTURNAL_SYNC_MAX_MESSAGE_BYTES"] = "25000000"
    register(cli, server)
    done = run_measured([COMMAND, "imap", "sync", MAILBOX, "--timeout", "150"], cli.env, timeout=200)
    assert done.code == 0, done.err
    assert done.own_peak_mb < 450, f"imap sync peaked at {done.own_peak_mb:.0f} MiB ({done.seconds:.0f}s)"
    assert stored_uids(cli) == list(range(1, 19)) and quarantined(cli) == []


# -- 3. one unreadable message fails its whole batch --------------------------------------------

def test_a_batch_refused_for_one_message_stores_the_others(cli: Cli, serve: Any) -> None:
    refusal = "Internal error occurred. Refer to server log for more information. [2026-03-02 10:00:00]"
    server = serve({"INBOX": Folder(7, messages(1, 2, 3, 4, 5, 6), quirks={4: Quirk(fail_batch_with=refusal)})})
    register(cli, server)
    done = sync(cli)
    assert stored_uids(cli) == [1, 2, 3, 5, 6], done.err
    records = quarantined(cli)
    assert [r["uid"] for r in records] == [4]
    assert "Internal error occurred" in records[0]["reason"]
    assert stored_count(cli.data_dir) + len(records) == 6


# -- 4. a slow loris ----------------------------------------------------------------------------

def test_a_trickling_body_ends_its_fetch_in_time_and_is_quarantined_not_blocking_the_folder(
    cli: Cli, serve: Any
) -> None:
    slow = message(2, body_bytes=2000)
    server = serve({"INBOX": Folder(7, {**messages(1, 3), 2: slow}, quirks={2: Quirk(trickle=2.0)})})
    register(cli, server)
    cli.env.update({"FUTURNAL_NETWORK_READ_TIMEOUT_SECONDS": "2",
                    "FUTURNAL_NETWORK_MIN_TRANSFER_BYTES_PER_SECOND": "1000"})
    started = time.monotonic()
    try:
        done = cli("imap", "sync", MAILBOX, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("imap sync was still reading a body sent at 2 bytes/s after 90 s")
    # The batch ran out of time, its messages were asked for one at a time, and the one the server
    # never sends in time (asked twice) is quarantined with the reason; the others are stored.
    assert time.monotonic() - started < 60
    assert stored_uids(cli) == [1, 3], done.err
    assert folder_status(cli, "INBOX")["last_uid"] == 3
    listed = cli("quarantine", "list", "--json")
    assert listed.code == 0, listed.err
    assert "did not send it in time" in listed.out, listed.out

    server.folders["INBOX"].quirks.clear()  # the server recovers: the folder is not blocked
    server.folders["INBOX"].messages[4] = message(4)
    again = sync(cli)
    assert again.code == 0, again.err
    assert stored_uids(cli) == [1, 3, 4]


# -- 5. escape sequences in a folder name -------------------------------------------------------

def test_control_characters_in_a_folder_name_never_reach_the_terminal(cli: Cli, serve: Any) -> None:
    server = serve({"INBOX": Folder(7, messages(1)), ESCAPES: Folder(8, messages(1, 2))})
    register(cli, server, folders=f"INBOX,{ESCAPES}")
    done = sync(cli)
    assert done.code == 0, done.err
    assert stored_uids(cli, ESCAPES) == [1, 2]
    status = cli("imap", "status", MAILBOX)
    assert status.code == 0, status.err
    for shown in (done, status):
        assert not control_characters(shown.out + shown.err), repr(shown.out + shown.err)
        assert "pwned" in shown.out and "Red" in shown.out, shown.out


# -- 6. UIDVALIDITY beyond 32 bits --------------------------------------------------------------

def test_a_uidvalidity_beyond_32_bits_fails_that_folder_only(cli: Cli, serve: Any) -> None:
    server = serve({"INBOX": Folder(7, messages(1, 2)), "Broken": Folder(2**32 + 5, messages(1, 2, 3))})
    # `imap add` checks each folder and refuses this one; registered unchecked, the sync must cope.
    register(cli, server, "--no-verify", folders="INBOX,Broken")
    done = sync(cli, "--json")
    assert done.code == 1, done.err
    report = done.json()
    errors = {e["folder"]: e["error"] for e in report["errors"]}
    assert list(errors) == ["Broken"] and "UIDVALIDITY" in errors["Broken"]
    assert stored_uids(cli, "Broken") == []
    assert stored_uids(cli) == [1, 2]


# -- 7. a sparse UID space ----------------------------------------------------------------------

def test_a_huge_gap_in_the_uid_space_costs_few_commands(cli: Cli, serve: Any) -> None:
    server = serve({"INBOX": Folder(7, messages(1, 2, 4294967290), uidnext=4294967295)})
    register(cli, server)
    before = server.command_count
    done = sync(cli)
    spent = server.command_count - before
    assert done.code == 0, done.err
    assert stored_uids(cli) == [1, 2, 4294967290]
    assert spent < 50, f"{spent} commands, from {server.commands()[before:before + 8]}"


# -- 8. long non-Latin folder names -------------------------------------------------------------

def test_long_cyrillic_and_cjk_folder_names_sync(cli: Cli, serve: Any) -> None:
    assert len(CYRILLIC) == 56 and len(CJK) == 80
    server = serve({"INBOX": Folder(7, messages(1)), CYRILLIC: Folder(8, messages(1, 2)),
                    CJK: Folder(9, messages(5, 6, 7))})
    register(cli, server, folders=f"INBOX,{CYRILLIC},{CJK}")
    done = sync(cli)
    assert done.code == 0, done.err
    assert stored_uids(cli, CYRILLIC) == [1, 2] and stored_uids(cli, CJK) == [5, 6, 7]
    assert folder_status(cli, CYRILLIC)["stored"] == 2 and folder_status(cli, CJK)["stored"] == 3
    shown = cli("imap", "status", MAILBOX)
    assert shown.code == 0, shown.err
    assert CYRILLIC in shown.out and CJK in shown.out, shown.out
