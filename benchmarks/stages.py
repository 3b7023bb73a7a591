"""Where futurnal's CPU goes during a sync, stage by stage, from the counters of every process.

The service writes them when ``FUTURNAL_STAGE_CPU`` names a directory (see
:mod:`futurnal.process.stage_cpu`): the service's process, each parser worker and each extraction
server leaves one JSON file. Each counter is the CPU time (``time.thread_time``) its threads spent
inside one stage, so waiting (for a queue, a socket, a future) counts for nothing: a hand-off costs
only the CPU of passing the message. This module adds the files up into the stages below and sets
them beside the CPU that ``wait4`` measured for the whole process tree, so what no stage covers is
shown too, never hidden.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["STAGES", "breakdown", "format_breakdown", "median_breakdown"]

#: (key, label), in the order printed; the keys of :func:`breakdown`'s result.
STAGES: tuple[tuple[str, str], ...] = (
    ("imap", "reading IMAP responses (FETCH: socket, imaplib, response parsing)"),
    ("parse", "MIME parsing (parser worker processes)"),
    ("parse_handoff", "hand-off to/from parser processes (pickle, pipes, unpickle)"),
    ("parse_worker_rest", "parser workers: interpreter start-up, imports, frames"),
    ("build", "building the element (and planning its attachments)"),
    ("json", "JSON encoding of elements"),
    ("store", "the store: SQLite rows, FTS5 index, commits"),
    ("attachments_service", "attachments in the service (queue on disk, driving children)"),
    ("extraction", "attachment extraction (fork servers with imports, children)"),
    ("actors", "hand-offs between actors (Pykka, in actor threads)"),
    ("startup", "start-up: interpreter, imports, actor system, login, SELECT"),
    ("service_rest", "unattributed, in the service process"),
    ("unreported", "unattributed: processes' exits after their counters, others"),
)


def _reports(directory: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted(directory.glob("*.json")):
        try:
            found.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return found


def breakdown(directory: Path, total_cpu: float) -> dict[str, float] | None:
    """Seconds of CPU per stage (keys of :data:`STAGES`, plus ``total`` and ``counted``), or None
    when the run left no counters (a CLI older than them)."""
    reports = _reports(directory)
    services = [r for r in reports if r["role"] == "service"]
    if not services:
        return None
    service = services[0]
    s: dict[str, float] = service["stages"]
    workers = [r for r in reports if r["role"] == "parse-worker"]
    servers = [r for r in reports if r["role"] == "extraction-server"]
    parse = sum(w["stages"].get("parse.mime", 0.0) for w in workers)
    pickle_out = sum(w["stages"].get("parse.pickle", 0.0) for w in workers)
    workers_cpu = sum(w["cpu_seconds"] for w in workers)
    extraction = sum(r["cpu_seconds"] + r["children_cpu_seconds"] for r in servers)
    json_seconds = s.get("store.json", 0.0)
    result = {
        "imap": s.get("imap.fetch", 0.0),
        "parse": parse,
        "parse_handoff": pickle_out + s.get("parse.pipes", 0.0) + s.get("parse.unpickle", 0.0),
        "parse_worker_rest": workers_cpu - parse - pickle_out,
        "build": s.get("element.build", 0.0),
        "json": json_seconds,
        "store": max(s.get("store.sink", 0.0) - json_seconds, 0.0),
        "attachments_service": s.get("attachments.queue", 0.0) + s.get("attachments.drive", 0.0),
        "extraction": extraction,
        "actors": max(s.get("actors.threads", 0.0) - s.get("actors.handlers", 0.0), 0.0),
        "startup": service["marks"].get("fetch.first", 0.0),
    }
    in_service = sum(result[k] for k in ("imap", "build", "json", "store", "attachments_service", "actors", "startup"))
    in_service += s.get("parse.pipes", 0.0) + s.get("parse.unpickle", 0.0)
    result["service_rest"] = service["cpu_seconds"] - in_service
    result["unreported"] = total_cpu - service["cpu_seconds"] - workers_cpu - extraction
    result["total"] = total_cpu
    return result


def median_breakdown(runs: Sequence[dict[str, float]]) -> dict[str, float] | None:
    """Per stage, the median over runs (so the stages need not add up to the median total exactly)."""
    if not runs:
        return None
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def format_breakdown(columns: Sequence[tuple[str, dict[str, float] | None, int]]) -> list[str]:
    """A table, one column per (title, breakdown, messages): ms of CPU per message and share."""
    shown = [(title, b, n) for title, b, n in columns if b is not None and n]
    if not shown:
        return []
    width = max(len(label) for _, label in STAGES) + 2
    lines = [f"{'CPU PER MESSAGE, BY STAGE':<{width}}" + "".join(f"{title:>22}" for title, _, _ in shown),
             f"{'':<{width}}" + "".join(f"{'ms/msg':>14}{'share':>8}" for _ in shown)]
    lines.append("-" * len(lines[0]))
    for key, label in STAGES:
        cells = "".join(f"{b[key] / n * 1000:>14.3f}{b[key] / b['total']:>8.1%}" for _, b, n in shown)
        lines.append(f"{label:<{width}}{cells}")
    lines.append("-" * len(lines[0]))
    total = "".join(f"{b['total'] / n * 1000:>14.3f}{'':>8}" for _, b, n in shown)
    lines.append(f"{'total, all processes (wait4 user+sys)':<{width}}{total}")
    return lines
