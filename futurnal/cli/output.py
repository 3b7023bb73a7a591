"""How the CLI talks to people and scripts: one-line errors, JSON on request, progress on stderr."""

from __future__ import annotations

import json
import sys
import threading
import time
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
    """Columns padded to their widest cell; every cell made :func:`visible` (one line each)."""
    out = stream or sys.stdout
    rows = [[visible(cell) for cell in row] for row in rows]
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        out.write("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip() + "\n")


class ProgressBar:
    """A one-line progress bar on a terminal; silent when stderr is not one (logs, CI, pipes)."""

    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty() if enabled is None else enabled
        self._label = label
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._detail: str | None = None

    def update(self, done: int, total: int, detail: str = "") -> None:
        """Redraw (at most ten times a second); a new ``detail`` (the folder) starts a new line."""
        if not self._enabled:
            return
        now = time.monotonic()
        with self._lock:
            if detail != self._detail:
                if self._detail is not None:
                    self._stream.write("\n")
                self._detail, self._started, self._last_draw = detail, now, 0.0
            if now - self._last_draw < 0.1 and done < total:
                return
            self._last_draw = now
            width = 30
            fraction = min(done / total, 1.0) if total else 1.0
            filled = int(width * fraction)
            rate = done / max(now - self._started, 1e-6)
            line = (
                f"\r{visible(self._label)} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                f"{rate:,.0f} msg/s {visible(detail)}"
            )
            self._stream.write(line[:120].ljust(100))
            self._stream.flush()

    def finish(self) -> None:
        if self._enabled:
            self._stream.write("\n")
            self._stream.flush()
