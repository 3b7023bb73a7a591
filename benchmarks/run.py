#!/usr/bin/env python3
"""Benchmark futurnal-actors against the wire and against mbsync, on one throwaway Dovecot.

Why one run, one server: disk-bound figures vary 2-3x between runs on shared machines, so a
ratio is only meaningful between rows measured side by side. Everything here (wire ceiling,
mbsync, futurnal, both mailbox sizes) is measured in the same process run, against the same
Dovecot, on the same bytes; initial syncs are repeated, interleaved, and reported as medians.

Run it through ``bin/benchmark`` (``--help`` for options). It is not part of the test suite:
it measures and reports PASS/FAIL against targets, but never tunes anything to meet them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make `benchmarks` and the checkout importable
    sys.path.insert(0, str(REPO))

from benchmarks.futurnal_run import FuturnalHome, cli_path  # noqa: E402
from benchmarks.mailbox import MailboxStats, build_mailbox, stats  # noqa: E402
from benchmarks.mbsync import Mbsync, ensure_mbsync, mbsync_version  # noqa: E402
from benchmarks.proc import machine_cpu_seconds, rss_floor  # noqa: E402
from benchmarks.progress import elapsed, load_average, log  # noqa: E402
from benchmarks.server import PASSWORD, BenchServer  # noqa: E402
from benchmarks.stages import format_breakdown, median_breakdown  # noqa: E402
from benchmarks.wire import measure_server_floor, measure_wire  # noqa: E402

RSS_LIMIT_MB = 150.0
RSS_GROWTH_ALLOWED = 0.10  # "not growing": at most +10 % from the small to the large mailbox
RESYNC_LIMIT_MS = 50.0
CPU_PER_MESSAGE_LIMIT_MS = 1.0
MB = 1e6



# --------------------------------------------------------------------------------------------
# Results


@dataclass
class Sample:
    """One measured run."""

    wall_seconds: float
    cpu_seconds: float
    max_rss_bytes: int | None = None
    bytes: int | None = None
    busy_cpus: float | None = None  # machine-wide CPUs busy during the run (see proc.machine_cpu_seconds)
    stages: dict[str, float] | None = None  # futurnal's CPU seconds per stage (benchmarks/stages.py)


@dataclass
class Row:
    """Repeated runs of one thing at one mailbox size; figures are medians over the runs."""

    name: str
    messages: int
    samples: list[Sample] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(s.wall_seconds for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu_seconds for s in self.samples)

    @property
    def rate(self) -> float:
        return self.messages / self.wall if self.wall else 0.0

    @property
    def mb_per_s(self) -> float | None:
        sizes = [s.bytes for s in self.samples if s.bytes is not None]
        return statistics.median(sizes) / MB / self.wall if sizes and self.wall else None

    @property
    def busy(self) -> float | None:
        values = [s.busy_cpus for s in self.samples if s.busy_cpus is not None]
        return statistics.median(values) if values else None

    @property
    def stages(self) -> dict[str, float] | None:
        """CPU seconds per stage, the median of each over the runs that counted them."""
        return median_breakdown([s.stages for s in self.samples if s.stages is not None])

    @property
    def peak_rss(self) -> int | None:
        """The largest peak over all runs: the conservative figure for a memory target."""
        values = [s.max_rss_bytes for s in self.samples if s.max_rss_bytes is not None]
        return max(values) if values else None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "messages": self.messages, "runs": len(self.samples),
            "median_wall_seconds": round(self.wall, 4), "messages_per_second": round(self.rate, 1),
            "mb_per_second": round(self.mb_per_s, 2) if self.mb_per_s is not None else None,
            "median_cpu_seconds": round(self.cpu, 4),
            "peak_rss_mb": round(self.peak_rss / MB, 1) if self.peak_rss else None,
            "median_busy_cpus": round(self.busy, 2) if self.busy is not None else None,
            "median_stage_cpu_seconds": ({k: round(v, 4) for k, v in stages.items()}
                                         if (stages := self.stages) is not None else None),
            "samples": [asdict(s) for s in self.samples],
        }


@dataclass
class Results:
    """Everything measured, keyed ``<what>/<size>`` with size ``small`` or ``large``."""

    sizes: dict[str, int]
    mailbox: dict[str, MailboxStats]
    environment: dict[str, str]
    rss_floor: int = 0  # the least peak RSS any measured child can show (see benchmarks/spawner.py)
    rows: dict[str, Row] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    profile: str | None = None

    def row(self, key: str, name: str, size: str) -> Row:
        if key not in self.rows:
            self.rows[key] = Row(name, self.sizes[size])
        return self.rows[key]

    def get(self, key: str) -> Row | None:
        row = self.rows.get(key)
        return row if row is not None and row.samples else None


# --------------------------------------------------------------------------------------------
# Measurement phases


def sync_timeout(messages: int) -> float:
    """Generous: 20 messages/s would still finish. A run that needs more is a failure anyway."""
    return 60.0 + messages / 20


def measure_wire_rows(bench: BenchServer, results: Results, repeat: int) -> None:
    """The ceiling, twice: imapclient as it comes, and with imaplib's debug formatting off."""
    for key, name, debug in (("wire", "wire: imapclient BODY.PEEK[] x200", True),
                             ("wire-nodebug", "wire: same, imaplib debug=0", False)):
        for size, user in (("small", "small"), ("large", "large")):
            row = results.row(f"{key}/{size}", name, size)
            for _ in range(repeat):
                machine = machine_cpu_seconds()
                result = measure_wire(bench.host, bench.port, user, PASSWORD, imaplib_debug=debug)
                busy = (machine_cpu_seconds() - machine) / result.wall_seconds
                if result.messages != results.sizes[size]:
                    raise RuntimeError(f"wire fetched {result.messages} of {results.sizes[size]} messages")
                row.samples.append(Sample(result.wall_seconds, result.cpu_seconds, None, result.bytes, busy))
            log(f"{name} {results.sizes[size]:,}: {row.rate:,.0f} msg/s, {row.mb_per_s:,.0f} MB/s "
                f"(median of {repeat})")


