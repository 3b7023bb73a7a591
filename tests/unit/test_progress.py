from __future__ import annotations

import io

from futurnal.cli.output import ProgressBar


def test_progress_is_silent_unless_enabled() -> None:
    stream = io.StringIO()
    bar = ProgressBar("sync", stream=stream)  # StringIO is not a terminal
    bar.update(5, 10, "INBOX")
    bar.finish()
    assert stream.getvalue() == ""


def test_each_folder_gets_its_own_line_ending_at_its_total() -> None:
    stream = io.StringIO()
    bar = ProgressBar("sync", stream=stream, enabled=True)
    bar.update(10, 10, "INBOX")
    bar.update(3, 3, "Archive")
    bar.finish()
    lines = [line.split("\r")[-1].strip() for line in stream.getvalue().split("\n") if line.strip()]
    assert len(lines) == 2
    assert "10/10" in lines[0] and lines[0].endswith("INBOX")
    assert "3/3" in lines[1] and lines[1].endswith("Archive")
