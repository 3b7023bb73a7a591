"""Fixtures that run a real, throwaway Dovecot on 127.0.0.1 for the integration tests."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from futurnal.demo.dovecot import DovecotOptions, DovecotServer, DovecotUnavailable

from ..servers.cyrus import CyrusOptions, CyrusServer, CyrusUnavailable

HERE = Path(__file__).resolve().parent
USER, PASSWORD = "alice", "secret-pw"

DovecotFactory = Callable[..., DovecotServer]

# Several tests press Ctrl+C in a command they started and expect it to stop. A test run started in
# the background by a shell without job control (`bin/test &`, `nohup`) inherits SIGINT ignored,
# and so would every command it starts, which then rightly ignores Ctrl+C: the tests restore it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this directory ``integration`` (this hook sees the whole session)."""
    for item in items:
        if item.path.resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)


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


def _skip_or_fail(reason: str) -> None:
    """A missing server skips its tests on a developer's machine, and fails them on CI, where a
    silently skipped integration suite would pass for a green one."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def dovecot_factory(
    _stopping: list[threading.Thread]
) -> Iterator[DovecotFactory]:
    """Create unstarted servers (user alice/secret-pw); each test gets fresh servers.

    Skips when Dovecot is not installed, unless the CI variable is set: on CI a missing
    Dovecot must fail loudly rather than silently skip the whole integration suite.
    """
    servers: list[DovecotServer] = []
    roots: list[Path] = []

    def make(options: DovecotOptions = DovecotOptions()) -> DovecotServer:
        # Outside pytest's temp tree: pytest resets its base dir to 0700 at every session start,
        # which would lock Dovecot's unprivileged processes out of a server being restarted.
        root = Path(tempfile.mkdtemp(prefix="futurnal-dovecot-"))
        root.chmod(0o755)
        roots.append(root)
        try:
            server = DovecotServer(root, options)
        except DovecotUnavailable as exc:
            _skip_or_fail(str(exc))
        servers.append(server)
        server.add_user(USER, PASSWORD)
        return server

    yield make
    for server in servers:
        thread = threading.Thread(target=_stop_and_remove, args=(server,), name=f"stop {server.root}")
        thread.start()
        _stopping.append(thread)
    for root in roots[len(servers):]:  # made, but Dovecot was missing
        shutil.rmtree(root, ignore_errors=True)


def _stop_and_remove(server: DovecotServer) -> None:
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def dovecot(dovecot_factory: DovecotFactory) -> DovecotServer:
    """A started Dovecot with one user, alice/secret-pw, and an empty INBOX."""
    server = dovecot_factory()
    server.start()
    return server


CyrusFactory = Callable[..., CyrusServer]


@pytest.fixture
def cyrus_factory() -> Iterator[CyrusFactory]:
    """Create unstarted servers with user alice/secret-pw; stopped and deleted after the test.

    As root, Cyrus runs as ``nobody``, which must be able to reach its directory. pytest's own
    temp dirs do not do: every pytest session that starts (another test run on the machine)
    makes /tmp/pytest-of-root 0700 again, which would cut a running server off. So the servers
    live in a temp dir of their own.

    Skips when Cyrus is not installed, unless the CI variable is set: on CI a missing Cyrus
    must fail loudly rather than silently skip these tests.
    """
    servers: list[CyrusServer] = []
    base = Path(tempfile.mkdtemp(prefix="futurnal-cyrus-"))
    base.chmod(0o711)  # search only: nobody reaches the servers' dirs, cannot list them

    def make(options: CyrusOptions | None = None) -> CyrusServer:
        try:
            server = CyrusServer(base / f"cyrus{len(servers)}", options)
        except CyrusUnavailable as exc:
            _skip_or_fail(str(exc))
        servers.append(server)
        server.add_user(USER, PASSWORD)
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.stop()  # takes about 10 ms
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def cyrus(cyrus_factory: CyrusFactory) -> CyrusServer:
    """A started Cyrus with one user, alice/secret-pw, and an empty INBOX."""
    server = cyrus_factory()
    server.start()
    return server
