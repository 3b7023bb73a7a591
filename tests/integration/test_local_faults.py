"""Faults of this machine, not of any message, met through the CLI against a real Dovecot: a full
disk under `run`, a CA file gone missing, a damaged row in the element store. Each is said once,
in one line and without a traceback, and the mailbox comes back by itself once it is gone."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import imapclient
import pytest

from futurnal.demo.dovecot import DovecotServer

from .cli import COMMAND, Cli
from .running_process import RunningProcess


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


class SmallDisk:
    """A 2 MB tmpfs mounted as the data directory, to be filled up and freed again."""

    def __init__(self, where: Path) -> None:
        self.where = where
        self.filler = where / "filler"

    def fill(self) -> None:
        """Write until the file system refuses a single byte more."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (65536, 4096, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink()


@pytest.fixture
def small_disk(cli: Cli) -> Iterator[SmallDisk]:
    cli.data_dir.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(cli.data_dir)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"a small tmpfs cannot be mounted here (needs root and mount rights): {mounted.stderr.strip()}")
    try:
        yield SmallDisk(cli.data_dir)
    finally:
        subprocess.run(["umount", "-l", str(cli.data_dir)], capture_output=True)


def _append(server: DovecotServer, subjects: list[str]) -> None:
    with imapclient.IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=30) as client:
        client.login("alice", "secret-pw")
        for subject in subjects:
            client.append("INBOX", (
                f"From: Sender <sender@example.net>\r\nTo: alice@example.org\r\nSubject: {subject}\r\n"
                f"Message-ID: <{subject}-{time.time_ns()}@example.net>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n"
                f"\r\n{'A line of text. ' * 100}\r\n"
            ).encode())


def _flag(server: DovecotServer, uids: list[int]) -> None:
    with imapclient.IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=30) as client:
        client.login("alice", "secret-pw")
        client.select_folder("INBOX")
        client.add_flags(uids, [b"\\Flagged"])


def _last_error(cli: Cli) -> str | None:
    status = cli("imap", "status", "alice", "--json")
    assert status.code == 0, status.err
    return status.json()["folders"][0]["last_error"]


def test_a_full_disk_under_run_is_said_once_and_the_mail_is_stored_when_there_is_room_again(
    cli: Cli, dovecot: DovecotServer, small_disk: SmallDisk
) -> None:
    assert cli.add(dovecot).code == 0
    _append(dovecot, ["before 1", "before 2"])
    assert cli("imap", "sync", "alice").code == 0
    running = RunningProcess(cli, FUTURNAL_FAULT_RETRY_SECONDS="1")
    try:
        running.wait_for(lambda: "watching by IDLE" in cli("imap", "status", "alice").out, "run did not start watching")
        small_disk.fill()
        _append(dovecot, ["during 1", "during 2", "during 3"])  # IDLE tells `run`, whose sync hits the full disk
        running.wait_for(lambda: "disk full" in (_last_error(cli) or ""), "no LAST ERROR for the full disk")
        assert _last_error(cli).startswith(f"disk full at {cli.data_dir}: free space")
        assert "disk full at" in cli("ctl", "status").out  # the console says it too
        time.sleep(3)  # a few retries against the full disk
        assert running.process.poll() is None and running.stored() == 2

        small_disk.free()
        started = time.monotonic()
        running.wait_for(lambda: running.stored() == 5, "the mail was not stored after space was freed", timeout=60)
        assert time.monotonic() - started < 40  # within the back-off, without a restart of `run`
        running.wait_for(lambda: _last_error(cli) is None, "LAST ERROR was not cleared")
    finally:
        code, err = running.finish()
    assert code == 0, err
    assert "Traceback" not in err
    assert err.count("disk full") == 1, err  # said once, however many retries
    failures = [line for line in running.lines if "failed: disk full" in line]
    assert len(failures) == 1, running.lines
    assert any(line.rstrip().endswith("syncing again") for line in running.lines), running.lines
    uids = [e["uid"] for e in cli("elements", "export").lines()]
    assert sorted(uids) == [1, 2, 3, 4, 5]  # nothing lost, nothing doubled


