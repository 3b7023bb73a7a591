#!/usr/bin/env python3
"""Real-time figures: how soon a new message is stored, and what watching costs while idle.

Latency: each sample APPENDs one message to a watched INBOX and times, from the moment the
APPEND completed, (a) the untagged EXISTS on a bare IMAP connection idling on the same folder,
which is the server's own push latency, and (b) the moment futurnal's sink returned from writing
that message's element, i.e. when it was durable. Both clocks run on the same APPEND, so the
difference per sample is what futurnal adds to the server's push; the target is a p95 of that
under 100 ms. Samples are spaced over a second apart with jitter: Dovecot 2.3 checks a mailbox
500 ms after it notices a change, so closer samples would ride on each other's checks.

Cost of watching: the real ``futurnal-actors run`` in a subprocess with N watched folders, left
idle; CPU seconds over the idle window and RSS at its end, from /proc. Twice: one IDLE connection
per folder (``watch.notify = false``), then all folders on one NOTIFY connection.

Run it through ``bin/benchmark-idle`` (``--help`` for options). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import imapclient

if TYPE_CHECKING:
    from futurnal.storage.data_dir import DataDir

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make `benchmarks` and the checkout importable
    sys.path.insert(0, str(REPO))

from benchmarks.futurnal_run import FuturnalHome, cli_path  # noqa: E402
from benchmarks.proc import open_sockets, process_cpu_seconds, process_status  # noqa: E402
from benchmarks.progress import log  # noqa: E402
from benchmarks.server import PASSWORD, BenchServer  # noqa: E402

TARGET_BEYOND_PUSH_MS = 100.0
USER = "alice"



# --------------------------------------------------------------------------------------------
# Latency


class TimingSink:
    """The default element store, noting when each message's element is durable (upsert returned)."""

    def __init__(self, data_dir: DataDir) -> None:
        from futurnal.storage.sqlite import open_element_store

        self._store = open_element_store(data_dir)
        self._lock = threading.Lock()
        self.stored: dict[str, float] = {}
        self.changed = threading.Condition(self._lock)

    def upsert_many(self, elements: list[dict[str, Any]]) -> int:
        written = self._store.upsert_many(elements)
        now = time.perf_counter()
        with self._lock:
            for element in elements:
                self.stored.setdefault(str(element.get("message_id")), now)
            self.changed.notify_all()
        return written

    def update_flags(self, updates: Any) -> int:
        return self._store.update_flags(updates)

    def mark_deleted(self, keys: Any, when: str) -> int:
        return self._store.mark_deleted(keys, when)

    def wait_for(self, message_id: str, timeout: float) -> float:
        with self._lock:
            if not self.changed.wait_for(lambda: message_id in self.stored, timeout):
                raise TimeoutError(f"{message_id} was not stored within {timeout} s")
            return self.stored[message_id]


class BareIdle:
    """A plain IMAPClient connection in IDLE, noting when each untagged EXISTS arrives."""

    def __init__(self, host: str, port: int, user: str = USER, folder: str = "INBOX") -> None:
        self._client = imapclient.IMAPClient(host, port=port, ssl=False, timeout=30)
        self._client.login(user, PASSWORD)
        self._client.select_folder(folder)
        self._client.idle()
        self._stop = threading.Event()
        self._seen: dict[int, float] = {}
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            responses = self._client.idle_check(timeout=0.5)  # returns as soon as a line arrives
            now = time.perf_counter()
            with self._changed:
                for response in responses:
                    if len(response) >= 2 and response[1] == b"EXISTS":
                        self._seen.setdefault(int(response[0]), now)
                self._changed.notify_all()

    def wait_for(self, exists: int, timeout: float) -> float:
        with self._changed:
            if not self._changed.wait_for(lambda: exists in self._seen, timeout):
                raise TimeoutError(f"no EXISTS {exists} within {timeout} s")
            return self._seen[exists]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self._client.idle_done()
            self._client.logout()
        except Exception:  # noqa: BLE001 - best effort at the end of a benchmark
            pass


@dataclass
class Percentiles:
    p50_ms: float
    p95_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Iterable[float]) -> Percentiles:
        values = sorted(s * 1000 for s in seconds)
        p95 = values[min(len(values) - 1, max(0, round(0.95 * len(values)) - 1))]
        return cls(statistics.median(values), p95, values[-1])


