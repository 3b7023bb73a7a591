"""Three `run` processes, each with its own data directory, sharing one PostgreSQL and one Dovecot
with 30 mailboxes: the mailboxes are shared out evenly by lease; a process killed with SIGKILL has
its mailboxes taken over and synced, mail that arrives meanwhile included; a process cut off from
the database stops its mailboxes before their leases expire; the change feed read all along has
no gap and no repeat; and at the end the store holds exactly what the server holds.

The third process reaches PostgreSQL through a proxy the test can cut, as a failing network
would. The leases are 6 s here (20 s by default) so the test waits less; the mechanism is the same.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import imapclient
import pytest

from futurnal.demo.dovecot import DovecotOptions, DovecotServer

from .cli import COMMAND, Cli
from .fault_proxy import SwitchableProxy

pytestmark = pytest.mark.integration
psycopg = pytest.importorskip("psycopg")

MAILBOXES = [f"user{n:02d}" for n in range(30)]
PASSWORD = "shared-pw"
LEASE = 6.0


def _message(user: str, tag: str) -> bytes:
    return (f"From: Sender <s@example.net>\r\nTo: {user}@example.org\r\nSubject: {tag}\r\n"
            f"Message-ID: <{tag}@example.net>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\n"
            f"Body of {tag}.\r\n").encode()


@pytest.fixture
def mail(dovecot_factory: Any) -> DovecotServer:
    server: DovecotServer = dovecot_factory(DovecotOptions(max_connections=len(MAILBOXES) * 8 + 20))
    for user in MAILBOXES:
        server.add_user(user, PASSWORD)
        for number in range(3):
            server.deliver(user, _message(user, f"{user}-first-{number}"))
    server.start()
    return server


class _Run:
    """One `run` process; its stderr lines kept with the wall-clock time each arrived."""

    def __init__(self, cli: Cli, name: str) -> None:
        self.name = name
        self.process = subprocess.Popen([COMMAND, "run"], env=cli.env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[tuple[float, str]] = []
        assert self.process.stderr is not None
        stderr = self.process.stderr
        self._reader = threading.Thread(
            target=lambda: self.lines.extend((time.time(), line) for line in iter(stderr.readline, "")), daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def first_line(self, text: str, since: float = 0.0) -> tuple[float, str] | None:
        """The first line holding ``text`` that arrived at ``since`` or later, with its time."""
        return next(((when, line) for when, line in list(self.lines) if text in line and when >= since), None)

    def log(self) -> str:
        return "".join(line for _, line in self.lines)[-6000:]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)
        return self.process.returncode


class _Feed:
    """Reads the change feed from the start while everything else happens: every number seen."""

    def __init__(self, url: str) -> None:
        from futurnal.storage.postgres import PostgresElementReader

        self._reader = PostgresElementReader(url)
        self.seqs: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        cursor = 0
        while not self._stop.is_set():
            for change in self._reader.changes(cursor):
                self.seqs.append(change.seq)
                cursor = change.seq
            self._stop.wait(0.1)

    def close(self) -> list[int]:
        self._stop.set()
        self._thread.join(10)
        self._reader.close()
        return self.seqs


def _wait(condition: Callable[[], Any], what: str, seconds: float, runs: list[_Run]) -> float:
    started = time.monotonic()
    while not condition():
        for run in runs:
            assert run.process.poll() is None, f"{run.name} exited with {run.process.returncode}: {run.log()}"
        assert time.monotonic() - started < seconds, f"not within {seconds:g} s: {what}\n" + "\n".join(
            f"--- {run.name}\n{run.log()}" for run in runs)
        time.sleep(0.2)
    return time.monotonic() - started


def _owners(url: str) -> dict[int, set[str]]:
    """Live lease holders by pid: the mailboxes each holds."""
    with psycopg.connect(url, autocommit=True) as db:
        rows = db.execute("SELECT p.pid, l.mailbox FROM mailbox_leases AS l JOIN processes AS p ON p.id = l.owner"
                          " WHERE l.expires_at > now()").fetchall()
    owners: dict[int, set[str]] = {}
    for pid, mailbox in rows:
        owners.setdefault(pid, set()).add(mailbox)
    return owners


def _stored(url: str) -> dict[str, set[str]]:
    with psycopg.connect(url, autocommit=True) as db:
        rows = db.execute("SELECT mailbox, doc::json->>'subject' FROM elements WHERE NOT deleted").fetchall()
    stored: dict[str, set[str]] = {}
    for mailbox, subject in rows:
        stored.setdefault(mailbox, set()).add(subject)
    return stored


def _on_server(server: DovecotServer) -> dict[str, set[str]]:
    found = {}
    for user in MAILBOXES:
        client = imapclient.IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=30)
        client.login(user, PASSWORD)
        client.select_folder("INBOX", readonly=True)
        envelopes = client.fetch(client.search("ALL"), ["ENVELOPE"])
        found[user] = {data[b"ENVELOPE"].subject.decode() for data in envelopes.values()}
        client.logout()
    return found


def _append(server: DovecotServer, user: str, tag: str) -> None:
    client = imapclient.IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=30)
    client.login(user, PASSWORD)
    client.append("INBOX", _message(user, tag))
    client.logout()


def _lease_end(url: str, pid: int) -> float:
    """When the leases held by ``pid`` expire, as a Unix time (the database's clock, on this machine)."""
    with psycopg.connect(url, autocommit=True) as db:
        row = db.execute("SELECT extract(epoch FROM min(l.expires_at)) FROM mailbox_leases AS l"
                         " JOIN processes AS p ON p.id = l.owner WHERE p.pid = %s", (pid,)).fetchone()
    assert row is not None and row[0] is not None
    return float(row[0])


@pytest.fixture
def processes(mail: DovecotServer, postgres_url: str, tmp_path: Path) -> Iterator[tuple[list[Cli], SwitchableProxy]]:
    port = int(postgres_url.rsplit(":", 1)[1].split("/", 1)[0])
    proxy = SwitchableProxy(port)
    clis = []
    for name in ("a", "b", "c"):
        cli = Cli(tmp_path / name)
        url = postgres_url if name != "c" else postgres_url.replace(f":{port}/", f":{proxy.port}/")
        cli.env.update({
            # One host's keyring, shared by its processes; the data directories are their own.
            "XDG_DATA_HOME": str(tmp_path / "host" / "xdg-data"), "XDG_CONFIG_HOME": str(tmp_path / "host" / "xdg-config"),
            "FUTURNAL_STORE_URL": url, "FUTURNAL_STORE_LEASE_SECONDS": str(LEASE),
        })
        clis.append(cli)
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    records = tmp_path / "mailboxes.jsonl"
    records.write_text("".join(json.dumps({
        "id": user, "email": f"{user}@example.org", "host": mail.host, "port": mail.imaps_port,
        "username": user, "cafile": str(mail.cert_path), "password_file": str(secret), "schedule": "@interval 3600",
    }) + "\n" for user in MAILBOXES))
    imported = clis[0]("imap", "import", str(records), "--consent", timeout=600)
    assert imported.code == 0, imported.err
    listed = clis[2]("imap", "list", "--json")  # another data directory sees the shared registry
    assert listed.code == 0, listed.err
    assert sorted(entry["id"] for entry in listed.json()) == MAILBOXES
    one_shot = clis[1]("imap", "sync", "user00")  # the leases decide who syncs: no one-shot sync beside them
    assert one_shot.code != 0 and "leases decide" in one_shot.err, one_shot.err
    try:
        yield clis, proxy
    finally:
        proxy.close()


def test_three_processes_share_out_take_over_fence_and_keep_the_feed_whole(
        mail: DovecotServer, postgres_url: str, processes: tuple[list[Cli], SwitchableProxy]) -> None:
    clis, proxy = processes
    runs = [_Run(cli, name) for cli, name in zip(clis, ("a", "b", "c"), strict=True)]
    feed = _Feed(postgres_url)
    try:
        # Shared out evenly, and every first sync stored.
        _wait(lambda: sorted(map(len, _owners(postgres_url).values())) in ([10, 10, 10], [9, 10, 11]),
              "the mailboxes are shared out 10 each (give or take one)", 90, runs)
        owners = _owners(postgres_url)
        assert set().union(*owners.values()) == set(MAILBOXES)
        assert set(owners) == {run.pid for run in runs}
        _wait(lambda: sum(map(len, _stored(postgres_url).values())) == 3 * len(MAILBOXES),
              "every first sync was stored", 180, runs)

        status = clis[0]("ctl", "status", "--json")
        assert status.code == 0, status.err
        by_owner = {report["mailbox"]["id"]: report["owner"] for report in status.json()["mailboxes"]}
        assert sorted(by_owner) == MAILBOXES
        assert {owner["pid"] for owner in by_owner.values()} == {run.pid for run in runs}
        elsewhere = clis[0]("ctl", "pause", sorted(_owners(postgres_url)[runs[1].pid])[0])
        assert elsewhere.code != 0 and f"pid {runs[1].pid}" in elsewhere.err + elsewhere.out

        # kill -9 of b: its mailboxes are taken over, mail that arrives meanwhile included.
        victim = runs[1]
        orphans = _owners(postgres_url)[victim.pid]
        victim.process.kill()
        victim.process.wait()
        for user in sorted(orphans):
            _append(mail, user, f"{user}-during-takeover")
        bystander = sorted(set(MAILBOXES) - orphans)[0]
        _append(mail, bystander, "elsewhere-during-takeover")
        took = _wait(lambda: orphans <= set().union(*(_owners(postgres_url).get(run.pid, set())
                                                     for run in (runs[0], runs[2]))),
                     "the dead process's mailboxes were taken over", LEASE * 2 + 20, [runs[0], runs[2]])
        assert took < LEASE + 2 * LEASE / 4 + 5, f"takeover took {took:.1f} s with {LEASE:g} s leases"
        expected = _on_server(mail)
        _wait(lambda: _stored(postgres_url) == expected, "store == server after the takeover", 120, [runs[0], runs[2]])

        # c loses the database: it stops its mailboxes before their leases can expire.
        cut_off = runs[2]
        held = _owners(postgres_url)[cut_off.pid]
        lease_end = _lease_end(postgres_url, cut_off.pid)
        cut_at = time.time()
        proxy.cut_off()
        _wait(lambda: cut_off.first_line("no heartbeat reached the database", cut_at) is not None,
              "the cut-off process noticed", LEASE, [cut_off])
        stopping = "stopped this process's mailboxes for want of the database"
        _wait(lambda: cut_off.first_line(stopping, cut_at) is not None,
              "the cut-off process stopped its mailboxes", LEASE, [cut_off])
        stopped_at, _line = cut_off.first_line(stopping, cut_at)  # type: ignore[misc]
        assert f"stopping this process's {len(held)} mailbox(es)" in cut_off.log()
        assert stopped_at < lease_end, f"stopped {stopped_at - lease_end:.1f} s after its leases expired"
        for user in sorted(held)[:3]:
            _append(mail, user, f"{user}-after-the-cut")
        _wait(lambda: held <= _owners(postgres_url).get(runs[0].pid, set()),
              "the survivor took the cut-off process's mailboxes over", LEASE * 2 + 20, [runs[0]])
        expected = _on_server(mail)
        _wait(lambda: _stored(postgres_url) == expected, "store == server after the cut", 120, [runs[0]])

        # The network mends: c comes back and takes its share again.
        proxy.restore()
        _wait(lambda: len(_owners(postgres_url).get(cut_off.pid, set())) >= 10,
              "the mended process took its share again", 60, [runs[0], cut_off])

        # Any data directory reads the shared store and audit log; a mailbox unregistered from
        # one host stops wherever it ran, and its lease goes.
        found = clis[1]("elements", "search", "takeover", "--json")
        assert found.code == 0, found.err
        assert {hit["mailbox"] for hit in found.json()} == orphans | {bystander}
        assert clis[2]("audit", "verify").code == 0
        shown = clis[2]("imap", "status", bystander, "--json")  # the folder states, from the database
        assert shown.code == 0, shown.err
        assert [(f["folder"], f["stored"]) for f in shown.json()["folders"]] == [("INBOX", len(expected[bystander]))]
        leaving = sorted(_owners(postgres_url).get(cut_off.pid, set()))[0]
        removed = clis[0]("imap", "remove", leaving)
        assert removed.code == 0, removed.err
        _wait(lambda: leaving not in set().union(*_owners(postgres_url).values()),
              "the unregistered mailbox was stopped and its lease dropped", 30, [runs[0], cut_off])
    finally:
        seqs = feed.close()
        codes = {run.name: run.stop() for run in runs}
    assert seqs == list(range(1, len(seqs) + 1)), "the change feed had a gap or a repeat"
    assert len(seqs) >= 3 * len(MAILBOXES) + len(orphans)
    assert codes["a"] == 0 and codes["c"] == 0, (runs[0].log(), runs[2].log())
    with psycopg.connect(postgres_url, autocommit=True) as db:
        left = db.execute("SELECT count(*) FROM mailbox_leases WHERE owner IS NOT NULL").fetchone()
    assert left == (0,), "a clean stop gives every lease back"
