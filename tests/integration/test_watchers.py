"""Folder watchers against a real Dovecot: changes arrive without any scheduled sync."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from keyrings.alt.file import PlaintextKeyring

from futurnal.config import ServiceSettings
from futurnal.demo.dovecot import DovecotOptions, DovecotServer
from futurnal.imap.idle_watch import WatchEvent
from futurnal.storage.consent import SCOPES, ConsentRegistry
from futurnal.storage.credentials import CredentialStore
from futurnal.storage.data_dir import DataDir
from futurnal.storage.registry import MailboxRecord, MailboxRegistry
from futurnal.storage.sqlite import SqliteElementReader
from futurnal.system import ActorSystem

from .fault_proxy import CuttingProxy
from .running_process import collect_lines
from .sync_harness import BASE_CAPABILITIES, ServerClient


def wait_for(condition: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Watched:
    """A started actor system watching alice's INBOX (no scheduler), plus views on both sides."""

    def __init__(self, root: Path, port: int, settings: ServiceSettings, watch: tuple[str, ...] = ("INBOX",),
                 folders: tuple[str, ...] = ("INBOX",)) -> None:
        self.data_dir = DataDir(root / "data").ensure()
        backend = PlaintextKeyring()
        backend.file_path = str(root / "keyring.cfg")  # type: ignore[misc]
        credentials = CredentialStore(backend)
        registry = MailboxRegistry(self.data_dir.registry_path)
        registry.add(MailboxRecord(id="alice", email="alice@example.org", host="127.0.0.1", port=port,
                                   username="alice", security="plain", watch=watch, folders=folders))
        registry.close()
        credentials.set_secret("alice", "password", "secret-pw")
        ConsentRegistry(self.data_dir.consent_path).grant("alice", "test", SCOPES)
        self.events: list[Any] = []
        self.system = ActorSystem(self.data_dir.root, credentials=credentials, settings=settings)
        self.system.subscribe(self.events.append)
        self.system.start(schedule=False, watch=True)

    def stored(self) -> dict[int, list[str]]:
        return {e["uid"]: e["flags"] for e in self._elements() if not e.get("deleted")}

    def stored_in(self, folder: str) -> dict[int, list[str]]:
        return {e["uid"]: e["flags"] for e in self._elements() if not e.get("deleted") and e["folder"] == folder}

    def _elements(self) -> list[dict[str, Any]]:
        with SqliteElementReader(self.data_dir.element_db_path, self.data_dir.feed_listeners_root) as reader:
            return list(reader.iter_elements("alice"))

    def watch_events(self, kind: str) -> list[WatchEvent]:
        return [e for e in list(self.events) if isinstance(e, WatchEvent) and e.kind == kind]


@pytest.fixture
def make_watched(tmp_path: Path) -> Iterator[Callable[..., Watched]]:
    started: list[Watched] = []

    def make(port: int, watch: tuple[str, ...] = ("INBOX",), folders: tuple[str, ...] = ("INBOX",),
             **settings: Any) -> Watched:
        watched = Watched(tmp_path, port, ServiceSettings(**settings), watch, folders)
        started.append(watched)
        return watched

    yield make
    for watched in started:
        watched.system.stop()


def test_new_mail_flags_and_expunges_arrive_without_any_schedule(dovecot: DovecotServer, make_watched: Any) -> None:
    other = ServerClient(dovecot)
    other.append(3, tag="before")
    watched = make_watched(dovecot.imap_port)
    wait_for(lambda: len(watched.stored()) == 3, what="the catch-up sync")
    assert watched.watch_events("connected")[0].detail == "idle"

    other.append(2, tag="live")
    wait_for(lambda: len(watched.stored()) == 5, what="IDLE to deliver new mail")
    other.set_flags([1], ["\\Flagged"])
    wait_for(lambda: watched.stored().get(1) == ["\\Flagged"], what="a flag change")
    other.expunge([2])
    wait_for(lambda: 2 not in watched.stored(), what="an expunge")
    assert watched.stored() == other.state()
    other.close()


def test_a_server_restart_loses_nothing_and_the_watcher_recovers(dovecot: DovecotServer, make_watched: Any) -> None:
    watched = make_watched(dovecot.imap_port)
    wait_for(lambda: bool(watched.watch_events("connected")), what="the watcher to connect")
    dovecot.stop()
    dovecot.deliver("alice", b"Subject: during the outage\r\nMessage-ID: <outage@x>\r\n\r\nwhile down\r\n")
    wait_for(lambda: bool(watched.watch_events("disconnected")), what="the watcher to notice")
    dovecot.start()
    wait_for(lambda: len(watched.stored()) == 1, timeout=60, what="the outage's mail")
    other = ServerClient(dovecot)
    other.append(1, tag="after")
    wait_for(lambda: len(watched.stored()) == 2, what="IDLE after the restart")
    assert watched.stored() == other.state()
    other.close()


