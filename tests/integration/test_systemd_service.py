"""The systemd unit's configuration end to end, without systemd: its command line, run with exactly
the environment its ``Environment=`` lines give, and the commands an operator runs as the service
user, all with standard input closed; secrets kept encrypted, nothing ever prompting.

Only paths are moved: the unit's data directory, /var/lib/futurnal-actors, becomes a temp dir
(made 0700 beforehand, as the unit's ``StateDirectory=`` makes it), wherever the unit names it
(``HOME=`` too), and its program, /opt/futurnal-actors/venv/bin/futurnal-actors, becomes the
command installed in this venv. ``PATH`` is added, as systemd gives every service one; nothing
else of the test runner's environment is passed on.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import imapclient
import pytest

from futurnal.demo.dovecot import DovecotServer

from ..systemd_unit import environment, exec_start
from .cli import COMMAND, Cli, stored_count
from .running_process import RunningProcess

UNIT_DATA_DIR = "/var/lib/futurnal-actors"
UNIT_PROGRAM = "/opt/futurnal-actors/venv/bin/futurnal-actors"
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"  # systemd's default for services
PASSWORD = "secret-pw"  # the fixture's


class Unit:
    """The unit with its paths moved under ``root``."""

    def __init__(self, root: Path) -> None:
        self.data_dir = root / "var-lib-futurnal-actors"
        self.data_dir.mkdir(mode=0o700)
        self.paths = {UNIT_DATA_DIR: str(self.data_dir), UNIT_PROGRAM: COMMAND}
        assert exec_start()[0] == UNIT_PROGRAM and UNIT_DATA_DIR in exec_start(), "the unit changed: move its paths"
        self.env = {"PATH": SYSTEMD_PATH, **environment(self.paths)}
        self.command = exec_start(self.paths)

    def cli(self, home: Path, env: dict[str, str] | None = None) -> Cli:
        """Commands as the service user on the unit's data directory, in the unit's environment or ``env``."""
        cli = Cli(home)
        cli.env = self.env if env is None else env
        cli.data_dir = self.data_dir
        cli.options = ["--data-dir", str(self.data_dir)]
        return cli


def _operator_env(home: Path) -> dict[str, str]:
    """What `sudo -u futurnal` leaves an operator's command: none of the unit's variables, a home
    and XDG directories of its own."""
    return {"PATH": SYSTEMD_PATH, "HOME": str(home), "XDG_DATA_HOME": str(home / "xdg-data"),
            "XDG_CONFIG_HOME": str(home / "xdg-config")}


@pytest.fixture
def server(dovecot_factory: Any) -> DovecotServer:
    made: DovecotServer = dovecot_factory()
    for i in range(3):
        made.deliver("alice", _message(f"before {i}"))
    made.start()
    return made


def _message(subject: str) -> bytes:
    return (f"From: Sender <sender@example.net>\r\nTo: alice@example.org\r\nSubject: {subject}\r\n"
            f"Message-ID: <{time.time_ns()}-{subject.replace(' ', '-')}@example.net>\r\n"
            "Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nHello.\r\n").encode()


def _append(server: DovecotServer, subject: str) -> None:
    with imapclient.IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=30) as client:
        client.login("alice", PASSWORD)
        client.append("INBOX", _message(subject))


def _quiet(err: str) -> None:
    """No traceback, no prompt: with --log-format json, every line on stderr is a log record."""
    assert "Traceback" not in err and "EOFError" not in err, err
    assert all(line.startswith("{") for line in err.splitlines()), err


def _secrets_encrypted(data_dir: Path) -> None:
    assert (data_dir / "secrets.enc").stat().st_mode & 0o777 == 0o600
    assert (data_dir / "secrets.key").stat().st_mode & 0o777 == 0o600
    for path in data_dir.rglob("*"):
        if path.is_file() and path.suffix not in (".sqlite", ".sqlite-wal", ".sqlite-shm"):
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_imap_add_then_sync_and_run_with_the_unit_s_environment_and_stdin_closed(
    tmp_path: Path, server: DovecotServer
) -> None:
    unit = Unit(tmp_path)
    cli = unit.cli(tmp_path)
    added = cli.add(server)
    assert added.code == 0, added.err
    _secrets_encrypted(unit.data_dir)
    assert not list(tmp_path.rglob("*.cfg"))  # no keyring file anywhere

    synced = cli("imap", "sync", "alice")
    assert synced.code == 0, synced.err
    assert stored_count(unit.data_dir) == 3
    assert "Traceback" not in synced.err

    running = RunningProcess(cli, command=unit.command)
    _append(server, "while running")  # the INBOX watcher reads it, with the secret from the file
    running.wait_for(lambda: stored_count(unit.data_dir) == 4, "run did not sync the new message")
    through_console = cli("imap", "sync", "alice")
    assert through_console.code == 0, through_console.err
    code, err = running.finish()
    assert code == 0, err
    _quiet(err)
    assert any(line.startswith("running with 1 mailbox") for line in running.lines), running.lines


def test_after_the_service_s_first_start_an_operator_s_imap_add_needs_none_of_its_variables(
    tmp_path: Path, server: DovecotServer
) -> None:
    """The README's order: the service starts first (making the secrets file and its key), then
    `sudo -u futurnal futurnal-actors --data-dir ... imap add` from an operator's shell."""
    unit = Unit(tmp_path)
    running = RunningProcess(unit.cli(tmp_path), command=unit.command)
    running.wait_for((unit.data_dir / "secrets.key").exists, "run did not make the secrets key")
    operator = unit.cli(tmp_path, _operator_env(tmp_path / "operator"))
    added = operator.add(server)  # through the running service's console
    assert added.code == 0, added.err
    running.wait_for(lambda: stored_count(unit.data_dir) == 3, "the new mailbox did not sync")
    code, err = running.finish()
    assert code == 0, err
    _quiet(err)
    _secrets_encrypted(unit.data_dir)
    assert not (tmp_path / "operator").exists()  # nothing went to the operator's home or keyring

    _append(server, "after the service stopped")
    synced = operator("imap", "sync", "alice")
    assert synced.code == 0, synced.err
    assert stored_count(unit.data_dir) == 4


def _one_error_line(err: str, text: str) -> None:
    errors = [line for line in err.splitlines() if not line.startswith("{")]
    assert len(errors) == 1 and errors[0].startswith("futurnal-actors: error: ") and text in errors[0], err
    assert "Traceback" not in err


def test_a_missing_or_wrong_key_stops_sync_and_run_with_one_line_and_changes_nothing(
    tmp_path: Path, server: DovecotServer
) -> None:
    unit = Unit(tmp_path)
    cli = unit.cli(tmp_path)
    assert cli.add(server).code == 0
    secrets, key = unit.data_dir / "secrets.enc", unit.data_dir / "secrets.key"
    before = secrets.read_bytes()
    key.rename(tmp_path / "kept.key")

    synced = cli("imap", "sync", "alice")
    assert synced.code == 1
    _one_error_line(synced.err, f"no key for the secrets file {secrets}")
    done = subprocess.run(unit.command, env=unit.env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    _one_error_line(done.stderr, f"no key for the secrets file {secrets}")
    assert not key.exists()

    key.write_bytes(b"k" * 32)
    key.chmod(0o600)
    synced = cli("imap", "sync", "alice")
    assert synced.code == 1
    _one_error_line(synced.err, f"the secrets file {secrets} was written with another key")
    assert secrets.read_bytes() == before
