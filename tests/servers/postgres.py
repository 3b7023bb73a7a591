"""A throwaway PostgreSQL cluster for the tests: ``initdb`` in a temporary directory, one server
on a free port of 127.0.0.1 (its unix socket in that directory too), removed again by ``stop()``.

The binaries are Debian's (``bin/install-postgres`` installs the ``postgresql`` package, whose
system-wide cluster is left stopped). PostgreSQL refuses to run as root, so as root the cluster
belongs to the package's ``postgres`` user and is run through ``runuser``; as anyone else, as
that user. Nothing is made durable (``fsync=off``): the tests need a database, not a disk.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from futurnal.demo.server_process import ServerProcess, free_ports

__all__ = ["PostgresServer", "PostgresUnavailable"]

_INSTALL_HINT = "PostgreSQL is not installed: run bin/install-postgres as root (apt-get install postgresql)"
SUPERUSER = "futurnal"


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL binaries, or psycopg, are missing."""


def _bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian keeps each version apart)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"),
                   key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0)
    if found:
        return found[-1].parent
    postgres = shutil.which("postgres")
    return Path(postgres).parent if postgres else None


class PostgresServer(ServerProcess):
    """One PostgreSQL server with a trusted superuser ``futurnal``, its data under a temporary
    directory; :meth:`new_database` gives each test a database of its own."""

    host = "127.0.0.1"
    term_whole_group = True  # the backends leave at once, so the smart shutdown does not wait for them
    stop_timeout = 15.0

    def __init__(self) -> None:
        bin_dir = _bin_dir()
        if bin_dir is None or not (bin_dir / "initdb").exists():
            raise PostgresUnavailable(_INSTALL_HINT)
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise PostgresUnavailable("psycopg is not installed: pip install 'psycopg[binary]'") from None
        self._bin = bin_dir
        self.port = 0
        self.root = Path(tempfile.mkdtemp(prefix="futurnal-pg-"))
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root, and there is no 'postgres' user to run PostgreSQL as") from None
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self.data = self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def start(self, timeout: float = 30.0) -> None:
        if self.running:
            return
        if not self.data.exists():
            subprocess.run([*self._as, str(self._bin / "initdb"), "--no-sync", "-A", "trust", "-U", SUPERUSER,
                            "-E", "UTF8", "--locale", "C", "-D", str(self.data)],
                           check=True, capture_output=True, timeout=120)
        for attempt in range(3):  # a free port may be taken before the server binds it
            (self.port,) = free_ports(1)
            self._launch([*self._as, str(self._bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
                          "-k", str(self.root), "-c", f"listen_addresses={self.host}", "-c", "fsync=off",
                          "-c", "full_page_writes=off", "-c", "max_connections=100"],
                         self.root / "server.log", cwd=self.root)
            problem = self._wait_ready(self._probe, timeout, interval=0.05)
            if problem is None:
                return
            self.stop()
            if attempt == 2 or "already in use" not in self._log_tail():
                raise RuntimeError(f"PostgreSQL {problem}; server.log tail:\n{self._log_tail()}")

    def _probe(self, deadline: float) -> str | None:
        import psycopg

        try:
            psycopg.connect(self.url(), connect_timeout=2).close()
        except psycopg.OperationalError:
            return f"did not accept connections on {self.host}:{self.port}"
        return None

    def new_database(self) -> str:
        """A new empty database's URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def remove(self) -> None:
        """Stop the server and delete its cluster."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _log_tail(self, lines: int = 30) -> str:
        log = self.root / "server.log"
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        return "\n".join(text.splitlines()[-lines:]) or "(empty)"