def test_a_connection_cut_mid_idle_is_detected_and_recovered(dovecot: DovecotServer, make_watched: Any) -> None:
    proxy = CuttingProxy(dovecot.imap_port, cuts=0, low=0, high=0)
    try:
        watched = make_watched(proxy.port)
        wait_for(lambda: bool(watched.watch_events("connected")), what="the watcher to connect")
        assert proxy.sever() >= 1
        wait_for(lambda: bool(watched.watch_events("disconnected")), what="the cut to be detected")
        wait_for(lambda: len(watched.watch_events("connected")) >= 2, timeout=30, what="a reconnection")
        other = ServerClient(dovecot)
        other.append(2, tag="after-cut")
        wait_for(lambda: len(watched.stored()) == 2, what="mail after the cut")
        other.close()
    finally:
        proxy.close()


def test_a_folder_on_a_server_without_idle_is_polled(dovecot_factory: Any, make_watched: Any) -> None:
    server = dovecot_factory(DovecotOptions(capabilities=BASE_CAPABILITIES.replace(" IDLE", "")))
    server.start()
    watched = make_watched(server.imap_port, poll_seconds=0.3)
    wait_for(lambda: bool(watched.watch_events("connected")), what="the watcher to connect")
    assert watched.watch_events("connected")[0].detail == "polling"
    other = ServerClient(server)
    other.append(2, tag="polled")
    wait_for(lambda: len(watched.stored()) == 2, what="polling to find new mail")
    other.close()


def _monitor(cli: Any, *args: str) -> tuple[Any, list[str]]:
    import subprocess

    from .cli import COMMAND

    process = subprocess.Popen([COMMAND, "imap", "start-monitor", *args], env=cli.env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    assert process.stdout is not None
    collect_lines(process.stdout, lines)
    return process, lines


def _monitor_shows_new_mail(cli: Any, dovecot: DovecotServer, *, ready: str) -> None:
    """Start `imap start-monitor alice`, wait for the ``ready`` line, deliver two messages, see them
    reported, and stop it with Ctrl+C, which must exit 0."""
    import signal

    process, lines = _monitor(cli, "alice")
    try:
        wait_for(lambda: any(ready in line for line in lines), what=f"{ready!r}; got {lines}")
        other = ServerClient(dovecot)
        other.append(2, tag="live")
        other.close()
        wait_for(lambda: any("INBOX: 2 new" in line for line in lines), what=f"the new mail; got {lines}")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 0, lines


def test_start_monitor_prints_events_and_stops_cleanly_on_ctrl_c(dovecot: DovecotServer, tmp_path: Path) -> None:
    from .cli import Cli

    cli = Cli(tmp_path)
    assert cli.add(dovecot).code == 0
    _monitor_shows_new_mail(cli, dovecot, ready="INBOX: watching (IDLE)")
    assert len(cli("elements", "export").lines()) == 2


def test_start_monitor_says_when_the_server_has_no_idle(dovecot_factory: Any, tmp_path: Path) -> None:
    import signal

    from .cli import Cli

    server = dovecot_factory(DovecotOptions(capabilities=BASE_CAPABILITIES.replace(" IDLE", "")))
    server.start()
    cli = Cli(tmp_path)
    assert cli.add(server).code == 0
    process, lines = _monitor(cli, "alice")
    try:
        wait_for(lambda: any("has no IDLE" in line and "imap schedule" in line for line in lines),
                 what=f"the advice; got {lines}")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 0


def test_start_monitor_beside_run_shows_what_the_running_process_does(dovecot: DovecotServer, tmp_path: Path) -> None:
    from .cli import Cli
    from .running_process import RunningProcess

    cli = Cli(tmp_path)
    assert cli.add(dovecot).code == 0
    running = RunningProcess(cli)
    try:
        running.wait_for(lambda: cli("imap", "status", "alice", "--json").json()["folders"][0].get("watch_mode"),
                         "the process did not start watching INBOX")
        _monitor_shows_new_mail(cli, dovecot, ready="owns this data directory and watches alice itself: INBOX")
        assert running.process.poll() is None  # the view stopped, not the service
        assert len(cli("elements", "export").lines()) == 2
    finally:
        code, err = running.finish()
    assert code == 0, err
