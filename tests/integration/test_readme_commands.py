"""The README's quick start, run as written: each line of its block, in order, by bash, against a
throwaway Dovecot whose host, port and certificate stand in for ``imap.example.org``.

Nothing else of a line is changed: ``futurnal-actors`` is the installed command, ``password.txt``
holds the mailbox's password in the directory the lines run in, and the data directory and the
keyring are the test's own (as ``tests/integration/cli.py`` sets them up). ``run`` is started,
shown to store new mail, and stopped with SIGTERM, as Ctrl+C or a service manager would.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path

import imapclient
import pytest

from futurnal.demo.dovecot import DovecotServer
from futurnal.demo.sample_mailbox import generate_mailbox

from ..readme_blocks import CommandLine, command_lines, commands, named_block
from .cli import COMMAND, Cli, stored_count
from .running_process import RunningProcess

PLACEHOLDER = "--host imap.example.org"
USER, PASSWORD = "me", "quick-start-pw"  # me@example.org logs in as "me": the test Dovecot drops the domain
MESSAGES = 40
INVOICE = (
    b"From: Billing <billing@example.net>\r\nTo: me@example.org\r\nSubject: Invoice for March\r\n"
    b"Message-ID: <invoice-march@example.net>\r\nDate: Tue, 3 Mar 2026 09:00:00 +0000\r\n\r\n"
    b"The invoice for March, as agreed.\r\n"
)


@pytest.fixture
def server(dovecot_factory) -> DovecotServer:  # type: ignore[no-untyped-def]
    """Dovecot with user ``me``: sample messages and an invoice in INBOX."""
    server = dovecot_factory()
    server.add_user(USER, PASSWORD)
    inbox = [message for message in generate_mailbox(MESSAGES * 2) if message.folder == "INBOX"][:MESSAGES]
    for message in inbox:
        server.deliver(USER, message.raw, flags=message.flags)
    server.deliver(USER, INVOICE)
    server.start()
    return server


def _subcommand(line: CommandLine) -> tuple[str, ...]:
    """The futurnal-actors command a line runs: ("imap", "add"), ("run",), ..."""
    (command,) = [c for c in commands(line.text) if c.name == "futurnal-actors"]
    return tuple(word for word in command.words if not word.startswith("-"))[:2]


def test_the_quick_start_runs_as_written(server: DovecotServer, tmp_path: Path) -> None:
    block = named_block("quick-start")
    assert block.text.count(PLACEHOLDER) == 1, "the quick start names its server once, in imap add"
    cli = Cli(tmp_path)
    cli.cwd = tmp_path / "work"
    cli.cwd.mkdir()
    password = cli.cwd / "password.txt"
    password.write_text(PASSWORD + "\n")
    password.chmod(0o600)
    path = f"{Path(COMMAND).parent}{os.pathsep}{os.environ['PATH']}"
    here = f"--host {server.host} --port {server.imaps_port} --cafile {shlex.quote(str(server.cert_path))}"

    out: dict[tuple[str, ...], str] = {}
    ran_run = False
    for line in command_lines(block):
        text = line.text.replace(PLACEHOLDER, here)
        command = _subcommand(line)
        if command == ("run",):
            ran_run = _run_stores_new_mail(cli, server, text, path)
            continue
        done = subprocess.run(["bash", "-o", "pipefail", "-c", text], cwd=cli.cwd, env={**cli.env, "PATH": path},
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{line.where}: {line.text}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
        out[command] = done.stdout
        if command == ("imap", "sync"):
            assert stored_count(cli.data_dir) == MESSAGES + 1

    assert "added mailbox me-example.org (me@example.org)" in out["imap", "add"]
    assert "INBOX" in out["imap", "folders"] and "INBOX" in out["imap", "status"]
    (first,) = [json.loads(text) for text in out["elements", "export"].splitlines()]
    assert first["mailbox"] == "me-example.org" and not first["deleted"]
    assert "Invoice for March" in out["elements", "search"]
    changes = [json.loads(text) for text in out["elements", "changes"].splitlines()]
    # One upsert per message, and one more for each whose attachment text arrived later.
    assert len({change["id"] for change in changes}) == MESSAGES + 1 and {change["op"] for change in changes} == {"upsert"}
    consumers = cli("elements", "consumers", "--json")
    assert "my-indexer" in consumers.out, consumers
    assert ran_run, "the quick start ends by running the service"


def _run_stores_new_mail(cli: Cli, server: DovecotServer, text: str, path: str) -> bool:
    """``run`` as written: up, storing mail that arrives while it runs, and stopped by SIGTERM (exit 0)."""
    running = RunningProcess(cli, command=["bash", "-c", f"exec {text}"], PATH=path)
    try:
        before = stored_count(cli.data_dir)
        with imapclient.IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=30) as client:
            client.login(USER, PASSWORD)
            client.append("INBOX", INVOICE.replace(b"invoice-march@", f"late-{time.time_ns()}@".encode()))
        running.wait_for(lambda: stored_count(cli.data_dir) > before, "run did not store the mail that arrived")
    finally:
        code, err = running.finish()
    assert code == 0, err
    return True
