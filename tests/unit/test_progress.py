"""The progress bar of syncs and imports, as a terminal shows it: one line per folder, redrawn in
place, fitted to the terminal's width, with a rate and a time left that are never absurd."""

from __future__ import annotations

import io
import re
import sys
import textwrap

import pytest

from futurnal.cli.output import ProgressBar
from tests.terminal import Screen, Terminal


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the bar takes for the width of a stream that is no terminal."""
    monkeypatch.setenv("COLUMNS", "80")


def shown(stream: io.StringIO) -> Screen:
    return Screen(80, 24).feed(stream.getvalue())


def test_progress_is_silent_unless_enabled() -> None:
    stream = io.StringIO()
    bar = ProgressBar("sync", stream=stream)  # StringIO is not a terminal
    bar.update(5, 10, "INBOX")
    bar.finish()
    assert stream.getvalue() == ""


def test_each_folder_keeps_its_line_as_it_ended_and_the_next_starts_below() -> None:
    stream, clock = io.StringIO(), Clock()
    bar = ProgressBar("sync", stream=stream, enabled=True, clock=clock)
    clock.now = 2.0
    bar.update(10, 10, "INBOX")
    clock.now = 2.5
    bar.update(3, 3, "Archive")
    bar.finish()
    screen = shown(stream)
    assert screen.wraps == 0
    assert [re.sub(r"━+", "━", line) for line in screen.lines()] == [
        "sync INBOX ━ 10/10      5 msg/s took 0:00:02",
        "sync Archive ━ 3/3              took 0:00:01",  # half a second: too short for a rate
    ]
    assert all(len(line) == 80 for line in screen.lines())  # the bar takes what the text leaves


def test_the_rate_waits_for_a_second_of_the_folder_and_the_time_left_follows_it() -> None:
    stream, clock = io.StringIO(), Clock()
    bar = ProgressBar("sync", stream=stream, enabled=True, clock=clock)
    clock.now = 0.001
    bar.update(200, 1000, "INBOX")  # a first batch at once: no 200,000 msg/s
    assert re.search(r" 200/1000\s*$", shown(stream).lines()[-1])
    clock.now = 2.0
    bar.update(400, 1000, "INBOX")
    assert shown(stream).lines()[-1].endswith(" 400/1000    200 msg/s ETA 0:00:03")
    clock.now = 2.5
    bar.update(10, 20, "Archive")  # started when INBOX ended, half a second ago
    assert re.search(r" 10/20\s*$", shown(stream).lines()[-1])
    clock.now = 5.0
    bar.update(20, 20, "Archive")
    bar.finish()
    assert shown(stream).lines()[-1].endswith(" 20/20      7 msg/s took 0:00:03")


def test_a_long_folder_name_is_cut_to_the_width_not_wrapped() -> None:
    stream = io.StringIO()
    bar = ProgressBar("syncing alice", stream=stream, enabled=True)
    bar.update(1, 2, "Archive/" + "Projekte/" * 12 + "日本語")
    bar.finish()
    screen = shown(stream)
    assert screen.wraps == 0 and len(screen.lines()) == 1
    assert screen.lines()[0].startswith("syncing alice Archive/Projekte/") and "… " in screen.lines()[0]


DRIVER = textwrap.dedent("""
    import sys, time
    from futurnal.cli.output import ProgressBar

    bar = ProgressBar("syncing alice-example.org")  # stderr: the terminal
    for folder, total in (("INBOX", 60), ("Archive/2024/" + "Quarterly reports " * 4, 40), ("Sent", 30)):
        for done in range(0, total + 1, 2):
            bar.update(done, total, folder)
            time.sleep(0.04)
    bar.finish()
    print("synced", flush=True)
""")


def test_in_a_terminal_of_80_columns_each_folder_redraws_on_one_line_within_the_width() -> None:
    with Terminal([sys.executable, "-c", DRIVER], columns=80, rows=24) as terminal:
        assert terminal.wait() == 0
        screen = terminal.screen()
    assert screen.wraps == 0, screen.text()
    lines = screen.lines()
    assert [line.split(" ━")[0] for line in lines[:3]] == ["syncing alice-example.org INBOX",
                                                           "syncing alice-example.org Archive/20…",  # cut to fit
                                                           "syncing alice-example.org Sent"]
    assert [re.search(r" (\d+/\d+) ", line).group(1) for line in lines[:3]] == ["60/60", "40/40", "30/30"]  # type: ignore[union-attr]
    assert lines[3:] == ["synced"]  # redrawn in place: no line per redraw
    assert all(len(line) <= 80 for line in lines)
    # Every rate it showed on the way: about 50 msg/s (2 every 40 ms), never a first reading's millions.
    rates = [int(rate.replace(",", "")) for rate in re.findall(r"([\d,]+) msg/s", terminal.output.decode())]
    assert rates and max(rates) < 1000, rates