def measure_initial_syncs(bench: BenchServer, results: Results, args: argparse.Namespace,
                          mbsync_bin: str | None, cli: str) -> tuple[dict[str, Mbsync], dict[str, FuturnalHome]]:
    """Interleaved rounds: mbsync then futurnal, small then large, fresh empty targets each time.

    Returns the targets of the last round, which the resync phase reuses. Extra rounds are
    skipped when the time budget would be exceeded (the output says how many runs were made).
    """
    mbsyncs: dict[str, Mbsync] = {}
    homes: dict[str, FuturnalHome] = {}
    round_seconds: list[float] = []
    for number in range(1, args.repeat + 1):
        if round_seconds:
            projected = elapsed() + statistics.fmean(round_seconds) + 40
            if projected > args.budget:
                note = (f"initial syncs: {number - 1} run(s) instead of {args.repeat}: another round "
                        f"would end near {projected:.0f} s, past the {args.budget:.0f} s budget")
                results.notes.append(note)
                log(note)
                break
        round_start = time.perf_counter()
        for size, user in (("small", "small"), ("large", "large")):
            count = results.sizes[size]
            if mbsync_bin is not None:
                previous = mbsyncs.get(size)
                mbsync = Mbsync(mbsync_bin, bench.scratch(f"mbsync-{size}-{number}"), host=bench.host,
                                port=bench.port, user=user, password=PASSWORD)
                _discard(previous.workdir if previous else None)
                log(f"round {number}: mbsync initial sync of {count:,} messages ...")
                machine = machine_cpu_seconds()
                run = mbsync.sync(timeout=sync_timeout(count))
                busy = (machine_cpu_seconds() - machine) / run.child.wall_seconds
                if run.messages_in_maildir != count:
                    raise RuntimeError(f"mbsync stored {run.messages_in_maildir} of {count} messages")
                c = run.child
                results.row(f"mbsync/{size}", "mbsync initial sync", size).samples.append(
                    Sample(c.wall_seconds, c.cpu_seconds, c.max_rss_bytes, results.mailbox[size].total_bytes, busy))
                log(f"  {count / c.wall_seconds:,.0f} msg/s, {c.wall_seconds:.1f} s wall, {c.user_seconds:.1f} s user "
                    f"+ {c.system_seconds:.1f} s sys CPU, {c.max_rss_bytes / MB:.0f} MB RSS, machine busy {busy:.2f} CPUs")
                mbsyncs[size] = mbsync
            previous_home = homes.get(size)
            home = FuturnalHome(bench.scratch(f"futurnal-{size}-{number}"), cli, args.settings)
            _discard(previous_home.root if previous_home else None)
            home.add(host=bench.host, port=bench.port, user=user, password=PASSWORD, mailbox_id=user)
            log(f"round {number}: futurnal-actors imap sync of {count:,} messages ...")
            os.sync()  # flush earlier writes so this run does not pay for them
            machine = machine_cpu_seconds()
            sync = home.sync(user, timeout=sync_timeout(count), stages=True)
            busy = (machine_cpu_seconds() - machine) / sync.child.wall_seconds
            if sync.fetched != count:
                raise RuntimeError(f"futurnal fetched {sync.fetched} of {count} messages")
            c = sync.child
            results.row(f"futurnal/{size}", "futurnal-actors imap sync", size).samples.append(
                Sample(c.wall_seconds, c.cpu_seconds, c.max_rss_bytes, results.mailbox[size].total_bytes, busy,
                       sync.stages))
            log(f"  {count / c.wall_seconds:,.0f} msg/s, {c.wall_seconds:.1f} s wall, {c.user_seconds:.1f} s user "
                f"+ {c.system_seconds:.1f} s sys CPU, {c.max_rss_bytes / MB:.0f} MB RSS, machine busy {busy:.2f} CPUs")
            homes[size] = home
        round_seconds.append(time.perf_counter() - round_start)
    return mbsyncs, homes


