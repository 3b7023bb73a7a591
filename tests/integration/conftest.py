"""Fixtures that run a real, throwaway Dovecot on 127.0.0.1 for the integration tests."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from futurnal.demo.dovecot import DovecotOptions, DovecotServer, DovecotUnavailable

HERE = Path(__file__).resolve().parent
USER, PASSWORD = "alice", "secret-pw"

DovecotFactory = Callable[..., DovecotServer]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this directory ``integration`` (this hook sees the whole session)."""
    for item in items:
        if item.path.resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)


def _let_dovecot_reach(root: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """As root, grant search (not read) permission on pytest's 0700 temp dirs.

    Dovecot's unprivileged processes (nobody, dovecot, dovenull) must traverse to the mail
    and socket directories. pytest itself resets its base dir to 0700 on the next run.
    """
    if os.geteuid() != 0:
        return
    ours = tmp_path_factory.getbasetemp().parent
    for path in (root, *root.parents):
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH and (path == ours or path.is_relative_to(ours)):
            path.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


@pytest.fixture(scope="session")
def _stopping() -> Iterator[list[threading.Thread]]:
    """Servers being stopped in the background; all are waited for at the end of the session.

    Dovecot 2.3's master always sleeps one second on shutdown (after telling its log process
    to quit), so stopping each test's server in the foreground would add 1 s per test.
    """
    threads: list[threading.Thread] = []
    yield threads
    for thread in threads:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a Dovecot server did not stop"


@pytest.fixture
def dovecot_factory(
    tmp_path_factory: pytest.TempPathFactory, _stopping: list[threading.Thread]
) -> Iterator[DovecotFactory]:
    """Create unstarted servers (user alice/secret-pw); each test gets fresh servers.

    Skips when Dovecot is not installed, unless the CI variable is set: on CI a missing
    Dovecot must fail loudly rather than silently skip the whole integration suite.
    """
    servers: list[DovecotServer] = []

    def make(options: DovecotOptions = DovecotOptions()) -> DovecotServer:
        root = tmp_path_factory.mktemp("dovecot")
        _let_dovecot_reach(root, tmp_path_factory)
        try:
            server = DovecotServer(root, options)
        except DovecotUnavailable as exc:
            if os.environ.get("CI"):
                pytest.fail(str(exc))
            pytest.skip(str(exc))
        servers.append(server)
        server.add_user(USER, PASSWORD)
        return server

    yield make
    for server in servers:
        thread = threading.Thread(target=server.stop, name=f"stop {server.root}")
        thread.start()
        _stopping.append(thread)


@pytest.fixture
def dovecot(dovecot_factory: DovecotFactory) -> DovecotServer:
    """A started Dovecot with one user, alice/secret-pw, and an empty INBOX."""
    server = dovecot_factory()
    server.start()
    return server
