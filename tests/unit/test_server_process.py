"""ServerProcess: the start/ready/stop life cycle the throwaway servers (Dovecot, Cyrus, the OAuth2
provider) share, tried on small shell scripts standing in for a server and its children."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from futurnal.demo import server_process
from futurnal.demo.server_process import NeverReady, ServerProcess, free_ports

# A "server" with two children; ready once it has written its children's pids.
FORKS_TWO = "sleep 60 & a=$!; sleep 60 & echo $a $! > pids.tmp; mv pids.tmp pids; wait"


class ShellServer(ServerProcess):
    def __init__(self, root: Path, script: str, probe: Callable[[float], str | None] | None = None,
                 **attributes: float | bool) -> None:
        self.root, self.script = root, script
        self.problem: str | None = None
        self.probe = probe or self._pids_written
        for name, value in attributes.items():
            setattr(self, name, value)

    def start(self, timeout: float = 5.0) -> None:
        self._launch(["sh", "-c", self.script], self.root / "log", cwd=self.root)
        self.problem = self._wait_ready(self.probe, timeout, interval=0.01)

    @property
    def pgid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def _pids_written(self, _deadline: float) -> str | None:
        return None if (self.root / "pids").exists() else "wrote no pids"


def gone(pgid: int, timeout: float = 2.0) -> bool:
    """Whether nothing is left alive in the group (SIGKILL takes a moment to land)."""
    deadline = time.monotonic() + timeout
    while server_process._group_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Callable[..., ShellServer]]:
    servers: list[ShellServer] = []

    def make(script: str = FORKS_TWO, **kwargs: object) -> ShellServer:
        server = ShellServer(tmp_path, script, **kwargs)  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def test_stop_kills_the_children_the_main_process_leaves_behind(make: Callable[..., ShellServer]) -> None:
    server = make()  # sh, sent SIGTERM alone, dies without passing it on to its two sleeps
    server.start()
    assert server.problem is None and server.running
    pgid = server.pgid
    assert len(server_process._group_members(pgid)) == 3
    server.stop()
    assert not server.running
    assert gone(pgid)
    server.stop()  # idempotent


def test_a_server_ignoring_sigterm_is_killed_after_the_stop_timeout(make: Callable[..., ShellServer]) -> None:
    server = make("trap '' TERM; " + FORKS_TWO, stop_timeout=0.3)
    server.start()
    pgid = server.pgid
    started = time.monotonic()
    server.stop()
    assert 0.3 <= time.monotonic() - started < 3
    assert gone(pgid)


def test_children_get_the_drain_time_to_finish_after_the_group_got_sigterm(
    make: Callable[..., ShellServer], tmp_path: Path
) -> None:
    child = "(trap 'sleep 0.2; echo done > finished; exit' TERM; while :; do sleep 0.01; done) &"
    server = make(child + " touch pids; wait", term_whole_group=True, drain_timeout=5.0)
    server.start()
    server.stop()
    assert (tmp_path / "finished").read_text() == "done\n"


def test_without_drain_time_what_outlives_the_main_process_is_killed_at_once(
    make: Callable[..., ShellServer], tmp_path: Path
) -> None:
    child = "(trap 'sleep 0.5; echo done > finished; exit' TERM; while :; do sleep 0.01; done) &"
    server = make(child + " touch pids; wait", term_whole_group=True)
    server.start()
    pgid = server.pgid
    server.stop()
    assert gone(pgid)
    time.sleep(0.6)
    assert not (tmp_path / "finished").exists()


def test_the_context_manager_starts_and_stops(make: Callable[..., ShellServer]) -> None:
    with make() as server:
        assert server.running
        pgid = server.pgid
    assert not server.running
    assert gone(pgid)


def test_wait_ready_reports_an_exit_a_probe_that_gives_up_and_a_timeout(
    make: Callable[..., ShellServer]
) -> None:
    exits = make("exit 3")
    exits.start()
    assert exits.problem == "exited with code 3"

    def refuses(_deadline: float) -> str | None:
        raise NeverReady("port 1 is taken by another server")

    gives_up = make("sleep 60", probe=refuses)
    gives_up.start()
    assert gives_up.problem == "port 1 is taken by another server"

    slow = make("sleep 60", probe=lambda _deadline: "did not greet")
    started = time.monotonic()
    slow.start(timeout=0.2)
    assert slow.problem == "did not greet within 0.2 s"
    assert time.monotonic() - started < 2


def test_servers_left_running_are_sent_sigterm_at_exit(make: Callable[..., ShellServer],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    server = make("sleep 60", probe=lambda _deadline: None)
    server.start()
    assert server._proc is not None and server._proc in server_process._running
    for proc in [proc for proc in server_process._running if proc is not server._proc]:
        monkeypatch.delitem(server_process._running, proc)  # the session's servers (PostgreSQL) run on
    server_process._terminate_forgotten_servers()
    assert server._proc.wait(timeout=5) != 0
    server.stop()
    assert server._proc is None


def test_free_ports_are_distinct() -> None:
    ports = free_ports(3)
    assert len(set(ports)) == 3 and all(port > 0 for port in ports)
