"""futurnal-actors measured as users run it: the real CLI in a subprocess, in a private home.

Each home has its own FUTURNAL_HOME, XDG dirs and HOME, and a plaintext keyring file chosen the
standard way (``PYTHON_KEYRING_BACKEND``), as ``tests/integration/cli.py`` does, so nothing is
read from or written to the machine's real configuration or keyring.

The CLI's wall time includes interpreter start-up, imports, starting and stopping the actor
system and connecting; for a no-change resync that overhead is nearly all of it. So the sync
work alone is also timed in-process through the public API (:func:`inprocess_resync`).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import sqlite3
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .proc import ChildRun, run_measured
from .stages import breakdown

__all__ = ["ConcurrentRun", "FuturnalHome", "InProcessResync", "cli_path"]

_STAGE_RUNS = itertools.count(1)

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
    stages: dict[str, float] | None = None  # CPU seconds per stage (benchmarks.stages)

    @property
    def fetched(self) -> int:
        return int(self.report["fetched"])


@dataclass(frozen=True)
class ConcurrentRun:
    """``run`` syncing several mailboxes at once: ``wall_seconds`` from its start until every
    message is stored and every attachment extracted; ``child`` is the whole process, stop included."""

    child: ChildRun
    wall_seconds: float
    stored: int
    stages: dict[str, float] | None


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

    def __init__(self, root: Path, cli: str, settings: dict[str, str] | None = None) -> None:
        self.root = root
        self.cli = cli
        self.data_dir = root / "data"
        self.settings = settings or {}  # "section.key" -> a TOML value, written to config.toml
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

    def add(self, *, host: str, port: int, user: str, password: str, mailbox_id: str, email: str | None = None) -> None:
        """Register the mailbox over plain IMAP (the CLI checks the login before registering).

        Newer CLIs want ``--consent`` when there is no terminal to ask on; it is passed when
        ``imap add --help`` lists it, so the benchmark runs against older and newer trees alike.
        """
        consent = ["--consent"] if "--consent" in self._add_help() else []
        self._write_settings()
        self.run(
            "imap", "add", "--email", email or f"{user}@bench.test", "--host", host, "--port", str(port),
            "--username", user, "--password-stdin", "--security", "plain", "--id", mailbox_id,
            "--folders", "INBOX", *consent, "--json", stdin=password + "\n", timeout=60,
        ).check("futurnal-actors imap add")

    def _write_settings(self) -> None:
        if not self.settings:
            return
        sections: dict[str, list[str]] = {}
        for name, value in self.settings.items():
            section, key = name.split(".", 1)
            sections.setdefault(section, []).append(f"{key} = {value}")
        self.data_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
        config = self.data_dir / "config.toml"
        config.write_text("".join(f"[{s}]\n" + "\n".join(lines) + "\n" for s, lines in sections.items()),
                          encoding="utf-8")
        config.chmod(0o600)

    def _add_help(self) -> str:
        global _ADD_HELP
        if _ADD_HELP is None:
            _ADD_HELP = self.run("imap", "add", "--help", timeout=60).check("futurnal-actors imap add --help").stdout
        return _ADD_HELP

    def _stage_dir(self) -> Path:
        """A fresh directory for one run's CPU counters (``FUTURNAL_STAGE_CPU``)."""
        directory = self.root / f"stage-cpu-{next(_STAGE_RUNS)}"
        directory.mkdir(parents=True)
        return directory

    def sync(self, mailbox_id: str, timeout: float, stages: bool = False) -> CliSync:
        """``futurnal-actors imap sync MAILBOX --json``: the whole pipeline to the element store.
        With ``stages``, the service counts its CPU per stage (a few clock reads per message)."""
        counters = self._stage_dir() if stages else None
        env = {**self.env, "FUTURNAL_STAGE_CPU": str(counters)} if counters else self.env
        child = run_measured([self.cli, "imap", "sync", mailbox_id, "--json", "--timeout", f"{timeout:g}"],
                             env=env, timeout=timeout + 30).check("futurnal-actors imap sync")
        report = json.loads(child.stdout)
        if not report.get("ok"):
            raise RuntimeError(f"futurnal sync reported errors: {report.get('errors')}")
        return CliSync(child, report, breakdown(counters, child.cpu_seconds) if counters else None)

    def stored_elements(self) -> int:
        database = self.data_dir / "elements.sqlite"
        if not database.exists():
            return 0
        try:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as db:
                return int(db.execute("SELECT count(*) FROM elements").fetchone()[0])
        except sqlite3.Error:  # not created yet
            return 0

    def attachment_jobs(self) -> int:
        return len(list((self.data_dir / "attachment-queue").glob("*/*/job.json")))

    def run_until_stored(self, expected: int, timeout: float) -> ConcurrentRun:
        """``futurnal-actors run`` (every registered mailbox's first sync at start, as many at once
        as ``sync.max_concurrent`` allows) until ``expected`` elements are stored and no attachment
        job is left, then SIGTERM; counted per stage like :meth:`sync`."""
        counters = self._stage_dir()
        env = {**self.env, "FUTURNAL_STAGE_CPU": str(counters)}
        pids: list[int] = []
        finished: list[ChildRun] = []
        runner = threading.Thread(target=lambda: finished.append(
            run_measured([self.cli, "run"], env=env, timeout=timeout + 60, on_start=pids.append)), daemon=True)
        started = time.perf_counter()
        runner.start()
        deadline = started + timeout
        stored = 0
        try:
            while True:
                if not runner.is_alive():
                    tail = finished[0].stderr[-2000:] if finished else "(no output)"
                    raise RuntimeError(f"futurnal run ended before the syncs were done:\n{tail}")
                stored = self.stored_elements()
                if stored >= expected and self.attachment_jobs() == 0:
                    break
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"futurnal run stored {stored:,} of {expected:,} elements in time")
                time.sleep(0.2)
            wall = time.perf_counter() - started
        finally:
            if pids:
                try:
                    os.kill(pids[0], signal.SIGTERM)
                except ProcessLookupError:
                    pass
            runner.join(timeout=120)
        if not finished:
            raise RuntimeError("futurnal run did not stop within 120 s of SIGTERM")
        child = finished[0]
        return ConcurrentRun(child, wall, stored, breakdown(counters, child.cpu_seconds))

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