def measure_concurrent(bench: BenchServer, results: Results, runs: int, cli: str,
                       settings: dict[str, str] | None = None) -> None:
    """Two mailboxes syncing at once: ``run`` with two registered mailboxes (both the large user's
    INBOX, under two ids), whose first syncs start together, as many at once as the scheduler's
    default ``sync.max_concurrent`` (2) allows. Timed from start to the last element stored and
    the last attachment extracted."""
    count = results.sizes["large"]
    row = results.rows.setdefault("futurnal2/large", Row("futurnal run, 2 mailboxes at once", 2 * count))
    home: FuturnalHome | None = None
    for number in range(1, runs + 1):
        _discard(home.root if home else None)
        home = FuturnalHome(bench.scratch(f"futurnal-two-{number}"), cli, settings)
        for mailbox_id in ("large-a", "large-b"):
            home.add(host=bench.host, port=bench.port, user="large", password=PASSWORD, mailbox_id=mailbox_id,
                     email=f"{mailbox_id}@bench.test")  # an address is registered once
        log(f"round {number}: futurnal-actors run, 2 mailboxes of {count:,} messages at once ...")
        os.sync()
        machine = machine_cpu_seconds()
        run = home.run_until_stored(2 * count, timeout=sync_timeout(2 * count))
        busy = (machine_cpu_seconds() - machine) / run.child.wall_seconds
        c = run.child
        row.samples.append(Sample(run.wall_seconds, c.cpu_seconds, c.max_rss_bytes,
                                  2 * results.mailbox["large"].total_bytes, busy, run.stages))
        log(f"  {2 * count / run.wall_seconds:,.0f} msg/s, {run.wall_seconds:.1f} s to the last element "
            f"({c.wall_seconds:.1f} s with start and stop), {c.cpu_seconds:.1f} s CPU, "
            f"{c.max_rss_bytes / MB:.0f} MB RSS, machine busy {busy:.2f} CPUs")
    _discard(home.root if home else None)


