"""One throwaway Dovecot holding both benchmark mailboxes, populated before it starts.

Both sizes live on the same server, as two users: ``large`` holds all N messages and ``small``
the first S of the very same messages. Same server process, same config, same disk, same bytes
per message, so the only difference between the two rows is the number of messages.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import imapclient

from futurnal.demo.dovecot import DovecotServer

from .mailbox import BenchMessage

__all__ = ["BenchServer", "PASSWORD", "write_mailbox_file"]

PASSWORD = "bench-password"


def write_mailbox_file(path: Path, server: DovecotServer, users: list[str], **fields: str) -> None:
    """The JSON Lines file ``imap import`` reads: one mailbox per user of ``server`` over plain
    IMAP, each password in a 0600 file beside it (never on a command line), ``fields`` added to
    each line (``folders``, ``watch``, ``schedule``)."""
    secrets = path.parent / "secrets"
    secrets.mkdir(mode=0o700)
    lines = []
    for user in users:
        secret = secrets / user
        secret.write_text(PASSWORD + "\n", encoding="utf-8")
        secret.chmod(0o600)
        lines.append(json.dumps({
            "id": user, "email": f"{user}@bench.test", "host": server.host, "port": server.imap_port,
            "username": user, "security": "plain", "password_file": str(secret), **fields}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class BenchServer:
    """A private work directory (0755 under /tmp), a Dovecot in it, and cleanup of both.

    As root, Dovecot's unprivileged processes must traverse every directory above the mail,
    hence /tmp (world-searchable) and mode 0755 rather than a 0700 ``mkdtemp`` default.
    """

    def __init__(self, log: Callable[[str], None]) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="futurnal-bench-", dir="/tmp"))
        self.work.chmod(0o755)
        self._log = log
        self.server = DovecotServer(self.work / "dovecot")
        self.users: dict[str, int] = {}

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        """Plain (unencrypted) IMAP on loopback: what every row of the benchmark uses."""
        return self.server.imap_port

    def populate(self, user: str, messages: list[BenchMessage]) -> None:
        """Write ``messages`` straight into the user's maildir (Dovecot indexes them on SELECT)."""
        self.server.add_user(user, PASSWORD)
        started = time.perf_counter()
        for number, message in enumerate(messages, 1):
            self.server.deliver(user, message.raw, folder="INBOX", flags=message.flags)
            if number % 2000 == 0 or number == len(messages):
                self._log(f"  {user}: {number:,}/{len(messages):,} delivered "
                          f"({time.perf_counter() - started:.1f} s)")
        self.users[user] = len(messages)

    def start(self) -> None:
        """Start Dovecot, then SELECT each mailbox once so no measured run pays for indexing."""
        self.server.start()
        for user, expected in self.users.items():
            client = imapclient.IMAPClient(self.host, port=self.port, ssl=False, timeout=60)
            try:
                client.login(user, PASSWORD)
                exists = client.select_folder("INBOX", readonly=True)[b"EXISTS"]
            finally:
                client.logout()
            if exists != expected:
                raise RuntimeError(f"Dovecot shows {exists} messages for {user}, expected {expected}")

    def scratch(self, name: str) -> Path:
        """A fresh empty directory for one run's output (Maildir, FUTURNAL_HOME, ...)."""
        path = self.work / "runs" / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def close(self) -> None:
        """Stop Dovecot (always) and delete everything this benchmark wrote."""
        try:
            self.server.stop()
        finally:
            shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> BenchServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