def test_run_on_a_full_disk_exits_with_one_line_so_a_service_manager_restarts_it(
    cli: Cli, dovecot: DovecotServer, small_disk: SmallDisk
) -> None:
    assert cli.add(dovecot).code == 0
    _append(dovecot, ["one"])
    assert cli("imap", "sync", "alice").code == 0
    small_disk.fill()
    done = cli("run", timeout=60)
    assert done.code == 1
    assert done.err.strip() == f"futurnal-actors: error: disk full at {cli.data_dir}: free space"


def _add_with_relative_cafile(cli: Cli, server: DovecotServer, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, "imap", "add", "--email", "alice@example.org", "--host", server.host,
         "--port", str(server.imaps_port), "--username", "alice", "--password-stdin", "--cafile", "ca.pem",
         "--id", "alice", "--consent"],
        input="secret-pw\n", capture_output=True, text=True, timeout=120, env=cli.env, cwd=cwd,
    )


def test_a_missing_ca_file_fails_a_sync_in_one_line_and_the_next_sync_works_once_it_is_back(
    cli: Cli, dovecot: DovecotServer, tmp_path: Path
) -> None:
    where = tmp_path / "certs"
    where.mkdir()
    cafile = where / "ca.pem"
    shutil.copy(dovecot.cert_path, cafile)
    added = _add_with_relative_cafile(cli, dovecot, where)
    assert added.returncode == 0, added.stderr
    assert cli("imap", "list", "--json").json()[0]["cafile"] == str(cafile)  # usable from any directory
    _append(dovecot, ["first"])
    assert cli("imap", "sync", "alice").code == 0

    cafile.rename(where / "moved.pem")
    _append(dovecot, ["second"])
    failed = cli("imap", "sync", "alice")
    assert failed.code == 1
    assert len(failed.err.strip().splitlines()) == 1, failed.err
    assert f"CA file {cafile} is missing: put the CA certificate (PEM) back" in failed.err
    assert "Traceback" not in failed.err
    assert f"CA file {cafile} is missing" in (_last_error(cli) or "")

    (where / "moved.pem").rename(cafile)
    synced = cli("imap", "sync", "alice", "--json")
    assert synced.code == 0, synced.err
    assert synced.json()["fetched"] == 1
    assert _last_error(cli) is None


def test_a_damaged_element_is_named_by_export_and_a_flag_change_to_it_does_not_stop_syncing(
    cli: Cli, dovecot: DovecotServer
) -> None:
    assert cli.add(dovecot).code == 0
    _append(dovecot, ["one", "two", "three"])
    assert cli("imap", "sync", "alice").code == 0
    damaged = next(e["id"] for e in cli("elements", "export").lines() if e["uid"] == 2)
    with sqlite3.connect(cli.data_dir / "elements.sqlite") as db:
        db.execute("UPDATE documents SET doc = substr(doc, 1, 40) WHERE row = (SELECT row FROM elements WHERE id = ?)",
                   (damaged,))
    db.close()

    export = cli("elements", "export")
    assert export.code == 0
    assert [e["uid"] for e in export.lines()] == [1, 3]  # the rest, whole
    assert damaged in export.err and "damaged" in export.err

    _flag(dovecot, [2, 3])
    synced = cli("imap", "sync", "alice")
    assert synced.code == 0, synced.err
    assert damaged in synced.err and "Traceback" not in synced.err
    assert next(e for e in cli("elements", "export").lines() if e["uid"] == 3)["flags"] == ["\\Flagged"]
    again = cli("imap", "sync", "alice")  # no crash loop: the next sync is an ordinary one
    assert again.code == 0 and again.err == ""
    status = cli("imap", "status", "alice", "--json").json()
    assert status["state"] == "ok" and status["folders"][0]["last_error"] is None

    check = cli("elements", "check")
    assert check.code == 1 and damaged in check.out
