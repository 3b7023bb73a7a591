"""Crashes, kills, cut connections and bad accounts: the store still ends equal to the server."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from futurnal.demo.dovecot import DovecotServer
from futurnal.demo.sample_mailbox import generate_mailbox

from .cli import COMMAND, Cli, stored_count
from .fault_proxy import CuttingProxy
from .running_process import collect_lines
from .sync_harness import ServerClient


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def _populated(dovecot_factory: Any, count: int, seed: int = 5) -> DovecotServer:
    server = dovecot_factory()
    for message in generate_mailbox(count, seed=seed):
        server.deliver("alice", message.raw, folder="INBOX", flags=message.flags)
    server.start()
    return server


def _assert_store_equals_server(cli: Cli, server: DovecotServer, mailbox: str = "alice") -> None:
    other = ServerClient(server)
    try:
        expected = other.state("INBOX")
    finally:
        other.close()
    elements = [e for e in cli("elements", "export", "--mailbox", mailbox).lines()]
    uids = [e["uid"] for e in elements]
    assert len(uids) == len(set(uids)), "an element was stored twice"
    assert {e["uid"]: e["flags"] for e in elements} == expected


def _stored_files(cli: Cli) -> int:
    return stored_count(cli.data_dir)


def test_sigkill_at_random_points_of_an_initial_sync_loses_and_doubles_nothing(
    cli: Cli, dovecot_factory: Any
) -> None:
    server = _populated(dovecot_factory, 2000)
    cli.data_dir.mkdir(parents=True)
    (cli.data_dir / "config.toml").write_text("[sync]\nbatch_messages = 25\n")
    assert cli.add(server).code == 0
    rng = random.Random(42)
    kills = 0
    for round_ in range(4):
        target = _stored_files(cli) + rng.randint(50, 400)
        process = subprocess.Popen([COMMAND, "imap", "sync", "alice"], env=cli.env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while process.poll() is None and _stored_files(cli) < target and time.monotonic() < deadline:
            time.sleep(0.01)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait(timeout=30)
        # Every stored element is whole, whatever instant the kill hit.
        uids = [e["uid"] for e in cli("elements", "export").lines()]
        assert all(uid > 0 for uid in uids)
        if round_ == 0 and kills:  # newest first: what the first run stored is the top of the folder
            assert max(uids) == 2000 and min(uids) > 1000, (min(uids), max(uids))
    assert kills >= 2, "the sync finished before it could be killed: make the mailbox bigger"
    finished = cli("imap", "sync", "alice")
    assert finished.code == 0, finished.err
    _assert_store_equals_server(cli, server)
    # What each kill cost: the bodies Dovecot sent (its logout lines count them per session) beyond
    # the 2,000 of the folder are at most what was in flight at each kill: the batch being
    # fetched, the one being parsed, and the batches_in_flight (2) waiting on the sink.
    bodies = sum(int(n) for n in re.findall(r"body_count=(\d+)", (server.root / "dovecot.log").read_text()))
    assert 2000 <= bodies <= 2000 + kills * (2 + 2) * 25, (bodies, kills)


def _with_bad_messages(dovecot_factory: Any, markers: list[str], after: int) -> DovecotServer:
    """60 good messages, one message holding each marker (UIDs 61, 62, ...), then ``after`` good ones."""
    server = _populated(dovecot_factory, 60)
    other = ServerClient(server)
    for marker in markers:
        other.client.append("INBOX", f"From: x@example.org\r\nSubject: bad\r\n\r\n{marker}\r\n".encode())
    other.append(after, tag="after")
    other.close()
    return server


def _sync_with(cli: Cli, **env: str) -> None:
    done = subprocess.run([COMMAND, "imap", "sync", "alice", "--json"], env={**cli.env, **env}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_message_that_keeps_crashing_the_fetcher_is_quarantined_and_the_rest_stored(
    cli: Cli, dovecot_factory: Any
) -> None:
    server = _with_bad_messages(dovecot_factory, ["POISON-MARKER-42"], after=5)
    assert cli.add(server).code == 0
    _sync_with(cli, FUTURNAL_TEST_CRASH_ON="POISON-MARKER-42")
    quarantined = cli("quarantine", "list", "--json").json()
    assert len(quarantined) == 1 and quarantined[0]["uid"] == 61
    assert "crashed the fetcher" in quarantined[0]["reason"]
    stored = {e["uid"] for e in cli("elements", "export").lines()}
    assert stored == set(range(1, 67)) - {61}

    retried = cli("quarantine", "retry", quarantined[0]["id"])  # today's parser has no such fault
    assert retried.code == 0, retried.err
    assert cli("quarantine", "list", "--json").json() == []
    _assert_store_equals_server(cli, server)


def test_messages_that_kill_or_hang_a_parser_process_are_quarantined_and_the_rest_stored(
    cli: Cli, dovecot_factory: Any
) -> None:
    server = _with_bad_messages(dovecot_factory, ["PARSER-EXIT-7", "PARSER-HANG-7"], after=40)
    assert cli.add(server).code == 0
    (cli.data_dir / "config.toml").write_text("[sync]\nparse_workers = 2\nparse_timeout_seconds = 2\n")
    _sync_with(cli, FUTURNAL_TEST_PARSER_EXIT_ON="PARSER-EXIT-7", FUTURNAL_TEST_PARSER_HANG_ON="PARSER-HANG-7")
    reasons = {q["uid"]: q["reason"] for q in cli("quarantine", "list", "--json").json()}
    assert reasons == {61: "parser process died", 62: "parse took over 2 s"}
    stored = {e["uid"] for e in cli("elements", "export").lines()}
    assert stored == set(range(1, 103)) - {61, 62}


def test_one_mailbox_with_a_wrong_password_does_not_stop_the_other(cli: Cli, dovecot_factory: Any) -> None:
    server = _populated(dovecot_factory, 120)
    server.add_user("bob", "bobs-pw")
    assert cli.add(server).code == 0
    bad = cli.add(server, "--no-verify", user="bob", mailbox_id="bob", password="not-bobs-pw")
    assert bad.code == 0, bad.err
    process = subprocess.Popen([COMMAND, "run"], env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    lines: list[str] = []
    assert process.stdout is not None
    reader = collect_lines(process.stdout, lines)
    try:
        deadline = time.monotonic() + 60
        while not (any(line.startswith(tuple("0123456789")) and " alice: 120 new" in line for line in lines)
                   and any(" bob: 0 new; * failed" in line for line in lines)):
            assert time.monotonic() < deadline and process.poll() is None, f"run said only: {lines}"
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        reader.join(10)
    assert process.returncode == 0, process.stderr.read()  # type: ignore[union-attr]
    assert any("rejected the login" in line for line in lines)
    status = cli("imap", "status", "bob", "--json").json()
    assert status["state"] == "needs-reauth" and "rejected the login" in status["needs_reauth"]["reason"]
    assert cli("imap", "status", "alice", "--json").json()["state"] == "ok"
    _assert_store_equals_server(cli, server)
    assert cli("elements", "export", "--mailbox", "bob").out == ""


def test_connections_cut_at_random_byte_offsets_end_with_store_equal_to_server(
    cli: Cli, dovecot_factory: Any
) -> None:
    server = _populated(dovecot_factory, 400)
    proxy = CuttingProxy(server.imap_port, cuts=6, low=2_000, high=400_000, seed=7)
    try:
        cli.data_dir.mkdir(parents=True)
        (cli.data_dir / "config.toml").write_text("[sync]\nbatch_messages = 20\n")
        added = cli("imap", "add", "--consent", "--email", "alice@example.org", "--host", "127.0.0.1", "--port", str(proxy.port),
                    "--username", "alice", "--security", "plain", "--id", "alice", "--no-verify",
                    "--password-stdin", stdin="secret-pw\n")
        assert added.code == 0, added.err
        for _attempt in range(12):  # each cut fails a sync; the next one resumes from the watermark
            if cli("imap", "sync", "alice").code == 0:
                break
        else:
            pytest.fail("the sync never got through")
        assert proxy.cut >= 3, "too few connections were cut for this test to mean anything"
        _assert_store_equals_server(cli, server)
    finally:
        proxy.close()


def test_a_mailbox_that_keeps_crashing_is_parked_and_the_others_go_on(cli: Cli, dovecot_factory: Any) -> None:
    server = dovecot_factory()
    server.add_user("bob", "bobs-pw")
    for n in range(20):
        server.deliver("alice", f"Subject: a{n}\r\nMessage-ID: <a{n}@x>\r\n\r\nCRASH-EVERY-TIME {n}\r\n".encode())
    for message in generate_mailbox(50, seed=9):
        server.deliver("bob", message.raw, folder="INBOX", flags=message.flags)
    server.start()
    cli.data_dir.mkdir(parents=True)
    (cli.data_dir / "config.toml").write_text("[supervision]\nmax_restarts = 2\n")
    assert cli.add(server).code == 0
    assert cli.add(server, user="bob", mailbox_id="bob", password="bobs-pw").code == 0
    env = {**cli.env, "FUTURNAL_TEST_CRASH_ON": "CRASH-EVERY-TIME"}
    process = subprocess.Popen([COMMAND, "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 60
        while not (len(cli("elements", "export", "--mailbox", "bob").lines()) == 50
                   and cli("imap", "status", "alice", "--json").json()["state"] == "parked"):
            assert time.monotonic() < deadline and process.poll() is None, "bob never synced or alice never parked"
            time.sleep(0.2)
        assert process.poll() is None, "one parked mailbox must not stop the service"
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    status = cli("imap", "status", "alice", "--json").json()
    assert "keeps failing" in status["parked"]["reason"]
    events = [entry["event"] for entry in cli("audit", "tail", "-n", "50", "--json").json()]
    assert "mailbox-parked" in events
