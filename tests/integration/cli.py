"""Run the installed ``futurnal-actors`` command as a user would, in a private environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from futurnal.demo.dovecot import DovecotServer
from futurnal.storage.data_dir import DataDir
from futurnal.storage.sqlite import SqliteElementReader

from ..terminal import Terminal

COMMAND = shutil.which("futurnal-actors", path=str(Path(sys.executable).parent)) or "futurnal-actors"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


class Cli:
    """A data directory and a keyring file of one test's own, and the command to drive them."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.data_dir = home / "data"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("FUTURNAL_", "PYTHON_KEYRING"))},
            "FUTURNAL_HOME": str(self.data_dir),
            # A real keyring backend, chosen the standard way; its file lives in this test's dir.
            "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
            "XDG_DATA_HOME": str(home / "xdg-data"),
            "XDG_CONFIG_HOME": str(home / "xdg-config"),
            "HOME": str(home),
        }
        self.cwd: Path | None = None  # where commands run (None: the test's own working directory)
        self.options: list[str] = []  # global options before every command: ["--data-dir", ...]

    def __call__(self, *args: str, stdin: str | None = None, timeout: float = 120) -> Result:
        """Run a command; without ``stdin`` its standard input is closed: nothing may wait on a terminal."""
        feed: dict[str, Any] = {"stdin": subprocess.DEVNULL} if stdin is None else {"input": stdin}
        done = subprocess.run([COMMAND, *self.options, *args], capture_output=True, text=True, timeout=timeout,
                              env=self.env, cwd=self.cwd, **feed)
        return Result(done.returncode, done.stdout, done.stderr)

    def terminal(self, *args: str, columns: int = 80, rows: int = 24) -> Terminal:
        """Start a command in a terminal of ``columns`` x ``rows``, as a user types it there."""
        return Terminal([COMMAND, *self.options, *args], columns=columns, rows=rows, env=self.env, cwd=self.cwd)

    def add(self, server: DovecotServer, *extra: str, password: str = "secret-pw", user: str = "alice",
            mailbox_id: str = "alice", folders: str = "INBOX") -> Result:
        return self(
            "imap", "add", "--email", f"{user}@example.org", "--host", server.host,
            "--port", str(server.imaps_port), "--username", user, "--password-stdin",
            "--cafile", str(server.cert_path), "--id", mailbox_id, "--folders", folders, "--consent", *extra,
            stdin=password + "\n",
        )


def stored_count(data_dir: Path) -> int:
    """How many elements the store in ``data_dir`` holds (0 before a process made it)."""
    layout = DataDir(data_dir)
    if not layout.element_db_path.exists():
        return 0
    with SqliteElementReader(layout.element_db_path, layout.feed_listeners_root) as reader:
        return reader.count()
