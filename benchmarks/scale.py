"""Hundreds of mailboxes in one ``run``: register, first sync, idle cost, new-mail latency, stop.

For each size N (default 200 and 1,000) one throwaway Dovecot gets N users, each with a few
messages in INBOX and Archive; the mailboxes are registered with one ``imap import`` and watched
(``--watch INBOX,Archive``), then one ``futurnal-actors run`` serves them all. Printed per size:

- time to register them all, and until every mailbox's first sync is stored;
- the ``run`` process idle for ``--idle-seconds``: CPU, RSS, peak RSS, threads, sockets;
- new-mail latency: probes appended to random mailboxes and folders, each timed to its element
  being readable in the store, beside a bare IDLE client's push on the same folder;
- time from SIGTERM to ``run`` exiting, and its exit status.

Dovecot runs one ``imap`` process per connection: the benchmark raises its process limits
(``DovecotOptions.max_connections``); a size this machine cannot hold is reported with the
reason rather than measured half-way. Not part of the test suite; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import imapclient

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make `benchmarks` and the checkout importable
    sys.path.insert(0, str(REPO))

from benchmarks.futurnal_run import FuturnalHome, cli_path  # noqa: E402
from benchmarks.idle_latency import BareIdle, Percentiles  # noqa: E402
from benchmarks.proc import open_sockets, process_cpu_seconds, process_status  # noqa: E402
from benchmarks.progress import log  # noqa: E402
from benchmarks.server import PASSWORD, write_mailbox_file  # noqa: E402
from futurnal.demo.dovecot import DovecotOptions, DovecotServer  # noqa: E402

FOLDERS = ("INBOX", "Archive")
TARGET_STOP_SECONDS = 10.0
TARGET_IDLE_CPU_PERCENT = 0.5
TARGET_RSS_MB = 400.0
TARGET_BEYOND_PUSH_MS = 1000.0


@dataclass
class ScaleRun:
    """What one size measured (seconds, bytes and percentages as named)."""

    mailboxes: int
    register_seconds: float = 0.0
    first_sync_seconds: float = 0.0
    settled_seconds: float = 0.0  # every watcher connected, no login waiting, no sync running
    idle_seconds: float = 0.0
    idle_cpu_percent: float = 0.0
    rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    threads: int = 0
    sockets: int = 0
    push: Percentiles | None = None
    stored: Percentiles | None = None
    beyond_push: Percentiles | None = None
    probes_missing: int = 0
    stop_seconds: float = 0.0
    exit_status: int | None = None
    status_counts: dict[str, Any] = field(default_factory=dict)
    skipped: str = ""


def _message(user: str, folder: str, number: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Sender <sender@bench.test>"
    msg["To"] = f"{user}@bench.test"
    msg["Subject"] = f"{folder} message {number} for {user}"
    msg["Message-ID"] = f"<{user}-{folder}-{number}@bench.test>"
    msg["Date"] = "Mon, 02 Mar 2026 10:00:00 +0000"
    msg.set_content(f"Body {number} of {folder} for {user}.\n" * 20)
    return msg.as_bytes()


def _users(count: int) -> list[str]:
    return [f"u{number:04d}" for number in range(1, count + 1)]


def _room(count: int) -> str:
    """Why this machine cannot hold ``count`` mailboxes, or "" when it can."""
    from resource import RLIMIT_NOFILE, getrlimit

    connections = count * (1 + len(FOLDERS))  # at most: a fetch connection and one IDLE per folder
    soft, hard = getrlimit(RLIMIT_NOFILE)
    if hard != -1 and hard < connections + 200:
        return f"the open-file limit ({hard}) is below the {connections:,} connections it takes"
    return ""


class ScaleBench:
    """One Dovecot with ``count`` users and one futurnal home serving them."""

    def __init__(self, work: Path, count: int, per_folder: int) -> None:
        self.work, self.count, self.per_folder = work, count, per_folder
        self.users = _users(count)
        self.server = DovecotServer(work / "dovecot",
                                    DovecotOptions(max_connections=count * (2 + len(FOLDERS)) + 50))
        self.home = FuturnalHome(work / "home", cli_path())

    def populate(self) -> None:
        started = time.perf_counter()
        for user in self.users:
            self.server.add_user(user, PASSWORD)
            for folder in FOLDERS:
                for number in range(1, self.per_folder + 1):
                    self.server.deliver(user, _message(user, folder, number), folder=folder)
        log(f"  {self.count:,} users x {len(FOLDERS)} folders x {self.per_folder} messages delivered "
            f"({time.perf_counter() - started:.1f} s)")
        self.server.start()

    def register(self) -> float:
        """One ``imap import`` of every mailbox; returns its wall time."""
        records = self.work / "mailboxes.jsonl"
        # The probes must be brought in by the watchers: no schedule while measured.
        write_mailbox_file(records, self.server, self.users, folders=",".join(FOLDERS), watch=",".join(FOLDERS),
                           schedule="@interval 3600")
        self.home.data_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
        started = time.perf_counter()
        self.home.run("imap", "import", str(records), "--consent", "--json",
                      timeout=600 + self.count).check("futurnal-actors imap import")
        return time.perf_counter() - started

    def stored_count(self) -> int:
        database = self.home.data_dir / "elements.sqlite"
        if not database.exists():
            return 0
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as db:
            return int(db.execute("SELECT count(*) FROM elements").fetchone()[0])

    def message_stored(self, message_id: str) -> bool:
        database = self.home.data_dir / "elements.sqlite"
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as db:
            return db.execute("SELECT 1 FROM documents WHERE doc LIKE ? LIMIT 1",
                              (f'%"message_id":"{message_id}"%',)).fetchone() is not None

    def status(self) -> dict[str, Any]:
        done = self.home.run("ctl", "status", "--json", timeout=120)
        if done.returncode != 0:
            return {"error": done.stderr.strip()[-300:]}
        try:
            return dict(json.loads(done.stdout))
        except ValueError:
            return {"error": "ctl status --json printed no JSON"}


def _settled(bench: ScaleBench, process: subprocess.Popen[bytes], deadline: float) -> dict[str, Any]:
    """Wait until ``run`` is idle: no login waiting its turn, no sync running (the catch-up sync
    each watcher asks for on connecting included), the same connections open twice in a row."""
    previous: dict[str, Any] = {}
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"run exited with {process.returncode}")
        summary = dict(bench.status().get("summary") or {})
        quiet = summary and not summary.get("logins_waiting") and not summary.get("syncing") \
            and not summary.get("waiting_to_connect")
        if quiet and summary == previous:
            time.sleep(5)  # the last replies and writes
            return summary
        previous = summary
        time.sleep(2)
    raise RuntimeError(f"run did not settle in time: {previous}")


def _probe(bench: ScaleBench, number: int, rng: random.Random, appender: imapclient.IMAPClient,
           timeout: float) -> tuple[float, float] | None:
    """Append one message to a random mailbox and folder: (server push, stored) seconds after the
    APPEND returned, or None when futurnal did not store it within ``timeout``."""
    user, folder = rng.choice(bench.users), rng.choice(FOLDERS)
    bare = BareIdle(bench.server.host, bench.server.imap_port, user=user, folder=folder)
    try:
        message_id = f"probe-{number}-{user}@bench.test"
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "Probe <probe@bench.test>", f"{user}@bench.test", f"probe {number}"
        msg["Message-ID"] = f"<{message_id}>"
        msg.set_content("probe\n")
        appender.login(user, PASSWORD)
        exists = appender.select_folder(folder)[b"EXISTS"] + 1
        appender.append(folder, msg.as_bytes())
        appended = time.perf_counter()
        appender.logout()
        pushed = bare.wait_for(exists, timeout) - appended
        deadline = appended + timeout
        while not bench.message_stored(message_id):
            if time.perf_counter() > deadline:
                return None
            time.sleep(0.005)
        return pushed, time.perf_counter() - appended
    finally:
        bare.close()


def measure(count: int, per_folder: int, idle_seconds: float, probes: int, seed: int) -> ScaleRun:
    result = ScaleRun(count)
    result.skipped = _room(count)
    if result.skipped:
        log(f"{count:,} mailboxes: skipped: {result.skipped}")
        return result
    work = Path(tempfile.mkdtemp(prefix="futurnal-scale-", dir="/tmp"))
    work.chmod(0o755)  # Dovecot's unprivileged processes traverse it
    bench = ScaleBench(work, count, per_folder)
    process: subprocess.Popen[bytes] | None = None
    try:
        log(f"{count:,} mailboxes: populating Dovecot ...")
        bench.populate()
        log(f"{count:,} mailboxes: imap import ...")
        result.register_seconds = bench.register()
        log(f"  registered in {result.register_seconds:.1f} s; starting run")
        out = open(work / "run.log", "wb")  # noqa: SIM115 - closed with the child below
        started = time.perf_counter()
        process = subprocess.Popen([bench.home.cli, "run"], env=bench.home.env, stdout=out, stderr=subprocess.STDOUT)
        expected = count * len(FOLDERS) * per_folder
        deadline = started + 600 + 2 * count
        while (stored := bench.stored_count()) < expected:
            if process.poll() is not None:
                raise RuntimeError(f"run exited with {process.returncode}: see {work / 'run.log'}")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"only {stored:,} of {expected:,} messages stored in time")
            time.sleep(0.5)
        result.first_sync_seconds = time.perf_counter() - started
        log(f"  every first sync stored after {result.first_sync_seconds:.1f} s; waiting for every watcher")
        result.status_counts = _settled(bench, process, deadline)
        result.settled_seconds = time.perf_counter() - started
        log(f"  settled after {result.settled_seconds:.1f} s: {json.dumps(result.status_counts)}")
        log(f"  idle for {idle_seconds:g} s ...")
        cpu = process_cpu_seconds(process.pid)
        time.sleep(idle_seconds)
        result.idle_seconds = idle_seconds
        result.idle_cpu_percent = 100 * (process_cpu_seconds(process.pid) - cpu) / idle_seconds
        result.rss_mb = process_status(process.pid, "VmRSS") / 1e6
        result.threads = process_status(process.pid, "Threads", unit=1)
        result.sockets = open_sockets(process.pid)

        log(f"  {probes} new-mail probes ...")
        rng = random.Random(seed)
        pushes, stores, beyond = [], [], []
        for number in range(probes):
            appender = imapclient.IMAPClient(bench.server.host, port=bench.server.imap_port, ssl=False, timeout=30)
            timed = _probe(bench, number, rng, appender, timeout=30)
            if timed is None:
                result.probes_missing += 1
                continue
            pushes.append(timed[0])
            stores.append(timed[1])
            beyond.append(max(timed[1] - timed[0], 0.0))
            time.sleep(0.2)
        if stores:
            result.push, result.stored, result.beyond_push = (Percentiles.of(pushes), Percentiles.of(stores),
                                                              Percentiles.of(beyond))
        result.peak_rss_mb = process_status(process.pid, "VmHWM") / 1e6

        log("  SIGTERM ...")
        stopping = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        try:
            result.exit_status = process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            result.exit_status = None
        result.stop_seconds = time.perf_counter() - stopping
        out.close()
        return result
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        bench.server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def report(runs: list[ScaleRun]) -> None:
    def row(label: str, cells: list[str], target: str = "") -> None:
        print(f"  {label:<44}" + "".join(f"{cell:>24}" for cell in cells) + (f"   {target}" if target else ""))

    print("hundreds of mailboxes in one `run`, watched INBOX and Archive each")
    row("mailboxes", [f"{run.mailboxes:,}" for run in runs])
    for run in runs:
        if run.skipped:
            print(f"  {run.mailboxes:,}: not measured: {run.skipped}")
    runs = [run for run in runs if not run.skipped]
    if not runs:
        return

    def ms(p: Percentiles | None) -> str:
        return f"{p.p50_ms:.0f} / {p.p95_ms:.0f} ms" if p else "-"

    row("register (imap import)", [f"{r.register_seconds:.1f} s" for r in runs])
    row("run start -> every first sync stored", [f"{r.first_sync_seconds:.1f} s" for r in runs])
    row("run start -> every watcher connected, idle", [f"{r.settled_seconds:.1f} s" for r in runs])
    row("idle CPU of run", [f"{r.idle_cpu_percent:.2f} % ({_verdict(r.idle_cpu_percent < TARGET_IDLE_CPU_PERCENT)})"
                            for r in runs], f"< {TARGET_IDLE_CPU_PERCENT} % of a CPU")
    row("RSS idle / peak", [f"{r.rss_mb:.0f} / {r.peak_rss_mb:.0f} MB ({_verdict(r.peak_rss_mb < TARGET_RSS_MB)})"
                            for r in runs], f"peak < {TARGET_RSS_MB:.0f} MB")
    row("threads, sockets", [f"{r.threads:,}, {r.sockets:,}" for r in runs])
    row("new mail: server push p50 / p95", [ms(r.push) for r in runs])
    row("new mail: stored p50 / p95", [ms(r.stored) for r in runs])
    row("new mail: beyond the push p50 / p95",
        [f"{ms(r.beyond_push)} ({_verdict(bool(r.beyond_push) and r.beyond_push.p95_ms < TARGET_BEYOND_PUSH_MS and not r.probes_missing)})"  # noqa: E501
         for r in runs], f"p95 < {TARGET_BEYOND_PUSH_MS:.0f} ms, none missing")
    row("probes missing", [str(r.probes_missing) for r in runs])
    row("SIGTERM -> exit", [f"{r.stop_seconds:.1f} s, exit {r.exit_status} "
                            f"({_verdict(r.stop_seconds < TARGET_STOP_SECONDS and r.exit_status == 0)})" for r in runs],
        f"< {TARGET_STOP_SECONDS:.0f} s, exit 0")
    for run in runs:
        if run.status_counts:
            print(f"  ctl status at {run.mailboxes:,} mailboxes, idle: {json.dumps(run.status_counts)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bin/benchmark-scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mailboxes", default="200,1000",
                        help="comma-separated sizes to measure, each on a fresh Dovecot (default 200,1000)")
    parser.add_argument("--messages", type=int, default=3, help="messages in each folder at start (default 3)")
    parser.add_argument("--idle-seconds", type=float, default=60, help="idle window (default 60)")
    parser.add_argument("--probes", type=int, default=20, help="new-mail probes per size (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the probes' choice of mailbox and folder")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    args = parser.parse_args(argv)
    try:
        sizes = [int(size) for size in args.mailboxes.split(",") if size.strip()]
    except ValueError:
        parser.error("--mailboxes takes whole numbers separated by commas, e.g. 200,1000")
    if not sizes or min(sizes) < 1 or args.messages < 1 or args.probes < 1 or args.idle_seconds <= 0:
        parser.error("sizes, --messages and --probes must be at least 1, --idle-seconds above 0")
    runs = [measure(size, args.messages, args.idle_seconds, args.probes, args.seed) for size in sizes]
    if args.json:
        print(json.dumps([asdict(run) for run in runs], indent=2))
    else:
        report(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