def _discard(path: Path | None) -> None:
    """Delete a previous round's output before the next measured run, then flush the disk."""
    if path is not None and path.exists():
        subprocess.run(["rm", "-rf", "--", str(path)], check=True, timeout=300)
    os.sync()


def measure_resyncs(bench: BenchServer, results: Results, mbsyncs: dict[str, Mbsync], homes: dict[str, FuturnalHome],
                    repeat: int) -> None:
    """No-change resyncs: nothing changed on the server since the initial sync."""
    for size in ("small", "large"):
        count = results.sizes[size]
        floor = results.row(f"server-floor/{size}", "server floor: LIST + EXAMINE", size)
        floor.samples.extend(Sample(t, 0.0) for t in measure_server_floor(bench.host, bench.port, size, PASSWORD))
        log(f"server floor (LIST + EXAMINE, as futurnal sends them) {count:,}: {floor.wall * 1000:.2f} ms")
        mbsync = mbsyncs.get(size)
        if mbsync is not None:
            row = results.row(f"mbsync-resync/{size}", "mbsync (whole process)", size)
            for _ in range(repeat):
                mbsync.settle()
                run = mbsync.sync(timeout=120)
                if run.messages_in_maildir != count:
                    raise RuntimeError("mbsync resync changed the Maildir")
                row.samples.append(Sample(run.child.wall_seconds, run.child.cpu_seconds, run.child.max_rss_bytes))
            log(f"mbsync no-change resync {count:,}: {row.wall * 1000:.0f} ms")
        home = homes[size]
        row = results.row(f"futurnal-resync/{size}", "futurnal imap sync (whole process)", size)
        for _ in range(repeat):
            sync = home.sync(size, timeout=120)
            if sync.fetched != 0:
                raise RuntimeError(f"futurnal no-change resync fetched {sync.fetched} messages")
            row.samples.append(Sample(sync.child.wall_seconds, sync.child.cpu_seconds, sync.child.max_rss_bytes))
        log(f"futurnal imap sync no-change resync {count:,}: {row.wall * 1000:.0f} ms")
        row = results.row(f"futurnal-floor/{size}", "futurnal imap list (start-up floor)", size)
        for _ in range(repeat):
            child = home.startup_floor()
            row.samples.append(Sample(child.wall_seconds, child.cpu_seconds, child.max_rss_bytes))
        inproc = home.inprocess_resync(size, repeats=10)
        results.row(f"inproc-first/{size}", "futurnal system.sync, 1st after start", size).samples.append(
            Sample(inproc.first, 0.0))
        steady = results.row(f"inproc-steady/{size}", "futurnal system.sync, steady state", size)
        steady.samples.extend(Sample(t, 0.0) for t in inproc.steady)
        log(f"futurnal in-process no-change sync {count:,}: first {inproc.first * 1000:.1f} ms, "
            f"then median {inproc.steady_median * 1000:.2f} ms over {len(inproc.steady)}")


def run_profile(bench: BenchServer, results: Results, cli: str, out: Path) -> None:
    from benchmarks.profile_sync import profile_initial_sync

    home = FuturnalHome(bench.scratch("futurnal-profile"), cli)
    home.add(host=bench.host, port=bench.port, user="small", password=PASSWORD, mailbox_id="small")
    log(f"profiling an in-process initial sync of {results.sizes['small']:,} messages (cProfile, all threads) ...")
    wall, text = profile_initial_sync(home, "small", out.with_suffix(".prof"))
    out.write_text(text, encoding="utf-8")
    results.profile = text
    log(f"  {wall:.1f} s under the profiler; report in {out}, raw stats in {out.with_suffix('.prof')}")


# --------------------------------------------------------------------------------------------
# Report


