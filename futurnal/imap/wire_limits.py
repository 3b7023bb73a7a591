"""Bounds on what one IMAP connection may cost: literal size and each command's time.

imaplib reads a literal with one ``file.read(size)`` of whatever size the server announces, and
a line with one ``file.readline``; its only timeout is the socket's, per ``recv``. So a lying
server announcing ``{1000000000}`` makes the client allocate a gigabyte, and a server trickling one
byte a second keeps a command alive for ever while every ``recv`` returns in time.

:class:`WireLimits` replaces the connection's ``read`` and ``readline`` (the only two ways
imaplib takes bytes off the wire) with bounded versions:

- a literal above ``max_literal`` is drained in chunks and never kept; the caller gets an
  :class:`OversizedLiteral` in its place (an empty ``bytes`` that remembers the announced size), so
  the connection stays in step with the server and the sync can go on;
- one command keeps at most ``keep`` bytes of literals in all (one ``max_literal`` unless the
  command says otherwise): a server that answers a batch with one large literal after another,
  each under the limit, gets the ones past the budget drained like an oversized one, so the
  memory of a command does not grow with the number of literals;
- every command has a deadline: ``read_timeout`` from its start, plus the time its announced
  literals take at ``min_rate`` bytes a second (an oversized one counted as ``max_literal``, so a
  lying announcement of gigabytes does not hold the command for days). Past it, the read raises ``TimeoutError``, which
  the session reports like any read timeout.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "OversizedLiteral", "WireLimits"]

#: A message above this is not downloaded (``[sync] max_message_bytes``).
DEFAULT_MAX_MESSAGE_BYTES = 100 * 1024 * 1024

_CHUNK = 1 << 20


class OversizedLiteral(bytes):
    """Stands where a literal too large to keep was: no content, with the size the server announced.

    Its ``len()`` is that announced size, because the response parser checks every literal's
    length against its ``{n}`` marker; its content is empty.
    """

    size: int

    def __new__(cls, size: int) -> OversizedLiteral:
        made = super().__new__(cls, b"")
        made.size = size
        return made

    def __len__(self) -> int:
        return self.size


class WireLimits:
    """Installed on one imaplib connection (``imap.read`` / ``imap.readline`` are replaced)."""

    def __init__(self, imap: Any, *, max_literal: int, read_timeout: float, min_rate: float, max_line: int) -> None:
        self._imap = imap
        self.max_literal = max_literal
        self._read_timeout = read_timeout
        self._min_rate = max(min_rate, 1.0)
        self._max_line = max_line
        self._deadline: float | None = None
        #: Literals drained since the command started, as announced sizes.
        self.dropped: list[int] = []
        self._keep_left = max_literal  # bytes of literals the running command may still hold in memory
        imap.read = self.read
        imap.readline = self.readline

    def start_command(self, keep: int | None = None) -> None:
        """A new command: its deadline starts now; nothing has been dropped in it yet. It may hold
        ``keep`` bytes of literals in memory (default one ``max_literal``)."""
        self._deadline = time.monotonic() + self._read_timeout
        self.dropped = []
        self._keep_left = self.max_literal if keep is None else keep

    def end_command(self) -> None:
        self._deadline = None
        sock = getattr(self._imap, "sock", None)
        if sock is not None and sock.gettimeout() not in (self._read_timeout, 0.0):
            sock.settimeout(self._read_timeout)  # a shortened timeout must not outlive its command

    def read(self, size: int) -> bytes:
        if self._deadline is not None:  # an oversized literal is drained, but buys no more time than the limit
            self._deadline += min(size, self.max_literal) / self._min_rate
        if size > self.max_literal or (self._deadline is not None and size > self._keep_left):
            self._drain(size)
            self.dropped.append(size)
            return OversizedLiteral(size)
        if self._deadline is None:
            return self._imap.file.read(size)  # type: ignore[no-any-return]
        self._keep_left -= size
        parts: list[bytes] = []
        remaining = size
        while remaining:
            chunk = self._chunk(min(remaining, _CHUNK))
            if not chunk:
                break  # the connection ended: imaplib notices at the next line
            parts.append(chunk)
            remaining -= len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readline(self) -> bytes:
        file = self._imap.file
        parts: list[bytes] = []
        length = 0
        while True:
            self._check_deadline()
            buffered = file.peek(1)  # what is buffered, or one read from the socket
            if not buffered:
                break
            end = buffered.find(b"\n")
            take = len(buffered) if end < 0 else end + 1
            part = file.read(min(take, self._max_line + 1 - length))
            parts.append(part)
            length += len(part)
            if part.endswith(b"\n"):
                break
            if length > self._max_line:
                raise self._imap.error(f"the server sent a line of more than {self._max_line} bytes")
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _drain(self, size: int) -> None:
        remaining = size
        while remaining:
            chunk = self._chunk(min(remaining, _CHUNK))
            if not chunk:
                return
            remaining -= len(chunk)

    def _chunk(self, wanted: int) -> bytes:
        self._check_deadline()
        return self._imap.file.read1(wanted)  # type: ignore[no-any-return]

    def _check_deadline(self) -> None:
        if self._deadline is None:
            return
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the command did not finish in time")
        sock = self._imap.sock
        if left < self._read_timeout:  # no single recv may outlast the whole command
            sock.settimeout(left)
        elif sock.gettimeout() != self._read_timeout:
            sock.settimeout(self._read_timeout)