def _message(i: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Sender <sender@bench.test>"
    msg["To"] = f"{USER}@bench.test"
    msg["Subject"] = f"latency sample {i}"
    msg["Message-ID"] = f"<latency-{i}@bench.test>"
    msg.set_content("x" * 2000)
    return msg.as_bytes()


def measure_latency(bench: BenchServer, samples: int) -> dict[str, Any]:
    """``samples`` APPENDs, each timed to the bare EXISTS and to futurnal's durable element."""
    from keyrings.alt.file import PlaintextKeyring

    from futurnal.config import ServiceSettings
    from futurnal.imap.idle_watch import WatchEvent
    from futurnal.logs.configure import configure_logging
    from futurnal.storage.consent import SCOPES, ConsentRegistry
    from futurnal.storage.credentials import CredentialStore
    from futurnal.storage.data_dir import DataDir
    from futurnal.storage.registry import MailboxRecord, MailboxRegistry
    from futurnal.system import ActorSystem

    root = bench.scratch("latency")
    data_dir = DataDir(root / "data").ensure()
    backend = PlaintextKeyring()
    backend.file_path = str(root / "keyring.cfg")  # type: ignore[misc]
    credentials = CredentialStore(backend)
    credentials.set_secret(USER, "password", PASSWORD)
    registry = MailboxRegistry(data_dir.registry_path)
    registry.add(MailboxRecord(id=USER, email=f"{USER}@bench.test", host=bench.host, port=bench.port,
                               username=USER, security="plain", watch=("INBOX",), schedule="@manual"))
    registry.close()
    ConsentRegistry(data_dir.consent_path).grant(USER, "benchmark", SCOPES)

    configure_logging("WARNING")  # as `run` does by default: no debug lines formatted on the measured path
    sink = TimingSink(data_dir)
    system = ActorSystem(data_dir.root, credentials=credentials, sink=sink, settings=ServiceSettings())
    connected = threading.Event()
    system.subscribe(lambda e: connected.set() if isinstance(e, WatchEvent) and e.kind == "connected" else None)
    bare = BareIdle(bench.host, bench.port)
    appender = imapclient.IMAPClient(bench.host, port=bench.port, ssl=False, timeout=30)
    appender.login(USER, PASSWORD)
    push: list[float] = []
    stored: list[float] = []
    beyond: list[float] = []
    try:
        system.start(schedule=False, watch=True)
        if not connected.wait(30):
            raise RuntimeError("the folder watcher did not connect")
        for i in range(samples + 1):  # sample 0 warms up every code path and is not counted
            appender.append("INBOX", _message(i))
            appended = time.perf_counter()
            exists_at = bare.wait_for(i + 1, timeout=15)
            stored_at = sink.wait_for(f"latency-{i}@bench.test", timeout=15)
            if i:
                push.append(exists_at - appended)
                stored.append(stored_at - appended)
                beyond.append(stored_at - exists_at)
            if i % 10 == 0:
                log(f"  latency sample {i}/{samples}: push {1000 * (exists_at - appended):.0f} ms, "
                    f"stored {1000 * (stored_at - appended):.0f} ms")
            time.sleep(1.0 + random.random() / 2)  # past Dovecot's 500 ms check, never in step with it
    finally:
        appender.logout()
        bare.close()
        system.stop()
    return {
        "samples": samples,
        "server_push": asdict(Percentiles.of(push)),
        "futurnal_stored": asdict(Percentiles.of(stored)),
        "beyond_push": asdict(Percentiles.of(beyond)),
    }


# --------------------------------------------------------------------------------------------
# Cost of watching


def measure_watching(bench: BenchServer, folders: int, idle_seconds: float, notify: bool) -> dict[str, Any]:
    """``run`` watching ``folders`` folders, idle for ``idle_seconds``: its CPU and RSS.

    ``notify``: all folders on one NOTIFY connection; otherwise one IDLE connection per folder.
    """
    names = [f"Watch/{n:02d}" for n in range(1, folders + 1)]
    admin = imapclient.IMAPClient(bench.host, port=bench.port, ssl=False, timeout=30)
    admin.login(USER, PASSWORD)
    for name in names:
        if not admin.folder_exists(name):
            admin.create_folder(name)
    admin.logout()

    home = FuturnalHome(bench.scratch(f"watching-{'notify' if notify else 'idle'}"), cli_path())
    home.data_dir.mkdir(parents=True, mode=0o700)
    (home.data_dir / "config.toml").write_text(
        f"[network]\nmax_connections_per_mailbox = {folders + 5}\n[watch]\nnotify = {str(notify).lower()}\n"
    )
    home.run("imap", "add", "--email", f"{USER}@bench.test", "--host", bench.host, "--port", str(bench.port),
             "--username", USER, "--password-stdin", "--security", "plain", "--id", USER, "--folders", "Watch/*",
             "--watch", ",".join(names), "--schedule", "@manual", "--consent", stdin=PASSWORD + "\n",
             timeout=60).check("futurnal-actors imap add")
    out = open(home.root / "run.out", "w")  # noqa: SIM115 - closed below, after the child
    process = subprocess.Popen([home.cli, "run"], env=home.env, stdout=out, stderr=subprocess.STDOUT)
    try:
        # Settled: as many sockets as the mode needs (the fetcher's and the watchers'), then a
        # few seconds for each folder's catch-up sync.
        deadline = time.monotonic() + 60
        while open_sockets(process.pid) < (2 if notify else folders + 1) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(5)  # the catch-up sync each folder gets on connecting
        watching = open_sockets(process.pid)
        log(f"  {watching} sockets open; idle for {idle_seconds:g} s")
        cpu_before = process_cpu_seconds(process.pid)
        time.sleep(idle_seconds)
        cpu = process_cpu_seconds(process.pid) - cpu_before
        rss = process_status(process.pid, "VmRSS")
        threads = process_status(process.pid, "Threads", unit=1)
    finally:
        process.terminate()
        process.wait(timeout=60)
        out.close()
    return {"mode": "NOTIFY" if notify else "IDLE", "folders": folders, "connections": watching,
            "idle_seconds": idle_seconds, "cpu_seconds": cpu,
            "cpu_percent": 100 * cpu / idle_seconds, "rss_mb": rss / 1e6, "threads": threads}


# --------------------------------------------------------------------------------------------


def report(latency: dict[str, Any] | None, watching: list[dict[str, Any]] | None) -> None:
    if latency:
        rows = [("server push: APPEND -> untagged EXISTS, bare IDLE", latency["server_push"]),
                ("futurnal: APPEND -> element durably stored", latency["futurnal_stored"]),
                ("futurnal beyond the push (per sample)", latency["beyond_push"])]
        print(f"IDLE latency, {latency['samples']} samples, same APPENDs for every row")
        print(f"  {'':52} {'p50':>8} {'p95':>8} {'max':>8}")
        for name, p in rows:
            print(f"  {name:52} {p['p50_ms']:6.1f}ms {p['p95_ms']:6.1f}ms {p['max_ms']:6.1f}ms")
        p95 = latency["beyond_push"]["p95_ms"]
        verdict = "PASS" if p95 < TARGET_BEYOND_PUSH_MS else "FAIL"
        print(f"  target: p95 beyond the push < {TARGET_BEYOND_PUSH_MS:.0f} ms: {p95:.1f} ms {verdict}")
    if watching:
        first = watching[0]
        print(f"cost of watching {first['folders']} folders, `run` idle for {first['idle_seconds']:g} s")
        print(f"  {'':8} {'sockets':>8} {'threads':>8} {'CPU s':>8} {'% of a CPU':>11} {'RSS':>8}")
        for w in watching:
            print(f"  {w['mode']:8} {w['connections']:8d} {w['threads']:8d} {w['cpu_seconds']:8.2f} "
                  f"{w['cpu_percent']:10.2f}% {w['rss_mb']:6.0f}MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=50, help="latency samples (default 50)")
    parser.add_argument("--folders", type=int, default=50, help="watched folders for the cost row (default 50)")
    parser.add_argument("--idle-seconds", type=float, default=60, help="idle window of the cost row (default 60)")
    parser.add_argument("--only", choices=("latency", "watching"), help="measure one of the two")
    parser.add_argument("--json", action="store_true", help="figures as JSON on stdout")
    args = parser.parse_args(argv)
    with BenchServer(log) as bench:
        bench.server.add_user(USER, PASSWORD)
        bench.start()
        latency = watching = None
        if args.only in (None, "latency"):
            log(f"latency: {args.samples} samples")
            latency = measure_latency(bench, args.samples)
        if args.only in (None, "watching"):
            log(f"cost of watching: {args.folders} folders")
            watching = [measure_watching(bench, args.folders, args.idle_seconds, notify) for notify in (False, True)]
    if args.json:
        print(json.dumps({"latency": latency, "watching": watching}, indent=2))
    else:
        report(latency, watching)
    return 0


if __name__ == "__main__":
    sys.exit(main())
