"""Several ``run`` processes sharing one PostgreSQL, beside one process on the SQLite store.

One throwaway Dovecot gets N users (default 200), each with M small messages in INBOX (default
50). The same mailboxes are served, one after the other, by:

- one ``futurnal-actors run`` on the default store (SQLite and files in its data directory);
- for each count in ``--processes`` (default 2 and 4), that many ``run`` processes, each with a
  data directory of its own, all on one fresh PostgreSQL database and one keyring (one host).

Printed side by side: the time from start until every message is stored (and, shared, until
every mailbox is leased); how evenly the leases are shared out; then one process is killed with
SIGKILL, one message is appended to each of its mailboxes at once, and the benchmark times the
takeover (from the kill until the survivors hold all its mailboxes) and the arrival of that mail in
the store; peak RSS per process; rows and size of each table and of the whole database per 10,000
elements, beside the SQLite file's; the exit status of every process after SIGTERM.

The PostgreSQL cluster is the tests' (tests/servers/postgres.py) with fsync and full-page writes
on, as a deployment runs it (the tests turn both off), so its commits are as durable as SQLite's
(``synchronous=FULL``). Not part of the test suite; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import imapclient

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make `benchmarks`, `tests` and the checkout importable
    sys.path.insert(0, str(REPO))

from benchmarks.futurnal_run import FuturnalHome, cli_path  # noqa: E402
from benchmarks.proc import process_status  # noqa: E402
from benchmarks.progress import load_average, log  # noqa: E402
from benchmarks.scale import _message  # noqa: E402
from benchmarks.server import PASSWORD, write_mailbox_file  # noqa: E402
from futurnal.demo.dovecot import DovecotOptions, DovecotServer  # noqa: E402
from tests.servers.postgres import PostgresServer  # noqa: E402

TABLES = ("elements", "changes", "documents", "audit_log", "mailbox_leases")
PER = 10_000  # elements: the unit of the size figures
TARGET_TAKEOVER_SECONDS = 30.0  # issue 18: "within the lease time (default at most 30 s)"
DEFAULT_LEASE_SECONDS = 20.0


@dataclass
class Proc:
    """One ``run`` process: its peak RSS (VmHWM, read before it stopped) and exit status."""

    name: str
    pid: int = 0
    mailboxes: int = 0  # leases held when every message was stored
    peak_rss_mb: float = 0.0
    killed: bool = False
    exit_status: int | None = None


@dataclass
class Setup:
    """What one setup measured (seconds from the start of the processes unless named otherwise)."""

    label: str
    processes: int
    store: str  # "sqlite" or "postgresql"
    register_seconds: float = 0.0
    leased_seconds: float = 0.0  # every mailbox held by a live lease
    stored_seconds: float = 0.0  # every message stored
    synced_seconds: float = 0.0  # both
    balanced_seconds: float = 0.0  # max - min leases per process <= 1
    leases_min: int = 0
    leases_max: int = 0
    lease_seconds: float = 0.0
    killed_mailboxes: int = 0
    append_seconds: float = 0.0  # appending one message to each of them, after the kill
    takeover_seconds: float = 0.0  # kill -> the survivors hold all its mailboxes
    after_kill_stored_seconds: float = 0.0  # kill -> every appended message stored
    elements: int = 0
    connections: int = 0  # the database's client connections, all processes, once synced
    rows: dict[str, int] = field(default_factory=dict)
    table_bytes: dict[str, int] = field(default_factory=dict)
    database_bytes: int = 0
    sqlite_bytes: int = 0  # elements.sqlite + -wal, once synced
    data_dir_bytes: int = 0  # every data directory together, at the end
    procs: list[Proc] = field(default_factory=list)
    load_average: str = ""  # the machine's, 1/5/15 minutes, once synced: other work competes for its CPUs
    error: str = ""

    def per_10k(self, size: int) -> float:
        return size * PER / self.elements if self.elements else 0.0


class DurablePostgres(PostgresServer):
    """The tests' throwaway cluster with fsync and full-page writes on, as a deployment runs it."""

    def _launch(self, argv: Sequence[str], log: Path, *, pipe_stdout: bool = False,
                env: Mapping[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen[Any]:
        durable = {"fsync=off": "fsync=on", "full_page_writes=off": "full_page_writes=on"}
        return super()._launch([durable.get(arg, arg) for arg in argv], log, pipe_stdout=pipe_stdout,
                               env=env, cwd=cwd)


def _users(count: int) -> list[str]:
    return [f"u{number:04d}" for number in range(1, count + 1)]


def _dir_bytes(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())


class Running:
    """A ``run`` process started by the benchmark, its output in a log file."""

    def __init__(self, name: str, home: FuturnalHome, log_path: Path) -> None:
        self.name, self.log_path = name, log_path
        self._out: IO[bytes] = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([home.cli, "run"], env=home.env, stdin=subprocess.DEVNULL,
                                        stdout=self._out, stderr=subprocess.STDOUT)
        self.result = Proc(name, self.process.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def note_peak(self) -> None:
        if self.alive():
            self.result.peak_rss_mb = process_status(self.process.pid, "VmHWM") / 1e6

    def kill(self) -> None:
        self.note_peak()
        self.process.kill()
        self.process.wait()
        self.result.killed = True
        self.result.exit_status = self.process.returncode

    def stop(self, timeout: float = 120) -> None:
        if self.alive():
            self.note_peak()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.result.exit_status = self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                self.result.exit_status = None  # did not stop: reported as such
        elif self.result.exit_status is None and not self.result.killed:
            self.result.exit_status = self.process.returncode
        self._out.close()

    def tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _wait(condition: Callable[[], bool], what: str, timeout: float, runs: list[Running]) -> float:
    """Poll ``condition`` every 0.2 s; seconds it took. Fails when a process exits or time runs out."""
    started = time.perf_counter()
    while not condition():
        for run in runs:
            if not run.alive():
                raise RuntimeError(f"{run.name} exited with {run.process.returncode} while waiting until {what}; "
                                   f"its log ({run.log_path}) ends:\n{run.tail()}")
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"not within {timeout:g} s: {what}")
        time.sleep(0.2)
    return time.perf_counter() - started


class SharedBench:
    """One Dovecot with ``count`` users of ``per_mailbox`` messages, and the records to register them."""

    def __init__(self, work: Path, count: int, per_mailbox: int, lease_seconds: float | None) -> None:
        self.work, self.count, self.per_mailbox = work, count, per_mailbox
        self.lease_seconds = lease_seconds  # None: the service's default
        self.users = _users(count)
        # Each process holds a fetch connection per mailbox it runs, plus the appends and a margin.
        self.server = DovecotServer(work / "dovecot", DovecotOptions(max_connections=count * 4 + 50))
        self.records = work / "mailboxes.jsonl"
        self.appended = 0  # messages appended by earlier setups: on the server for the next ones too
        self.cli = cli_path()

    def populate(self) -> None:
        started = time.perf_counter()
        for user in self.users:
            self.server.add_user(user, PASSWORD)
            for number in range(1, self.per_mailbox + 1):
                self.server.deliver(user, _message(user, "INBOX", number), folder="INBOX")
        log(f"  {self.count:,} users x {self.per_mailbox} messages delivered ({time.perf_counter() - started:.1f} s)")
        self.server.start()
        # One sync at start (or takeover), none while measured.
        write_mailbox_file(self.records, self.server, self.users, folders="INBOX", schedule="@interval 3600")

    @property
    def expected(self) -> int:
        """The messages on the server now."""
        return self.count * self.per_mailbox + self.appended

    def homes(self, root: Path, processes: int, store_url: str) -> list[FuturnalHome]:
        """A data directory per process; one keyring and XDG configuration for them all (one host)."""
        homes = []
        for number in range(processes):
            home = FuturnalHome(root / f"process-{number + 1}", self.cli)
            home.env.update({"XDG_DATA_HOME": str(root / "host" / "xdg-data"),
                             "XDG_CONFIG_HOME": str(root / "host" / "xdg-config")})
            if store_url:
                home.env["FUTURNAL_STORE_URL"] = store_url
                if self.lease_seconds is not None:
                    home.env["FUTURNAL_STORE_LEASE_SECONDS"] = f"{self.lease_seconds:g}"
            home.data_dir.mkdir(parents=True, mode=0o700)
            homes.append(home)
        return homes

    def register(self, home: FuturnalHome) -> float:
        started = time.perf_counter()
        home.run("imap", "import", str(self.records), "--consent", "--json",
                 timeout=600 + self.count).check("futurnal-actors imap import")
        return time.perf_counter() - started

    def append(self, users: Sequence[str], tag: str) -> None:
        """One new message in each user's INBOX, a login each."""
        for user in users:
            client = imapclient.IMAPClient(self.server.host, port=self.server.imap_port, ssl=False, timeout=30)
            try:
                client.login(user, PASSWORD)
                client.append("INBOX", _message(user, tag, 1))
                self.appended += 1
                client.logout()
            finally:
                try:
                    client.shutdown()
                except OSError:
                    pass


def measure_sqlite(bench: SharedBench, timeout: float) -> Setup:
    result = Setup("1 process, SQLite", 1, "sqlite")
    root = bench.work / "sqlite"
    (home,) = bench.homes(root, 1, "")
    log("1 process on SQLite: imap import ...")
    result.register_seconds = bench.register(home)
    log(f"  registered in {result.register_seconds:.1f} s; starting run")
    run = Running("sqlite", home, root / "run.log")
    result.procs.append(run.result)
    try:
        started = time.perf_counter()
        _wait(lambda: home.stored_elements() >= bench.expected, "every message is stored", timeout, [run])
        result.stored_seconds = result.synced_seconds = time.perf_counter() - started
        result.elements = home.stored_elements()
        result.load_average = load_average()
        result.sqlite_bytes = sum(path.stat().st_size for path in
                                  (home.data_dir / "elements.sqlite", home.data_dir / "elements.sqlite-wal")
                                  if path.exists())
        run.result.mailboxes = bench.count
        log(f"  every message stored after {result.stored_seconds:.1f} s ({result.elements:,} elements)")
    finally:
        run.stop()
    result.data_dir_bytes = _dir_bytes(home.data_dir)
    if result.elements != bench.expected:
        result.error = f"{result.elements:,} elements stored, {bench.expected:,} expected"
    return result


class Database:
    """The benchmark's own reads of the shared database."""

    def __init__(self, url: str) -> None:
        import psycopg

        self._db = psycopg.connect(url, autocommit=True)

    def close(self) -> None:
        self._db.close()

    def owners(self) -> dict[int, set[str]]:
        """Live lease holders by pid: the mailboxes each holds."""
        rows = self._db.execute("SELECT p.pid, l.mailbox FROM mailbox_leases AS l JOIN processes AS p"
                                " ON p.id = l.owner WHERE l.expires_at > now()").fetchall()
        owners: dict[int, set[str]] = {}
        for pid, mailbox in rows:
            owners.setdefault(int(pid), set()).add(str(mailbox))
        return owners

    def count(self, table: str = "elements") -> int:
        row = self._db.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 - our own names
        return int(row[0]) if row else 0

    def connections(self) -> int:
        row = self._db.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                               " AND pid <> pg_backend_pid()").fetchone()
        return int(row[0]) if row else 0

    def sizes(self) -> tuple[dict[str, int], int]:
        tables = {table: int(self._db.execute("SELECT pg_total_relation_size(%s::regclass)",
                                              (table,)).fetchone()[0])  # type: ignore[index]
                  for table in TABLES}
        row = self._db.execute("SELECT pg_database_size(current_database())").fetchone()
        return tables, int(row[0]) if row else 0


def measure_shared(bench: SharedBench, pg: PostgresServer, processes: int, timeout: float) -> Setup:
    result = Setup(f"{processes} processes, PostgreSQL", processes, "postgresql")
    result.lease_seconds = bench.lease_seconds or DEFAULT_LEASE_SECONDS
    url = pg.new_database()
    root = bench.work / f"shared-{processes}"
    homes = bench.homes(root, processes, url)
    log(f"{processes} processes on PostgreSQL: imap import ...")
    result.register_seconds = bench.register(homes[0])
    log(f"  registered in {result.register_seconds:.1f} s; starting {processes} run processes")
    db = Database(url)
    runs: list[Running] = []
    try:
        started = time.perf_counter()
        runs = [Running(f"process-{n + 1}", home, root / f"run-{n + 1}.log") for n, home in enumerate(homes)]
        result.procs = [run.result for run in runs]
        everyone = set(bench.users)
        leased_at: list[float] = []
        stored_at: list[float] = []
        balanced_at: list[float] = []

        def even() -> bool:
            owners = db.owners()
            held = [len(owners.get(run.process.pid, set())) for run in runs]
            return max(held) - min(held) <= 1 and set().union(*owners.values()) >= everyone

        def synced() -> bool:
            now = time.perf_counter() - started
            if not leased_at and set().union(*db.owners().values()) >= everyone:
                leased_at.append(now)
            if leased_at and not balanced_at and even():
                balanced_at.append(now)
            if not stored_at and db.count() >= bench.expected:
                stored_at.append(now)
            return bool(leased_at and stored_at)

        _wait(synced, "every mailbox is leased and every message stored", timeout, runs)
        result.leased_seconds, result.stored_seconds = leased_at[0], stored_at[0]
        result.synced_seconds = time.perf_counter() - started
        result.connections = db.connections()
        result.load_average = load_average()
        owners = db.owners()
        for run in runs:
            run.result.mailboxes = len(owners.get(run.process.pid, set()))
        log(f"  every mailbox leased after {result.leased_seconds:.1f} s, every message stored after "
            f"{result.stored_seconds:.1f} s; leases per process: {[run.result.mailboxes for run in runs]}")

        if not balanced_at:
            _wait(even, "the leases are shared out evenly", 4 * result.lease_seconds + 60, runs)
            balanced_at.append(time.perf_counter() - started)
        result.balanced_seconds = balanced_at[0]
        owners = db.owners()
        held = [len(owners.get(run.process.pid, set())) for run in runs]
        result.leases_min, result.leases_max = min(held), max(held)
        log(f"  balanced after {result.balanced_seconds:.1f} s: {held}")

        victim = runs[-1]
        orphans = sorted(owners[victim.process.pid])
        survivors = [run for run in runs if run is not victim]
        result.killed_mailboxes = len(orphans)
        log(f"  kill -9 {victim.name} (pid {victim.process.pid}, {len(orphans)} mailboxes); "
            "appending one message to each of them")
        after = bench.expected + len(orphans)
        killed = time.perf_counter()
        victim.kill()
        bench.append(orphans, f"after-kill-{processes}")
        result.append_seconds = time.perf_counter() - killed
        taken: list[float] = []

        def recovered() -> bool:
            now = time.perf_counter() - killed
            if not taken:
                live = db.owners()
                if set(orphans) <= set().union(*(live.get(run.process.pid, set()) for run in survivors)):
                    taken.append(now)
            return bool(taken) and db.count() >= after

        _wait(recovered, "the killed process's mailboxes are taken over and the new mail stored",
              3 * result.lease_seconds + timeout, survivors)
        result.takeover_seconds = taken[0]
        result.after_kill_stored_seconds = time.perf_counter() - killed
        log(f"  taken over {result.takeover_seconds:.1f} s after the kill (appends took {result.append_seconds:.1f} s);"
            f" the new mail stored after {result.after_kill_stored_seconds:.1f} s")
        for run in survivors:
            run.stop()
        result.elements = db.count()
        result.rows = {table: db.count(table) for table in TABLES}
        result.table_bytes, result.database_bytes = db.sizes()
    finally:
        for run in runs:
            run.stop()
        db.close()
    result.data_dir_bytes = sum(_dir_bytes(home.data_dir) for home in homes)
    if result.elements != after:
        result.error = f"{result.elements:,} elements stored, {after:,} expected"
    pg.drop_database(url)
    return result


def measure(count: int, per_mailbox: int, counts: list[int], lease_seconds: float | None,
            timeout: float) -> list[Setup]:
    work = Path(tempfile.mkdtemp(prefix="futurnal-shared-", dir="/tmp"))
    work.chmod(0o755)  # Dovecot's unprivileged processes traverse it
    bench = SharedBench(work, count, per_mailbox, lease_seconds)
    pg: PostgresServer | None = None
    results: list[Setup] = []
    try:
        log(f"{count:,} mailboxes x {per_mailbox} messages: populating Dovecot ...")
        bench.populate()
        results.append(measure_sqlite(bench, timeout))
        pg = DurablePostgres()
        pg.start()
        log(f"PostgreSQL on port {pg.port} (fsync on)")
        for processes in counts:
            results.append(measure_shared(bench, pg, processes, timeout))
        return results
    finally:
        if pg is not None:
            pg.remove()
        bench.server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _mb(size: float) -> str:
    return f"{size / 1e6:.1f} MB"


def report(setups: list[Setup], count: int, per_mailbox: int) -> None:
    def row(label: str, cells: list[str], target: str = "") -> None:
        print(f"  {label:<46}" + "".join(f"{cell:>26}" for cell in cells) + (f"   {target}" if target else ""))

    shared = [s for s in setups if s.store == "postgresql"]
    print(f"{count:,} mailboxes x {per_mailbox} messages ({count * per_mailbox:,}), one host, "
          f"{os.cpu_count()} CPUs, load average {load_average()}")
    row("", [s.label for s in setups])
    row("register (imap import)", [f"{s.register_seconds:.1f} s" for s in setups])
    row("start -> every mailbox leased", ["-" if s.store == "sqlite" else f"{s.leased_seconds:.1f} s" for s in setups])
    row("start -> every message stored", [f"{s.stored_seconds:.1f} s" for s in setups])
    row("start -> leases even (max - min <= 1)",
        ["-" if s.store == "sqlite" else f"{s.balanced_seconds:.1f} s" for s in setups])
    row("mailboxes per process, min / max",
        [f"{count}" if s.store == "sqlite" else f"{s.leases_min} / {s.leases_max}" for s in setups])
    row("database connections, all processes", ["-" if s.store == "sqlite" else str(s.connections) for s in setups])
    row("lease", ["-" if s.store == "sqlite" else f"{s.lease_seconds:g} s" for s in setups])
    row("kill -9 of one process: its mailboxes", ["-" if s.store == "sqlite" else str(s.killed_mailboxes)
                                                  for s in setups])
    row("  kill -> all taken over", ["-" if s.store == "sqlite" else
                                     f"{s.takeover_seconds:.1f} s ({'PASS' if s.takeover_seconds < TARGET_TAKEOVER_SECONDS else 'FAIL'})"  # noqa: E501
                                     for s in setups], f"< {TARGET_TAKEOVER_SECONDS:.0f} s")
    row("  kill -> mail appended at the kill stored", ["-" if s.store == "sqlite" else
                                                       f"{s.after_kill_stored_seconds:.1f} s" for s in setups])
    row("  (appending it took)", ["-" if s.store == "sqlite" else f"{s.append_seconds:.1f} s" for s in setups])
    row("peak RSS per process", [", ".join(f"{p.peak_rss_mb:.0f}" for p in s.procs) + " MB" for s in setups])
    row("exit status after SIGTERM", [", ".join("killed" if p.killed else str(p.exit_status) for p in s.procs)
                                      for s in setups])
    row("elements", [f"{s.elements:,}" for s in setups])
    row("load average once synced", [s.load_average for s in setups])
    print(f"  per {PER:,} elements:")
    for table in TABLES:
        row(f"  {table}: rows, size", ["-" if s.store == "sqlite" else
                                        f"{s.per_10k(s.rows.get(table, 0)):,.0f}, {_mb(s.per_10k(s.table_bytes.get(table, 0)))}"  # noqa: E501
                                        for s in setups])
    row("  whole store (database / elements.sqlite+wal)",
        [_mb(s.per_10k(s.sqlite_bytes if s.store == "sqlite" else s.database_bytes)) for s in setups])
    row("  data directories, all processes", [_mb(s.per_10k(s.data_dir_bytes)) for s in setups])
    for s in setups:
        if s.error:
            print(f"  {s.label}: {s.error}")
    if shared:
        print("  PostgreSQL with fsync on; shared setups: one database each, every process a data directory of its own")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bin/benchmark-shared", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mailboxes", type=int, default=200, help="mailboxes on the server (default 200)")
    parser.add_argument("--messages", type=int, default=50, help="messages in each mailbox's INBOX (default 50)")
    parser.add_argument("--processes", default="2,4",
                        help="comma-separated process counts sharing PostgreSQL, each on a fresh database (default 2,4)")
    parser.add_argument("--lease-seconds", type=float, default=None,
                        help=f"the processes' lease ([store] lease_seconds; default the service's, "
                             f"{DEFAULT_LEASE_SECONDS:g})")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds each setup may take to store everything (default 600)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    args = parser.parse_args(argv)
    try:
        counts = [int(n) for n in args.processes.split(",") if n.strip()]
    except ValueError:
        parser.error("--processes takes whole numbers separated by commas, e.g. 2,4")
    if not counts or min(counts) < 2 or args.mailboxes < min(counts) or args.messages < 1:
        parser.error("--processes must be at least 2 each, --mailboxes at least as many, --messages at least 1")
    if args.lease_seconds is not None and args.lease_seconds < 3:
        parser.error("--lease-seconds must be at least 3 (the service's minimum)")
    setups = measure(args.mailboxes, args.messages, counts, args.lease_seconds, args.timeout)
    if args.json:
        print(json.dumps({"mailboxes": args.mailboxes, "messages": args.messages, "cpus": os.cpu_count(),
                          "load_average": load_average(), "setups": [asdict(s) for s in setups]}, indent=2))
    else:
        report(setups, args.mailboxes, args.messages)
    return 0 if not any(s.error for s in setups) else 1


if __name__ == "__main__":
    sys.exit(main())
