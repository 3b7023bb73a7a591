"""`run` stops on time even when every mailbox is stuck in a FETCH that trickles.

A fetcher inside a socket read cannot look at a stop flag, so before stops cut connections each
hung mailbox held SIGTERM for its whole timeout, one mailbox after another.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..servers.hostile_imap import Folder, HostileImap, Quirk
from .cli import COMMAND, Cli
from .test_hostile_server import message

pytestmark = pytest.mark.integration

MAILBOXES = 3


@pytest.fixture
def trickling_servers() -> Iterator[list[HostileImap]]:
    slow = message(1, body_bytes=200_000)
    servers = [HostileImap({"INBOX": Folder(7, {1: slow}, quirks={1: Quirk(trickle=100.0)})}, timeout=120)
               for _ in range(MAILBOXES)]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


def test_sigterm_stops_mailboxes_hung_in_a_fetch_at_once(tmp_path: Path, trickling_servers: list[HostileImap]) -> None:
    cli = Cli(tmp_path)
    cli.env["FUTURNAL_SYNC_MAX_CONCURRENT"] = str(MAILBOXES)  # all of them stuck at once
    for number, server in enumerate(trickling_servers):
        added = cli("imap", "add", "--email", f"m{number}@example.org", "--host", "127.0.0.1", "--port",
                    str(server.port), "--username", "a", "--password-stdin", "--security", "plain",
                    "--id", f"m{number}", "--watch", "", "--consent", stdin="pw\n")
        assert added.code == 0, added.err
    process = subprocess.Popen([COMMAND, "run"], env=cli.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 60
        while not all(server.body_fetches for server in trickling_servers):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the syncs did not start"
            time.sleep(0.1)
        time.sleep(1)  # every fetcher is now inside a body that takes over half an hour to arrive
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
        took = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert took < 10, f"run took {took:.1f} s to stop"
