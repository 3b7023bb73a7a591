"""The benchmark's per-stage CPU counters: off unless FUTURNAL_STAGE_CPU is set, then one file per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_CODE = """
from futurnal.process import stage_cpu
stage_cpu.report_at_exit("probe")
with stage_cpu.timed("spin"):
    sum(range(3_000_000))
stage_cpu.mark("after-spin")
print(stage_cpu.enabled)
"""


def _run(env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", _CODE], env=env, capture_output=True, text=True, timeout=60,
                          check=True)
    return done.stdout.strip()


def test_counting_is_off_unless_asked_for(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FUTURNAL_STAGE_CPU"}
    assert _run(env) == "False"


def test_a_process_writes_its_stages_marks_and_rusage_when_it_ends(tmp_path: Path) -> None:
    assert _run({**os.environ, "FUTURNAL_STAGE_CPU": str(tmp_path)}) == "True"
    [written] = tmp_path.glob("probe-*.json")
    report = json.loads(written.read_text())
    assert report["role"] == "probe"
    assert 0 < report["stages"]["spin"] <= report["marks"]["after-spin"] <= report["cpu_seconds"]
