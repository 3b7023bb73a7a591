"""A program in a pseudo-terminal, and the screen a terminal would show of its output.

:class:`Terminal` runs a command with a pty of a given size as its controlling terminal (so it
sees a terminal of that size, and Ctrl+C typed into it is SIGINT); :class:`Screen` replays what
it wrote as a terminal of that size would: lines too long for the screen wrap (and are counted),
cursor moves and erases redraw in place, lines pushed off the top are kept in order.
"""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import termios
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = ["Screen", "Terminal"]


class Screen:
    """An ``columns`` x ``rows`` terminal fed with output: what it shows, and what it had to do."""

    def __init__(self, columns: int = 80, rows: int = 24) -> None:
        self.columns, self.rows = columns, rows
        self._cells = [self._blank() for _ in range(rows)]
        self.scrolled: list[str] = []  # lines pushed off the top, oldest first
        self.row = self.col = 0
        self.wraps = 0  # how often a line was too long for the screen and went on below
        self.controls: list[str] = []  # every control sequence and control character met, in order
        self._pending_wrap = False
        self._saved = (0, 0)

    def feed(self, data: bytes | str) -> Screen:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "\x1b":
                i = self._escape(text, i + 1)
                continue
            if ch == "\r":
                self.col, self._pending_wrap = 0, False
            elif ch == "\n":  # a terminal's line discipline sends it as CR LF (onlcr)
                self.col = 0
                self._line_feed()
            elif ch == "\b":
                self.col, self._pending_wrap = max(self.col - 1, 0), False
            elif ch == "\t":
                self.col = min((self.col // 8 + 1) * 8, self.columns - 1)
            elif ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0:
                self.controls.append(repr(ch))
            else:
                self._put(ch)
            i += 1
        return self

    def lines(self) -> list[str]:
        """Every line shown, those pushed off the top first, without trailing blanks or blank lines at the end."""
        shown = [*self.scrolled, *("".join(cells).rstrip() for cells in self._cells)]
        while shown and not shown[-1]:
            shown.pop()
        return shown

    def text(self) -> str:
        return "\n".join(self.lines())

    def visible_lines(self) -> list[str]:
        """The lines on the screen now (not those pushed off the top), trailing blank lines dropped."""
        shown = ["".join(cells).rstrip() for cells in self._cells]
        while shown and not shown[-1]:
            shown.pop()
        return shown

    # -- output ---------------------------------------------------------------------------------

    def _blank(self) -> list[str]:
        return [" "] * self.columns

    def _put(self, ch: str) -> None:
        if unicodedata.combining(ch):
            return  # drawn over the character before it
        width = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if self._pending_wrap or self.col + width > self.columns:
            self.wraps += 1
            self.col = 0
            self._line_feed()
        self._cells[self.row][self.col] = ch
        if width == 2:
            self._cells[self.row][self.col + 1] = ""
        self.col += width
        if self.col >= self.columns:  # the cursor waits on the last column until the next character
            self.col, self._pending_wrap = self.columns - 1, True

    def _line_feed(self) -> None:
        self._pending_wrap = False
        if self.row < self.rows - 1:
            self.row += 1
            return
        self.scrolled.append("".join(self._cells.pop(0)).rstrip())
        self._cells.append(self._blank())

    def _escape(self, text: str, i: int) -> int:
        """The sequence after an ESC at ``i``; returns where the text goes on."""
        if i >= len(text):
            return i
        kind = text[i]
        if kind == "[":
            end = i + 1
            while end < len(text) and not "\x40" <= text[end] <= "\x7e":
                end += 1
            if end >= len(text):
                return end
            self._csi(text[i + 1:end], text[end])
            return end + 1
        if kind == "]":  # OSC: up to BEL or ST
            end = i + 1
            while end < len(text) and text[end] != "\x07" and text[end:end + 2] != "\x1b\\":
                end += 1
            self.controls.append(f"OSC {text[i + 1:end]}")
            return end + (1 if text[end:end + 1] == "\x07" else 2)
        self.controls.append(f"ESC {kind}")
        if kind == "7":
            self._saved = (self.row, self.col)
        elif kind == "8":
            self.row, self.col = self._saved
        elif kind in "()":
            return i + 2
        return i + 1

    def _csi(self, params: str, final: str) -> None:
        self.controls.append(f"CSI {params}{final}")
        numbers = [int(p) if p.isdigit() else 0 for p in params.lstrip("?").split(";")] if params else []
        n = max(numbers[0], 1) if numbers else 1
        row = self._cells[self.row]
        if final in "ABCDGHfKJXP@":
            self._pending_wrap = False
        if final == "A":
            self.row = max(self.row - n, 0)
        elif final == "B":
            self.row = min(self.row + n, self.rows - 1)
        elif final == "C":
            self.col = min(self.col + n, self.columns - 1)
        elif final == "D":
            self.col = max(self.col - n, 0)
        elif final == "G":
            self.col = min(n - 1, self.columns - 1)
        elif final in "Hf":
            self.row = min(max(numbers[0] if numbers else 1, 1) - 1, self.rows - 1)
            self.col = min(max(numbers[1] if len(numbers) > 1 else 1, 1) - 1, self.columns - 1)
        elif final == "K":
            how = numbers[0] if numbers else 0
            start, stop = {0: (self.col, self.columns), 1: (0, self.col + 1), 2: (0, self.columns)}[how]
            row[start:stop] = [" "] * (stop - start)
        elif final == "J":
            how = numbers[0] if numbers else 0
            if how == 0:
                row[self.col:] = [" "] * (self.columns - self.col)
                for below in range(self.row + 1, self.rows):
                    self._cells[below] = self._blank()
            elif how in (2, 3):
                self._cells = [self._blank() for _ in range(self.rows)]
        elif final == "X":
            stop = min(self.col + n, self.columns)
            row[self.col:stop] = [" "] * (stop - self.col)
        elif final == "P":
            del row[self.col:self.col + n]
            row.extend([" "] * (self.columns - len(row)))
        elif final == "@":
            row[self.col:self.col] = [" "] * n
            del row[self.columns:]


class Terminal:
    """``argv`` running in a ``columns`` x ``rows`` pseudo-terminal that is its controlling terminal."""

    def __init__(self, argv: Sequence[str], *, columns: int = 80, rows: int = 24,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        self.columns, self.rows = columns, rows
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        environment = {k: v for k, v in (os.environ if env is None else env).items() if k not in ("COLUMNS", "LINES")}
        environment["TERM"] = "xterm-256color"
        self.process = subprocess.Popen(list(argv), stdin=slave, stdout=slave, stderr=slave, env=environment,
                                        cwd=cwd, preexec_fn=_take_as_controlling_terminal, close_fds=True)
        os.close(slave)
        self._master = master
        self._output = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self._reader.start()

    @property
    def output(self) -> bytes:
        with self._lock:
            return bytes(self._output)

    def screen(self) -> Screen:
        return Screen(self.columns, self.rows).feed(self.output)

    def send(self, keys: str) -> None:
        os.write(self._master, keys.encode())

    def wait_for(self, condition: str | Callable[[Screen], bool], what: str = "", timeout: float = 60) -> Screen:
        """The screen once it shows ``condition`` (a text, or a test of the screen); fails with the
        screen after ``timeout`` seconds, or when the program ended without showing it."""
        test = (lambda screen: condition in screen.text()) if isinstance(condition, str) else condition
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if test(screen):
                return screen
            ended = self.process.poll() is not None
            if ended:
                self._reader.join(timeout=2)
                screen = self.screen()
                if test(screen):
                    return screen
            if ended or time.monotonic() > deadline:
                raise AssertionError(f"{what or condition!r} not shown{' (the program ended)' if ended else ''}:\n"
                                     f"{screen.text()}")
            time.sleep(0.05)

    def wait(self, timeout: float = 60) -> int:
        """The program's exit status, once it ended and its output is read."""
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        os.close(self._master)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO: every copy of the terminal's other end is closed
                return
            if not chunk:
                return
            with self._lock:
                self._output += chunk


def _take_as_controlling_terminal() -> None:
    """In the child: a session of its own, whose controlling terminal is the pty (its stdin)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
