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


def _last(screen: Screen, counted_back: int = 1) -> str:
    """The screen's last line (``counted_back``: the one so many lines up), "" when there is none."""
    lines = screen.lines()
    return lines[-counted_back] if len(lines) >= counted_back else ""


def test_console_completes_by_position_and_ctrl_c_drops_the_line_not_the_console(running: RunningProcess) -> None:
    with running.cli.terminal("console", columns=80, rows=24) as terminal:
        terminal.wait_for(lambda s: _last(s) == "futurnal>", "the prompt")
        terminal.send("pa\t")  # a command name first ...
        terminal.wait_for(lambda s: _last(s) == "futurnal> pause", "pause completed")
        terminal.send("al\t")  # ... then, where it takes one, a mailbox id
        terminal.wait_for(lambda s: _last(s) == "futurnal> pause alice", "alice completed")
        terminal.send("\x03")  # Ctrl+C: the line is dropped, the console stays
        terminal.wait_for(lambda s: _last(s) == "futurnal>", "a new prompt after Ctrl+C")
        terminal.send("consent \t\t")  # choices before the mailbox
        terminal.wait_for(lambda s: _last(s, 2).split() == ["grant", "revoke", "show"], "the consent actions")
        terminal.send("sh\t\t")
        terminal.wait_for(lambda s: _last(s) == "futurnal> consent show alice", "show, then alice")
        terminal.send("\r")
        terminal.wait_for("alice: metadata, content, attachments granted by", "consent show's reply")
        terminal.send("subscribe\r")
        terminal.wait_for("Ctrl+C stops")
        terminal.send("\x03")  # ends the stream, not the console
        terminal.wait_for(lambda s: _last(s) == "futurnal>", "a prompt after the stream")
        terminal.send("status\r")
        terminal.wait_for(lambda s: any(line.startswith("alice ") and "INBOX" in line for line in s.lines()))
        terminal.send("\x04")  # Ctrl+D leaves
        assert terminal.wait(timeout=30) == 0
    assert running.process.poll() is None and running.client.call("status")["mailboxes"][0]["mailbox"]["id"] == "alice"
