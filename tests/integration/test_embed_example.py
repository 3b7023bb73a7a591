"""examples/embed.py runs as documented, against its own throwaway Dovecot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "embed.py"


def test_the_embedding_example_syncs_into_its_own_sink(dovecot_factory: Any) -> None:
    dovecot_factory()  # skips (or fails on CI) where Dovecot is missing, like every Dovecot test
    done = subprocess.run([sys.executable, str(EXAMPLE), "--messages", "40"], capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "synced alice: 40 new, ok=True" in done.stdout
    assert "the sink holds 40 element(s); a second sync fetched 0" in done.stdout
    assert "Traceback" not in done.stderr
