"""Where the CPU goes, stage by stage: counters for ``bin/benchmark``, off unless asked for.

With ``FUTURNAL_STAGE_CPU`` set to a directory, each process that takes part (the service, its
parser workers, its extraction servers) adds up the CPU time its threads spend inside each named
stage (``time.thread_time``, so time spent waiting counts for nothing) and, when it ends, writes
``<directory>/<role>-<pid>.json``: the stages, a few marks (process CPU at named moments), and its
own ``getrusage`` totals, with those of the children it waited for. The benchmark adds the files up
beside the CPU that ``wait4`` measured for the whole tree.

Unset, the default: :func:`clock` returns 0.0 and :func:`add` returns at once; nothing is written.
The setting is read once, when this module is first imported.
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import threading
import time
from pathlib import Path
from types import TracebackType

__all__ = ["ENV", "add", "clock", "enabled", "mark", "report", "report_at_exit", "timed"]

ENV = "FUTURNAL_STAGE_CPU"
_DIRECTORY = os.environ.get(ENV) or None
enabled = _DIRECTORY is not None

_lock = threading.Lock()
_stages: dict[str, float] = {}
_marks: dict[str, float] = {}
_reported = False


def clock() -> float:
    """This thread's CPU time now, to pass to :func:`add` later; 0.0 when counting is off."""
    return time.thread_time() if enabled else 0.0


def add(stage: str, started: float) -> None:
    """Count this thread's CPU time since ``started`` (from :func:`clock`) to ``stage``."""
    if enabled:
        spent = time.thread_time() - started
        with _lock:
            _stages[stage] = _stages.get(stage, 0.0) + spent


class _Timed:
    __slots__ = ("_stage", "_started")

    def __init__(self, stage: str) -> None:
        self._stage = stage
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.thread_time()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        add(self._stage, self._started)


class _Off:
    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        return None


_OFF = _Off()


def timed(stage: str) -> _Timed | _Off:
    """``with timed("store"):`` counts the block's CPU time (this thread's) to the stage."""
    return _Timed(stage) if enabled else _OFF


def mark(name: str, latest: bool = False) -> None:
    """Remember the whole process's CPU time now under ``name``: the first time it is marked, or
    with ``latest`` the last."""
    if enabled:
        now = time.process_time()
        with _lock:
            if latest:
                _marks[name] = now
            else:
                _marks.setdefault(name, now)


def report(role: str) -> None:
    """Write this process's counters (once); a no-op when counting is off."""
    global _reported
    if _DIRECTORY is None or _reported:
        return
    _reported = True
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    with _lock:
        payload = {
            "role": role, "pid": os.getpid(), "stages": dict(_stages), "marks": dict(_marks),
            "cpu_seconds": own.ru_utime + own.ru_stime,
            "children_cpu_seconds": children.ru_utime + children.ru_stime,
        }
    try:
        target = Path(_DIRECTORY) / f"{role}-{os.getpid()}.json"
        target.write_text(json.dumps(payload), encoding="utf-8")
    except OSError:
        pass  # a benchmark's aid: never a reason to fail


def report_at_exit(role: str) -> None:
    """Write the counters when the interpreter exits normally (not on ``os._exit`` or a kill)."""
    if enabled:
        atexit.register(report, role)
