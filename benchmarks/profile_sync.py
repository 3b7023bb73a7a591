"""Where an initial sync spends its time: cProfile across every actor thread.

The sync runs in Pykka actor threads, and ``cProfile`` only sees the thread that enabled it.
``threading.setprofile`` runs a hook first thing in every thread started afterwards; the hook
gives that thread a profiler of its own. The per-thread stats are merged at the end. cProfile
slows Python code down (roughly 1.5-2x), so read the shares, not the absolute times.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .futurnal_run import FuturnalHome

__all__ = ["profile_initial_sync"]


def profile_initial_sync(home: FuturnalHome, mailbox_id: str, out: Path, top: int = 25) -> tuple[float, str]:
    """Run one initial sync in-process under per-thread profiling.

    Returns (wall seconds under the profiler, a text report of the top functions by own time
    and by cumulative time). The raw merged stats are written to ``out`` (open with pstats).
    """
    from keyrings.alt.file import PlaintextKeyring

    from futurnal.storage.credentials import CredentialStore
    from futurnal.system import ActorSystem

    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def hook(frame: Any, event: str, arg: Any) -> None:
        profile = cProfile.Profile()
        with lock:
            profiles.append(profile)
        profile.enable()  # replaces this hook for the current thread

    backend = PlaintextKeyring()
    backend.file_path = str(home.keyring_file())  # type: ignore[misc]
    system = ActorSystem(home.data_dir, credentials=CredentialStore(backend))
    main = cProfile.Profile()
    threading.setprofile(hook)
    try:
        main.enable()
        started = time.perf_counter()
        system.start(schedule=False)
        try:
            report = system.sync(mailbox_id, timeout=600)
        finally:
            system.stop()
        wall = time.perf_counter() - started
        main.disable()
    finally:
        threading.setprofile(None)  # type: ignore[arg-type]
    if not report.ok:
        raise RuntimeError(f"profiled sync failed: {report.errors}")
    stats = pstats.Stats(main)
    for profile in profiles:
        try:
            stats.add(profile)
        except TypeError:  # a thread that never ran Python code after the hook
            continue
    stats.dump_stats(str(out))
    text = io.StringIO()
    shown = pstats.Stats(str(out), stream=text)
    shown.strip_dirs()
    text.write(f"initial sync of {report.fetched} messages, {wall:.1f} s under cProfile "
               f"({len(profiles)} thread(s) profiled besides the main one)\n")
    text.write("\n== by own time (tottime) ==\n")
    shown.sort_stats("tottime").print_stats(top)
    text.write("\n== by cumulative time ==\n")
    shown.sort_stats("cumulative").print_stats(top)
    return wall, text.getvalue()


if __name__ == "__main__":  # pragma: no cover - manual use
    sys.exit("run through bin/benchmark --profile")
