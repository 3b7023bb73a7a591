"""`top` and `console` as a user sees them: in an 80x24 terminal (a pseudo-terminal), keys typed
into it, against a real `run` process."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from futurnal.demo.dovecot import DovecotServer
from futurnal.demo.sample_mailbox import generate_mailbox

from ..terminal import Screen
from .cli import Cli
from .running_process import RunningProcess


@pytest.fixture
def running(tmp_path: Path, dovecot_factory: Any) -> Iterator[RunningProcess]:
    """`run` with one mailbox, alice (INBOX and Archive, synced once), that syncs only when asked."""
    server: DovecotServer = dovecot_factory()
    for message in generate_mailbox(20, seed=5):
        server.deliver("alice", message.raw, folder=message.folder, flags=message.flags)
    server.start()
    cli = Cli(tmp_path)
    assert cli.add(server, "--watch", "", "--schedule", "@manual", folders="INBOX,Archive").code == 0
    assert cli("imap", "sync", "alice").code == 0
    process = RunningProcess(cli)
    yield process
    process.finish()


def _fits(screen: Screen) -> None:
    """Nothing wider than the terminal, nothing pushed off its top: every redraw in place."""
    assert screen.wraps == 0 and screen.scrolled == [], screen.text()


def test_top_in_80_by_24_fits_shows_the_events_and_q_quits(running: RunningProcess) -> None:
    with running.cli.terminal("top", "--interval", "0.2", columns=80, rows=24) as terminal:
        terminal.wait_for("latest events:")
        running.client.call("sync", mailbox="alice")
        terminal.wait_for("alice: sync finished, 0 new", "the sync's event")
        terminal.send("q")
        assert terminal.wait(timeout=30) == 0
        screen = terminal.screen()
    _fits(screen)
    lines = screen.lines()
    header = lines.index(next(line for line in lines if line.startswith("mailbox ")))
    assert lines[header].split() == ["mailbox", "state", "folder", "server", "stored", "freshness", "msg/s", "inbox"]
    assert re.match(r"alice +idle +Archive +2 +2 +fresh \(\d+ s ago\) +0 +0$", lines[header + 1]), screen.text()
    assert re.match(r" +INBOX +18 +18 +fresh \(\d+ s ago\)$", lines[header + 2]), screen.text()
    assert not re.search(r"\d{4}-\d", screen.text())  # ages, not dates cut short
    assert re.search(r"^\d\d:\d\d:\d\d alice: sync started", screen.text(), re.M), screen.text()
    assert running.process.poll() is None  # q left the view, not the process
