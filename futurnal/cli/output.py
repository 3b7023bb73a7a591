"""How the CLI talks to people and scripts: one-line errors, JSON on request, progress on stderr."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from loguru import logger

from futurnal.logs.configure import redactor
from futurnal.logs.inert_text import visible
from futurnal.storage.json_lines import one_line

__all__ = [
    "ProgressBar", "UserError", "error_line", "for_stderr", "json_line", "one_line", "print_json", "print_table", "visible",
    "warning",
]

class UserError(Exception):
    """A failure to report as one line, without a traceback, with exit status ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def error_line(message: str, *, service: bool = False) -> str:
    """The CLI's line for an error: :func:`for_stderr`, and :func:`visible` (errors quote server answers)."""
    return f"futurnal-actors: error: {visible(for_stderr(message, service=service))}"


def for_stderr(text: str, *, service: bool = False) -> str:
    """``text`` redacted for the command's stderr. A command's is the user's own terminal, not a
    log: only secrets are redacted, so the addresses, paths and mailbox ids it names are the user's
    own. The ``service``'s (``run``) is its log: redacted like one, but with home paths and mailbox
    ids kept, so an error still names the file or the mailbox to fix."""
    return redactor.redact(text, paths=False) if service else redactor.secrets_only(text)


def warning(message: str, *, service: bool = False) -> None:
    """A warning for the user: a line on their terminal (stderr, as :func:`for_stderr`), or in the
    ``service`` (``run``) a log line."""
    if service:
        logger.warning(message)
    else:
        print(f"futurnal-actors: warning: {visible(for_stderr(message))}", file=sys.stderr)


def json_line(value: Any, *, sort_keys: bool = False) -> str:
    """``value`` as one JSON Lines record (without its newline): UTF-8 text kept as it is, but the
    characters line readers split at escaped (:func:`one_line`)."""
    return one_line(json.dumps(value, ensure_ascii=False, sort_keys=sort_keys))


def print_json(value: Any, stream: TextIO | None = None) -> None:
    json.dump(value, stream or sys.stdout, ensure_ascii=False, indent=2, sort_keys=True)
    (stream or sys.stdout).write("\n")


def print_table(rows: list[list[str]], headers: list[str], stream: TextIO | None = None) -> None:
    """A table with a header line, every cell made :func:`visible` (a line each). On a terminal it
    fits the terminal's width: the columns of words (folders, errors) wrap inside their column,
    those of single words (ids, dates, counts) are kept whole as long as they can be; elsewhere (a
    pipe, a file) every row stays one line, however wide."""
    from rich.table import Table  # here: most commands print no table
    from rich.text import Text

    out = stream or sys.stdout
    cells = [[visible(cell) for cell in row] for row in rows]
    table = Table(box=None, pad_edge=False, padding=(0, 1), show_edge=False, header_style="bold")
    for index, header in enumerate(headers):
        words = any(" " in row[index] for row in cells if index < len(row))
        table.add_column(Text(header), overflow="fold", no_wrap=not words)
    for row in cells:
        table.add_row(*map(Text, row))
    console = _console(out, unlimited=not out.isatty())
    with console.capture() as captured:
        console.print(table)
    out.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def _console(stream: TextIO, *, unlimited: bool = False, terminal: bool | None = None) -> Any:
    """A rich console writing to ``stream`` as it is: no markup, emoji or highlighting of its own;
    ``unlimited``: no width to fit (a pipe, a file); ``terminal``: whether to drive a terminal
    (None: when ``stream`` is one)."""
    from rich.console import Console

    return Console(file=stream, width=1_000_000 if unlimited else None, force_terminal=terminal, markup=False,
                   emoji=False, highlight=False, soft_wrap=False, no_color=unlimited or None)


