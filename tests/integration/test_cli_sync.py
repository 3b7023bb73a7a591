"""The first vertical slice, end to end: CLI -> actor system -> real Dovecot -> element store."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import imapclient
import pytest

from futurnal.demo.dovecot import DovecotServer
from futurnal.demo.sample_mailbox import generate_mailbox
from futurnal.storage.lock import DataDirLock

from ..element_schema import assert_valid_element
from .cli import COMMAND, Cli, stored_count

REQUIRED_FIELDS = {"id", "mailbox", "folder", "uidvalidity", "uid", "message_id", "subject", "from", "to",
                   "date", "flags", "text", "attachments", "defects", "schema_version", "thread_id"}


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def populated(dovecot_factory) -> DovecotServer:  # type: ignore[no-untyped-def]
    """Dovecot with the 300-message sample mailbox (INBOX and Archive, 3 malformed)."""
    server = dovecot_factory()
    for message in generate_mailbox(300):
        server.deliver("alice", message.raw, folder=message.folder, flags=message.flags)
    server.start()
    return server


def _server_uids(server: DovecotServer, folder: str) -> set[int]:
    with imapclient.IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=30) as client:
        client.login("alice", "secret-pw")
        client.select_folder(folder, readonly=True)
        return set(client.search("ALL"))


def _append(server: DovecotServer, count: int, folder: str = "INBOX") -> None:
    with imapclient.IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=30) as client:
        client.login("alice", "secret-pw")
        for i in range(count):
            client.append(folder, (
                f"From: Late Sender <late@example.net>\r\nTo: alice@example.org\r\nSubject: late {i}\r\n"
                f"Message-ID: <late-{i}-{time.time_ns()}@example.net>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n"
                f"\r\nArrived between syncs.\r\n"
            ).encode())


def test_initial_sync_stores_exactly_one_element_per_message(cli: Cli, populated: DovecotServer) -> None:
    assert cli.add(populated, folders="INBOX,Archive").code == 0
    done = cli("imap", "sync", "alice", "--json")
    assert done.code == 0, done.err
    report = done.json()
    assert report["ok"] and report["fetched"] == 300

    elements = cli("elements", "export").lines()
    for folder in ("INBOX", "Archive"):
        stored = sorted(e["uid"] for e in elements if e["folder"] == folder)
        assert stored == sorted(_server_uids(populated, folder))
    assert len({e["id"] for e in elements}) == 300
    assert all(REQUIRED_FIELDS <= e.keys() for e in elements)
    for element in elements:
        assert_valid_element(element)
    assert not [a for e in elements for a in e["attachments"] if a["status"] == "pending"]  # sync waited

    # The malformed messages were stored with their defects, not dropped and not fatal.
    assert sum(1 for e in elements if e["defects"]) >= 3
    # Non-ASCII headers arrive decoded; threads and attachments are there.
    assert any("ü" in (e["subject"] or "") or "の" in (e["subject"] or "") for e in elements)
    assert any(n > 1 for n in Counter(e["thread_id"] for e in elements).values())
    assert any(e["attachments"] for e in elements)


def test_in_an_80_column_terminal_the_progress_redraws_each_folder_on_one_line(
    cli: Cli, populated: DovecotServer
) -> None:
    assert cli.add(populated, folders="INBOX,Archive").code == 0
    with cli.terminal("imap", "sync", "alice", columns=80, rows=24) as terminal:
        assert terminal.wait(timeout=120) == 0, terminal.screen().text()
        screen = terminal.screen()
        output = terminal.output.decode()
    assert screen.wraps == 0, screen.text()  # no line wider than the terminal
    lines = screen.lines()
    bars = {line.split(" ━")[0]: line for line in lines if line.startswith("syncing alice ")}
    assert sorted(bars) == ["syncing alice Archive", "syncing alice INBOX"], lines  # a line each, redrawn in place
    for line in bars.values():
        done, total = re.search(r" (\d+)/(\d+) ", line).groups()  # type: ignore[union-attr]
        assert done == total and "took 0:00:" in line, line
    fetched = {m.group(1): int(m.group(2)) for m in map(re.compile(r"alice (\w+): (\d+) new message").match, lines) if m}
    assert sum(fetched.values()) == 300 and len(lines) == 4, lines  # two bars, two results: nothing else
    # Every rate shown on the way: a folder's messages over at least one second of its sync.
    assert all(int(rate.replace(",", "")) <= 300 for rate in re.findall(r"([\d,]+) msg/s", output)), output


def test_second_sync_adds_nothing_and_new_mail_is_picked_up(cli: Cli, populated: DovecotServer) -> None:
    assert cli.add(populated).code == 0
    first = cli("imap", "sync", "alice", "--json").json()
    inbox_count = first["fetched"]
    assert inbox_count > 0

    again = cli("imap", "sync", "alice", "--json").json()
    assert again["fetched"] == 0 and again["folders"][0]["unchanged"] is True
    assert len(cli("elements", "export").lines()) == inbox_count

    _append(populated, 5)
    third = cli("imap", "sync", "alice", "--json").json()
    assert third["fetched"] == 5
    elements = cli("elements", "export").lines()
    assert len(elements) == inbox_count + 5
    assert sorted(e["uid"] for e in elements) == sorted(_server_uids(populated, "INBOX"))

    status = cli("imap", "status", "alice", "--json").json()
    (inbox,) = [f for f in status["folders"] if f["folder"] == "INBOX"]
    assert inbox["stored"] == inbox_count + 5
    assert inbox["last_uid"] == max(_server_uids(populated, "INBOX"))
    assert inbox["last_success"] and not inbox["last_error"]


def test_small_batches_fetch_the_same_elements(cli: Cli, populated: DovecotServer) -> None:
    (cli.data_dir).mkdir(parents=True)
    (cli.data_dir / "config.toml").write_text("[sync]\nbatch_messages = 7\nbatch_bytes = 20000\n")
    assert cli.add(populated).code == 0
    assert cli("imap", "sync", "alice").code == 0
    uids = [e["uid"] for e in cli("elements", "export").lines()]
    assert sorted(uids) == sorted(_server_uids(populated, "INBOX"))
    assert len(uids) == len(set(uids))


def test_the_password_is_kept_only_in_the_keyring(cli: Cli, dovecot: DovecotServer) -> None:
    added = cli.add(dovecot, password="secret-pw")
    assert added.code == 0
    assert "secret-pw" not in added.out + added.err
    synced = cli("--log-level", "DEBUG", "imap", "sync", "alice")
    assert synced.code == 0 and "secret-pw" not in synced.out + synced.err
    for path in cli.data_dir.rglob("*"):
        if path.is_file():
            assert b"secret-pw" not in path.read_bytes(), path


def test_wrong_password_fails_cleanly_and_registers_nothing(cli: Cli, dovecot: DovecotServer) -> None:
    done = cli.add(dovecot, password="not-the-password")
    assert done.code == 1
    assert "rejected the login" in done.err and "Traceback" not in done.err
    assert len(done.err.strip().splitlines()) == 1
    assert cli("imap", "list", "--json").json() == []


def test_untrusted_certificate_fails_unless_cafile_is_given(cli: Cli, dovecot: DovecotServer) -> None:
    done = cli(
        "imap", "add", "--consent", "--email", "alice@example.org", "--host", dovecot.host, "--port", str(dovecot.imaps_port),
        "--username", "alice", "--password-stdin", stdin="secret-pw\n",
    )
    assert done.code == 1
    assert "not trusted" in done.err and "--cafile" in done.err and "Traceback" not in done.err
    assert cli.add(dovecot).code == 0


def test_starttls_and_explicit_plain_both_work(cli: Cli, dovecot: DovecotServer) -> None:
    _append(dovecot, 2)
    for security, mailbox_id in (("starttls", "viastarttls"), ("plain", "viaplain")):
        done = cli(
            "imap", "add", "--consent", "--email", f"{mailbox_id}@example.org", "--host", dovecot.host,
            "--port", str(dovecot.imap_port), "--username", "alice", "--password-stdin",
            "--security", security, "--cafile", str(dovecot.cert_path), "--id", mailbox_id, stdin="secret-pw\n",
        )
        assert done.code == 0, done.err
        assert cli("imap", "sync", mailbox_id, "--json").json()["fetched"] == 2


def test_unreachable_host_fails_with_one_line(cli: Cli, tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = cli("imap", "add", "--consent", "--email", "a@example.org", "--host", "127.0.0.1", "--port", str(port),
               "--password-stdin", stdin="pw\n")
    assert done.code == 1 and "cannot reach 127.0.0.1" in done.err and "Traceback" not in done.err


def test_unknown_mailbox_and_missing_folder_are_clear_errors(cli: Cli, dovecot: DovecotServer) -> None:
    unknown = cli("imap", "status", "nobody-here")
    assert unknown.code == 1 and "no mailbox 'nobody-here'" in unknown.err

    missing = cli.add(dovecot, folders="INBOX,Nope")
    assert missing.code == 1 and "'Nope'" in missing.err
    assert cli("imap", "list", "--json").json() == []

    assert cli.add(dovecot, "--no-verify", folders="INBOX,Nope").code == 0
    synced = cli("imap", "sync", "alice", "--json")
    assert synced.code == 1
    errors = synced.json()["errors"]
    assert [e["folder"] for e in errors] == ["Nope"]
    assert [f["folder"] for f in synced.json()["folders"]] == ["INBOX"]  # INBOX synced regardless


def test_a_locked_data_dir_is_refused(cli: Cli, dovecot: DovecotServer) -> None:
    cli.data_dir.mkdir(parents=True)
    with DataDirLock(cli.data_dir):
        done = cli.add(dovecot)
    assert done.code == 1 and "in use by another futurnal-actors process" in done.err
    assert cli.add(dovecot).code == 0


def test_a_corrupt_state_file_is_reported_and_not_touched(cli: Cli, dovecot: DovecotServer) -> None:
    assert cli.add(dovecot).code == 0
    registry = cli.data_dir / "mailboxes.json"
    registry.write_bytes(b'{"mailboxes": ')
    for command in (("imap", "list"), ("imap", "sync", "alice")):
        done = cli(*command)
        assert done.code == 1 and "corrupt" in done.err and "Traceback" not in done.err
    assert registry.read_bytes() == b'{"mailboxes": '


def test_remove_purge_deletes_elements_state_and_secret(cli: Cli, dovecot: DovecotServer) -> None:
    _append(dovecot, 3)
    assert cli.add(dovecot).code == 0
    assert cli("imap", "sync", "alice").code == 0
    done = cli("imap", "remove", "alice", "--purge")
    assert done.code == 0 and "3 element(s)" in done.out
    assert cli("elements", "export").out == ""
    assert not (cli.data_dir / "state" / "alice.json").exists()
    keyring_text = "".join(p.read_text() for p in (cli.home / "xdg-data").rglob("*.cfg"))
    assert "alice_2fpassword" not in keyring_text


def test_run_syncs_on_start_and_stops_cleanly_on_sigterm(cli: Cli, populated: DovecotServer) -> None:
    assert cli.add(populated, "--interval", "1").code == 0
    process = subprocess.Popen([COMMAND, "run"], env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        expected = len(_server_uids(populated, "INBOX"))
        deadline = time.monotonic() + 60
        while len(cli("elements", "export").lines()) < expected:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "run did not sync the mailbox"
            time.sleep(0.2)
        _append(populated, 2)  # picked up by the next interval tick
        while len(cli("elements", "export").lines()) < expected + 2:
            assert time.monotonic() < deadline, "run did not pick up new mail on its schedule"
            time.sleep(0.2)
        # Writes go through the running process (which refuses a second registration of the
        # address) or wait for it to stop; none touches its files beside it.
        second = cli.add(populated, mailbox_id="second")
        assert second.code == 1, second.err
        assert second.err.endswith("error: alice@example.org is already registered as alice; "
                                   "an address is registered once\n")  # the user's own address, no hint to --id
        rescheduled = cli("imap", "schedule", "alice", "--priority", "high")  # done by `run` itself
        assert rescheduled.code == 0 and "priority high" in rescheduled.out, rescheduled.err
        assert cli("imap", "schedule", "alice", "every", "day").code == 2  # refused before it is sent
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "stopped" in out
    uids = [e["uid"] for e in cli("elements", "export").lines()]
    assert len(uids) == len(set(uids)) == expected + 2


def test_elements_export_filters_by_mailbox_and_folder(cli: Cli, populated: DovecotServer) -> None:
    assert cli.add(populated, folders="INBOX,Archive").code == 0
    assert cli("imap", "sync", "alice").code == 0
    archive = cli("elements", "export", "--mailbox", "alice@example.org", "--folder", "Archive").lines()
    assert archive and {e["folder"] for e in archive} == {"Archive"}
    assert len(archive) == len(_server_uids(populated, "Archive"))
    assert json.loads(cli("imap", "list", "--json").out)[0]["folders"] == ["INBOX", "Archive"]


def test_sigterm_during_a_sync_loses_nothing_and_the_next_sync_completes_it(
    cli: Cli, dovecot_factory  # type: ignore[no-untyped-def]
) -> None:
    server = dovecot_factory()
    for message in generate_mailbox(1500, seed=11):
        server.deliver("alice", message.raw, folder="INBOX", flags=message.flags)
    server.start()
    cli.data_dir.mkdir(parents=True)
    (cli.data_dir / "config.toml").write_text("[sync]\nbatch_messages = 10\n")
    assert cli.add(server).code == 0
    process = subprocess.Popen([COMMAND, "run"], env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 60
        while not stored_count(cli.data_dir):
            assert time.monotonic() < deadline and process.poll() is None, "run never started writing"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    stored = {e["uid"] for e in cli("elements", "export").lines()}
    state = cli("imap", "status", "alice", "--json").json()["folders"][0]
    # Newest first: every UID from the backfill's floor up to the watermark is stored; neither
    # runs ahead of what the store holds.
    floor = max(state["backfill_floor"], 1)
    accounted = {uid for uid in _server_uids(server, "INBOX") if floor <= uid <= state["last_uid"]}
    assert accounted <= stored, sorted(accounted - stored)[:10]
    assert state["backfill_floor"] > 1 or len(stored) == 1500  # interrupted mid-backfill, as a rule
    assert max(_server_uids(server, "INBOX")) in stored  # the newest mail came first

    resumed = cli("imap", "sync", "alice")
    assert resumed.code == 0, resumed.err
    uids = [e["uid"] for e in cli("elements", "export").lines()]
    assert len(uids) == len(set(uids)) == 1500
    assert sorted(uids) == sorted(_server_uids(server, "INBOX"))


def test_a_spent_download_budget_pauses_the_backfill_and_new_mail_still_comes_in(
    cli: Cli, dovecot_factory  # type: ignore[no-untyped-def]
) -> None:
    server = dovecot_factory()
    body = ("x" * 76 + "\r\n") * 1300  # about 100 kB a message: 30 of them are 3 MB
    for uid in range(1, 31):
        server.deliver("alice", (
            f"From: a@example.net\r\nTo: alice@example.org\r\nSubject: big {uid}\r\n"
            f"Message-ID: <big-{uid}@example.net>\r\n\r\n{body}"
        ).encode())
    server.start()
    cli.data_dir.mkdir(parents=True)
    (cli.data_dir / "config.toml").write_text("[sync]\nbatch_messages = 2\n")
    assert cli.add(server, "--daily-download-mb", "1").code == 0

    first = cli("imap", "sync", "alice")
    assert first.code == 0, first.err
    assert "waits for the daily download budget until" in first.out, first.out
    report = cli("imap", "status", "alice", "--json").json()
    budget, folder = report["download_budget"], report["folders"][0]
    assert budget["limit_mb"] == 1 and budget["exhausted"] and budget["resets_at"], budget
    stored = {e["uid"] for e in cli("elements", "export").lines()}
    # About a megabyte of the newest mail (a batch may cross the line), and the older mail waits.
    assert 8 <= len(stored) <= 14 and max(stored) == 30 and min(stored) == folder["backfill_floor"], stored
    backfill = folder["backfill"]
    assert (backfill["done"], backfill["total"]) == (len(stored), 30) and backfill["limited_by"] == "budget", backfill
    shown = cli("imap", "status", "alice")
    assert "download budget" in shown.out and "used up" in shown.out, shown.out
    assert "newest mail first" in shown.out and "daily download budget is what limits it" in shown.out, shown.out

    _append(server, 1)
    again = cli("imap", "sync", "alice")
    assert again.code == 0, again.err
    after = {e["uid"] for e in cli("elements", "export").lines()}
    assert after - stored == {31}  # new mail came in; the backfill did not move
