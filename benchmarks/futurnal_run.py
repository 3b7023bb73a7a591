"""futurnal-actors measured as users run it: the real CLI in a subprocess, in a private home.

Each home has its own FUTURNAL_HOME, XDG dirs and HOME, and a plaintext keyring file chosen the
standard way (``PYTHON_KEYRING_BACKEND``), as ``tests/integration/cli.py`` does, so nothing is
read from or written to the machine's real configuration or keyring.

The CLI's wall time includes interpreter start-up, imports, starting and stopping the actor
system and connecting; for a no-change resync that overhead is nearly all of it. So the sync
work alone is also timed in-process through the public API (:func:`inprocess_resync`).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .proc import ChildRun, run_measured

__all__ = ["FuturnalHome", "InProcessResync", "cli_path"]

_ADD_HELP: str | None = None  # ``imap add --help`` of the CLI under test, read once


def cli_path() -> str:
    """The ``futurnal-actors`` installed next to this interpreter (the project's .venv)."""
    found = shutil.which("futurnal-actors", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError(f"futurnal-actors is not installed next to {sys.executable}: run bin/test once first")
    return found


@dataclass(frozen=True)
class CliSync:
    """One ``imap sync --json`` run: the child's costs and its report."""

    child: ChildRun
    report: dict[str, Any]

    @property
    def fetched(self) -> int:
        return int(self.report["fetched"])


@dataclass(frozen=True)
class InProcessResync:
    """No-change ``ActorSystem.sync`` timings, in seconds.

    ``first`` is the first sync after ``start()``: it includes opening the IMAP connection and
    logging in. ``steady`` are the following syncs on the same started system: SELECT, compare
    UIDNEXT/HIGHESTMODSEQ with the stored state, write the state, reply.
    """

    first: float
    steady: list[float]

    @property
    def steady_median(self) -> float:
        return statistics.median(self.steady)


class FuturnalHome:
    """A private environment for the CLI, with one registered mailbox."""

    def __init__(self, root: Path, cli: str) -> None:
        self.root = root
        self.cli = cli
        self.data_dir = root / "data"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("FUTURNAL_", "PYTHON_KEYRING"))},
            "FUTURNAL_HOME": str(self.data_dir),
            "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
            "XDG_DATA_HOME": str(root / "xdg-data"),
            "XDG_CONFIG_HOME": str(root / "xdg-config"),
            "HOME": str(root),
        }

    def run(self, *args: str, timeout: float, stdin: str | None = None) -> ChildRun:
        return run_measured([self.cli, *args], env=self.env, timeout=timeout, stdin=stdin)

    def add(self, *, host: str, port: int, user: str, password: str, mailbox_id: str) -> None:
        """Register the mailbox over plain IMAP (the CLI checks the login before registering).

        Newer CLIs want ``--consent`` when there is no terminal to ask on; it is passed when
        ``imap add --help`` lists it, so the benchmark runs against older and newer trees alike.
        """
        consent = ["--consent"] if "--consent" in self._add_help() else []
        self.run(
            "imap", "add", "--email", f"{user}@bench.test", "--host", host, "--port", str(port),
            "--username", user, "--password-stdin", "--security", "plain", "--id", mailbox_id,
            "--folders", "INBOX", *consent, "--json", stdin=password + "\n", timeout=60,
        ).check("futurnal-actors imap add")

    def _add_help(self) -> str:
        global _ADD_HELP
        if _ADD_HELP is None:
            _ADD_HELP = self.run("imap", "add", "--help", timeout=60).check("futurnal-actors imap add --help").stdout
        return _ADD_HELP

    def sync(self, mailbox_id: str, timeout: float) -> CliSync:
        """``futurnal-actors imap sync MAILBOX --json``: the whole pipeline to the element store."""
        child = self.run("imap", "sync", mailbox_id, "--json", "--timeout", f"{timeout:g}",
                         timeout=timeout + 30).check("futurnal-actors imap sync")
        report = json.loads(child.stdout)
        if not report.get("ok"):
            raise RuntimeError(f"futurnal sync reported errors: {report.get('errors')}")
        return CliSync(child, report)

    def startup_floor(self) -> ChildRun:
        """``imap list --json``: interpreter start-up and imports, no actor system, no IMAP."""
        return self.run("imap", "list", "--json", timeout=60).check("futurnal-actors imap list")

    def keyring_file(self) -> Path:
        """Where the CLI's PlaintextKeyring put the password (under this home's XDG_DATA_HOME)."""
        found = sorted(self.root.rglob("keyring_pass.cfg"))
        if not found:
            raise RuntimeError(f"no keyring file under {self.root}: did `imap add` run?")
        return found[0]

    def inprocess_resync(self, mailbox_id: str, repeats: int = 10) -> InProcessResync:
        """Time no-change syncs through ``futurnal.system.ActorSystem`` in this process.

        Uses the same data directory and the same keyring file as the CLI runs. The timed
        span is exactly ``system.sync(mailbox_id, timeout=60)``: the request through the
        mailbox actor to the fetcher, the folder check, and the report coming back.
        """
        from keyrings.alt.file import PlaintextKeyring

        from futurnal.storage.credentials import CredentialStore
        from futurnal.system import ActorSystem

        backend = PlaintextKeyring()
        backend.file_path = str(self.keyring_file())  # type: ignore[misc]
        system = ActorSystem(self.data_dir, credentials=CredentialStore(backend))
        system.start(schedule=False)
        try:
            timings: list[float] = []
            for _ in range(repeats + 1):
                started = time.perf_counter()
                report = system.sync(mailbox_id, timeout=60)
                timings.append(time.perf_counter() - started)
                if not report.ok or report.fetched:
                    raise RuntimeError(f"expected a no-change sync, got ok={report.ok} fetched={report.fetched} "
                                       f"errors={report.errors}")
        finally:
            system.stop()
        return InProcessResync(first=timings[0], steady=timings[1:])