class ProgressBar:
    """Progress on a terminal (stderr), a line per folder: the bar, done/total, messages per second
    and the time left, fitted to the terminal's width and redrawn in place; silent when stderr is
    not a terminal (logs, CI, pipes).

    The rate is the folder's messages over the time since it started (the bar's creation, or the
    end of the folder before it), shown once a second has passed: no reading from a first instant.
    """

    #: Seconds of a folder's sync before its rate (and so its time left) is shown.
    RATE_AFTER = 1.0

    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty() if enabled is None else enabled
        self._label = visible(label)
        self._clock = clock
        self._lock = threading.Lock()
        self._started = self._last_update = clock()
        self._last_draw = 0.0
        self._detail: str | None = None
        self._progress: Any = None
        self._task: Any = None
        self._counts_width = 3  # of "done/total" on the line drawn

    def update(self, done: int, total: int, detail: str = "") -> None:
        """Redraw (at most ten times a second, and at a folder's end); a new ``detail`` (the folder)
        leaves the line before it as it ended and starts a line of its own."""
        if not self._enabled:
            return
        now = self._clock()
        with self._lock:
            if self._progress is None:
                self._progress = self._start()
            if detail != self._detail or self._task is None:
                self._next_line(detail, total, now)
            self._last_update, self._counts_width = now, 2 * len(str(max(total, done))) + 1
            elapsed = now - self._started
            rate = done / elapsed if elapsed >= self.RATE_AFTER else None
            self._progress.update(self._task, completed=done, total=max(total, done), rate=_rate(rate),
                                  time=_time_left(done, total, rate, elapsed))
            if now - self._last_draw >= 0.1 or done >= total:
                self._last_draw = now
                self._progress.refresh()

    def finish(self) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = self._task = self._detail = None

    def _start(self) -> Any:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
        from rich.table import Column

        console = _console(self._stream, terminal=True)

        owner = self

        class Description(TextColumn):
            """The label and folder: as wide as they are, up to what the other columns leave of the
            terminal's width (both read at each redraw); cut with an ellipsis beyond."""

            def get_table_column(self) -> Column:
                others = _BAR_MIN + owner._counts_width + _RATE_WIDTH + _TIME_WIDTH + 4  # and a space between each
                return Column(no_wrap=True, overflow="ellipsis", max_width=max(console.width - others, 10))

        progress = Progress(
            Description("{task.description}", markup=False),
            BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=_BAR_MIN)),
            MofNCompleteColumn(table_column=Column(no_wrap=True)),
            TextColumn("{task.fields[rate]}", markup=False, justify="right",
                       table_column=Column(no_wrap=True, min_width=_RATE_WIDTH)),
            TextColumn("{task.fields[time]}", markup=False, table_column=Column(no_wrap=True, min_width=_TIME_WIDTH)),
            console=console, auto_refresh=False, expand=True, redirect_stdout=False, redirect_stderr=False,
        )
        progress.start()
        return progress

    def _next_line(self, detail: str, total: int, now: float) -> None:
        """The finished folder's line stays above; the new folder's time counts from its end."""
        if self._task is not None:
            ended = self._progress.make_tasks_table(task for task in self._progress.tasks if task.id == self._task)
            self._progress.update(self._task, visible=False)
            self._progress.print(ended)
            self._started = self._last_update
        description = f"{self._label} {visible(detail)}" if detail else self._label
        self._task = self._progress.add_task(description, total=total, rate="", time="")
        self._detail, self._last_draw = detail, now - 1  # drawn at once


#: Widths kept for the progress line's columns, so that they do not move as the figures come:
#: the bar's least, ``12,345 msg/s`` and ``took 0:00:00``.
_BAR_MIN, _RATE_WIDTH, _TIME_WIDTH = 10, 12, 12


def _rate(rate: float | None) -> str:
    return "" if rate is None else f"{rate:,.0f} msg/s"


def _time_left(done: int, total: int, rate: float | None, elapsed: float) -> str:
    """``ETA 0:01:23`` while it can be told, ``took 0:00:05`` once done."""
    if done >= total:
        return f"took {_clock_time(elapsed)}"
    if not rate:
        return ""
    return f"ETA {_clock_time((total - done) / rate)}"


def _clock_time(seconds: float) -> str:
    whole = int(seconds + 0.5)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"