def _fmt(value: float | None, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def _size(value: float) -> str:
    return f"{value / MB:.1f} MB" if value >= MB else f"{value / 1e3:.0f} KB"


def _times(a: Row | None, b: Row | None, spec: str) -> str:
    """Throughput of ``a`` over that of ``b``, e.g. ``0.17x``; ``n/a`` when one was not measured."""
    return f"{a.rate / b.rate:{spec}}x" if a and b and b.rate else "n/a"


def _rss_cell(peak: int | None, floor: int) -> str:
    if not peak:
        return "-"
    if peak <= floor * 1.05:
        return f"<={floor / MB:.0f} MB"
    return f"{peak / MB:.0f} MB"


def targets(results: Results) -> list[dict[str, Any]]:
    """The three targets, each PASS, FAIL or SKIP with the figures behind it."""
    checks: list[dict[str, Any]] = []
    fut_l, mb_l = results.get("futurnal/large"), results.get("mbsync/large")
    large = results.sizes["large"]
    if fut_l and mb_l:
        checks.append({"target": f"initial-sync throughput >= mbsync's ({large:,} messages, same run)",
                       "status": "PASS" if fut_l.rate >= mb_l.rate else "FAIL",
                       "detail": f"futurnal {fut_l.rate:,.0f} msg/s vs mbsync {mb_l.rate:,.0f} msg/s "
                                 f"({fut_l.rate / mb_l.rate:.2f}x)"})
    else:
        checks.append({"target": "initial-sync throughput >= mbsync's", "status": "SKIP",
                       "detail": "mbsync was not measured"})
    fut_s = results.get("futurnal/small")
    if fut_l and fut_s and fut_l.peak_rss and fut_s.peak_rss:
        peak = max(fut_l.peak_rss, fut_s.peak_rss) / MB
        checks.append({"target": f"peak RSS < {RSS_LIMIT_MB:.0f} MB (futurnal initial sync, worst run)",
                       "status": "PASS" if peak < RSS_LIMIT_MB else "FAIL", "detail": f"{peak:.1f} MB"})
        small_mb, large_mb = fut_s.peak_rss / MB, fut_l.peak_rss / MB
        growth = large_mb / small_mb - 1

        def spread(row: Row) -> str:
            values = sorted(s.max_rss_bytes / MB for s in row.samples if s.max_rss_bytes)
            return f"{values[0]:.0f}-{values[-1]:.0f}" if len(values) > 1 else f"{values[0]:.0f}"

        checks.append({"target": f"peak RSS not growing from {results.sizes['small']:,} to {large:,} messages "
                                 f"(worst runs; allowed: +{RSS_GROWTH_ALLOWED:.0%})",
                       "status": "PASS" if growth <= RSS_GROWTH_ALLOWED else "FAIL",
                       "detail": f"{small_mb:.1f} MB -> {large_mb:.1f} MB ({growth:+.1%}); all runs: "
                                 f"{spread(fut_s)} MB vs {spread(fut_l)} MB"})
    if fut_l:
        per_message = fut_l.cpu / fut_l.messages * 1000
        checks.append({"target": f"CPU per message <= {CPU_PER_MESSAGE_LIMIT_MS:.1f} ms, all of futurnal's processes "
                                 f"({large:,} messages)",
                       "status": "PASS" if per_message <= CPU_PER_MESSAGE_LIMIT_MS else "FAIL",
                       "detail": f"{per_message:.2f} ms (median CPU {fut_l.cpu:.1f} s, wait4 of the whole tree)"})
    steady, first = results.get("inproc-steady/large"), results.get("inproc-first/large")
    if steady and first:
        checks.append({"target": f"no-change resync of {large:,} messages < {RESYNC_LIMIT_MS:.0f} ms of sync work",
                       "status": "PASS" if steady.wall * 1000 < RESYNC_LIMIT_MS else "FAIL",
                       "detail": f"{steady.wall * 1000:.1f} ms steady state (median of {len(steady.samples)}); "
                                 f"{first.wall * 1000:.1f} ms for the first sync after start, which also "
                                 f"connects and logs in"})
    return checks


def print_report(results: Results) -> None:
    small, large = results.sizes["small"], results.sizes["large"]
    env = results.environment
    big = results.mailbox["large"]
    out: list[str] = []
    out.append(f"futurnal-actors benchmark, {env['when']}, {env['cpus']} CPUs, {env['python']}, "
               f"Dovecot {env['dovecot']}, {env['mbsync']}")
    out.append("All rows: the same Dovecot on 127.0.0.1, plain IMAP (LOGIN, no TLS), folder INBOX. "
               f"Load average at start {env['load_at_start']}, at end {env.get('load_at_end', '?')}.")
    out.append(f"Mailbox: {big.count:,} messages, {big.total_bytes / MB:,.1f} MB (mean {big.mean_bytes / 1e3:.1f} KB, "
               f"median {big.median_bytes / 1e3:.1f} KB, p90 {big.p90_bytes / 1e3:.1f} KB, max "
               f"{_size(big.max_bytes)}); {big.html:,} with HTML, {big.with_attachments:,} with attachments, "
               f"{big.mb_sized} over 1 MB, {big.malformed} malformed.")
    sm = results.mailbox["small"]
    out.append(f"The {small:,} rows: a second user on the same server holding the first {small:,} of the same "
               f"messages ({sm.total_bytes / MB:,.1f} MB, {sm.mb_sized} over 1 MB, largest "
               f"{_size(sm.max_bytes)}).")
    out.append("Initial syncs start from an empty target each run; figures are medians over runs "
               "(interleaved mbsync/futurnal); peak RSS is the worst run.")
    out.append("")
    header = f"{'INITIAL SYNC':<38} {'msgs':>7} {'runs':>4} {'wall s':>7} {'(min-max)':>13} {'msg/s':>7} " \
             f"{'MB/s':>6} {'CPU s':>6} {'peak RSS':>9} {'busy':>5}"
    out.append(header)
    out.append("-" * len(header))
    for key in ("wire", "wire-nodebug", "mbsync", "futurnal", "futurnal2"):
        for size in ("small", "large"):
            row = results.get(f"{key}/{size}")
            if row is None:
                if key == "mbsync":
                    out.append(f"{'mbsync initial sync':<38} {results.sizes[size]:>7,} {'skipped':>5}")
                continue
            walls = [s.wall_seconds for s in row.samples]
            spread = f"{min(walls):.1f}-{max(walls):.1f}" if len(walls) > 1 else ""
            rss = _rss_cell(row.peak_rss, results.rss_floor)
            out.append(f"{row.name:<38} {row.messages:>7,} {len(row.samples):>4} {row.wall:>7.2f} {spread:>13} "
                       f"{row.rate:>7,.0f} {_fmt(row.mb_per_s, '6.1f'):>6} {row.cpu:>6.2f} {rss:>9} "
                       f"{_fmt(row.busy, '5.2f'):>5}")
    out.append("  wire CPU is the client process only; mbsync/futurnal CPU is user+sys of the child, and peak RSS "
               "its ru_maxrss (os.wait4);")
    out.append("  busy = CPUs in use machine-wide during the run (median; 2 CPUs here): ~1 plus Dovecot's share "
               "is the run alone, more means other work competed.")
    out.append(f"  children are forked from a small helper, so no RSS below {results.rss_floor / MB:.1f} MB can show "
               "(shown as <=); figures above it are exact.")
    if results.get("futurnal2/large"):
        out.append(f"  2 mailboxes at once: `run` with two registered mailboxes ({large:,} messages each), first syncs "
                   "started together (sync.max_concurrent = 2); wall to the last element stored and extracted, CPU "
                   "and RSS of the whole run, stop included.")
    out.append("")
    columns = [(f"1 mailbox, {small:,}", "futurnal/small", small), (f"1 mailbox, {large:,}", "futurnal/large", large),
               (f"2 at once, 2x{large:,}", "futurnal2/large", 2 * large)]
    table = format_breakdown([(title, row.stages if (row := results.get(key)) else None, n)
                              for title, key, n in columns])
    if table:
        out.extend(table)
        out.append("  per-thread CPU (time.thread_time) counted inside each stage in every process, medians over runs; "
                   "waiting on queues, sockets and futures takes no CPU and counts nowhere;")
        out.append("  the two 'unattributed' lines are what no stage covers (service: sync bookkeeping, logging, "
                   "garbage collection, stop), so the stages add up to the total measured by wait4.")
        out.append("")
    header = f"{'NO-CHANGE RESYNC (median)':<42} {f'{small:,} msgs':>19} {f'{large:,} msgs':>19}"
    out.append(header)
    out.append(f"{'':<42} {'wall ms':>9} {'CPU ms':>9} {'wall ms':>9} {'CPU ms':>9}")
    out.append("-" * len(header))
    for key, label, has_cpu in (
        ("mbsync-resync", "mbsync (whole process)", True),
        ("futurnal-resync", "futurnal imap sync (whole process)", True),
        ("futurnal-floor", "  of which start-up: imap list (no sync)", True),
        ("inproc-first", "futurnal sync work: 1st after start", False),
        ("inproc-steady", "futurnal sync work: steady state", False),
        ("server-floor", "server floor: LIST + EXAMINE round trips", False),
    ):
        cells = []
        for size in ("small", "large"):
            row = results.get(f"{key}/{size}")
            cells.append(_fmt(row.wall * 1000 if row else None, "9.1f", "skipped".rjust(9)))
            cells.append(_fmt(row.cpu * 1000 if row and has_cpu else None, "9.1f", "-".rjust(9)))
        out.append(f"{label:<42} {' '.join(cells)}")
    out.append("  sync work = in-process `system.sync(id, timeout=60)` on a started ActorSystem; the 1st after "
               "start also opens the IMAP connection; steady = median of the next 10 on the same system.")
    out.append("  server floor = median of 10 rounds of the commands futurnal sends for a no-change sync (LIST, "
               "EXAMINE of the still-selected INBOX; QRESYNC enabled), bare imapclient: the server's share.")
    out.append("  mbsync resyncs wait for the Maildir's mtime second to pass first (else mbsync sleeps ~1 s on purpose).")
    out.append("")
    out.append("RATIOS (initial sync throughput, messages/s)")
    for size in ("small", "large"):
        fut, mbs, wire, raw = (results.get(f"{k}/{size}") for k in ("futurnal", "mbsync", "wire", "wire-nodebug"))
        parts = [f"futurnal/mbsync {_times(fut, mbs, '.2f')}",
                 f"futurnal/wire {_times(fut, wire, '.3f')} ({_times(fut, raw, '.3f')} of the debug=0 wire)",
                 f"mbsync/wire {_times(mbs, wire, '.3f')}"]
        if fut and mbs:
            parts.append(f"CPU per message: futurnal {fut.cpu / fut.messages * 1000:.2f} ms, "
                         f"mbsync {mbs.cpu / mbs.messages * 1000:.2f} ms")
        out.append(f"  {results.sizes[size]:>6,} msgs: " + ", ".join(parts))
    out.append("")
    out.append("TARGETS")
    for check in targets(results):
        out.append(f"  [{check['status']}] {check['target']}: {check['detail']}")
    for note in results.notes:
        out.append(f"note: {note}")
    print("\n".join(out))
    if results.profile:
        print("\nPROFILE (in-process initial sync under cProfile)\n" + results.profile)


def results_json(results: Results) -> dict[str, Any]:
    return {
        "environment": results.environment,
        "sizes": results.sizes,
        "rss_floor_mb": round(results.rss_floor / MB, 1),
        "mailbox": {size: asdict(s) for size, s in results.mailbox.items()},
        "rows": {key: row.to_json() for key, row in results.rows.items() if row.samples},
        "targets": targets(results),
        "notes": results.notes,
    }


# --------------------------------------------------------------------------------------------
# Main


def _environment(mbsync_bin: str | None) -> dict[str, str]:
    try:
        dovecot = subprocess.run(["dovecot", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        dovecot = "unknown"
    return {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": str(os.cpu_count()),
        "python": f"Python {platform.python_version()}",
        "dovecot": dovecot.split()[0] if dovecot else "unknown",
        "mbsync": mbsync_version(mbsync_bin) if mbsync_bin else "mbsync not available",
        "load_at_start": load_average(),
    }



def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bin/benchmark",
        description="Measure futurnal-actors' initial and no-change syncs against a bare IMAP client and "
        "mbsync, on one throwaway local Dovecot, and check the targets.",
    )
    parser.add_argument("--messages", type=int, default=10_000, help="messages in the large mailbox (default 10000)")
    parser.add_argument("--small", type=int, default=2_000,
                        help="messages in the small mailbox: the first N of the same messages (default 2000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each initial sync, median reported (default 3)")
    parser.add_argument("--budget", type=float, default=540.0,
                        help="seconds: skip further initial-sync rounds that would end after this (default 540)")
    parser.add_argument("--profile", metavar="FILE", type=Path, default=None,
                        help="also profile an in-process initial sync of the small mailbox; write the report to FILE")
    parser.add_argument("--concurrent-runs", type=int, default=1,
                        help="runs of the two-mailboxes-at-once row (2 x --messages, `run`); 0 skips it (default 1)")
    parser.add_argument("--set", dest="settings_given", metavar="SECTION.KEY=VALUE", action="append", default=[],
                        help="a setting for futurnal's config.toml (a TOML value), e.g. "
                             "--set attachments.files_per_child=1 to compare with a child per file; repeatable")
    parser.add_argument("--json", action="store_true", help="print machine-readable figures instead of the table")
    args = parser.parse_args(argv)
    args.settings = {}
    for given in args.settings_given:
        name, equals, value = given.partition("=")
        if not equals or "." not in name:
            parser.error(f"--set wants SECTION.KEY=VALUE, not {given!r}")
        args.settings[name.strip()] = value.strip()
    if args.small < 3 or args.messages <= args.small:
        parser.error("need 3 <= --small < --messages")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops Dovecot

    from futurnal.demo.dovecot import DovecotUnavailable
    from futurnal.logs.configure import configure_logging

    configure_logging("WARNING")  # the in-process ActorSystem logs through loguru
    floor = rss_floor()  # also starts the spawner while this process is still small
    cli = cli_path()
    mbsync_bin, skipped = ensure_mbsync(log)
    if skipped:
        log(skipped)
    log(f"generating {args.messages:,} messages ...")
    messages = build_mailbox(args.messages)
    sizes = {"small": args.small, "large": args.messages}
    results = Results(sizes, {"small": stats(messages[:args.small]), "large": stats(messages)},
                      _environment(mbsync_bin), rss_floor=floor)
    if skipped:
        results.notes.append(skipped)
    if args.settings:
        results.notes.append("futurnal ran with config.toml settings " +
                             ", ".join(f"{k} = {v}" for k, v in args.settings.items()))
    big = results.mailbox["large"]
    log(f"  {big.total_bytes / MB:,.0f} MB, mean {big.mean_bytes / 1e3:.1f} KB, {big.mb_sized} over 1 MB")
    try:
        bench = BenchServer(log)
    except DovecotUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with bench:
        log(f"populating Dovecot in {bench.work} ...")
        bench.populate("small", messages[:args.small])
        bench.populate("large", messages)
        del messages
        bench.start()
        log(f"Dovecot up on {bench.host}:{bench.port} (plain IMAP); both mailboxes indexed")
        measure_wire_rows(bench, results, args.repeat)
        mbsyncs, homes = measure_initial_syncs(bench, results, args, mbsync_bin, cli)
        if args.concurrent_runs > 0:
            measure_concurrent(bench, results, args.concurrent_runs, cli, args.settings)
        measure_resyncs(bench, results, mbsyncs, homes, repeat=3)
        if args.profile is not None:
            run_profile(bench, results, cli, args.profile.resolve())
        log("stopping Dovecot and removing the work directory ...")
    results.environment["load_at_end"] = load_average()
    log("done")
    if args.json:
        json.dump(results_json(results), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
