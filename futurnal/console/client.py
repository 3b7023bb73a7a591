"""A client of the admin console: one-shot calls, and the ``subscribe`` stream."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .protocol import MAX_LINE_BYTES, ProtocolError, console_socket_path, encode_line

__all__ = ["ConsoleClient", "ConsoleError", "ConsoleUnavailable", "connect_if_running"]


class ConsoleUnavailable(ConnectionError):
    """No process is listening on that data directory's console socket."""


class ConsoleError(Exception):
    """The server answered with an error; ``code`` says which kind (``unknown-mailbox``, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ConsoleClient:
    """Talks to the process running on ``data_dir``; every call has a timeout.

    One connection per call: requests are rare and a fresh connection cannot be left in a
    half-read state by an earlier timeout.
    """

    def __init__(self, data_dir: Path, timeout: float = 30.0) -> None:
        self.path = console_socket_path(data_dir)
        self.timeout = timeout
        self._ids = itertools.count(1)
        self.server_pid = self._server_pid()

    def call(self, command: str, /, *, timeout: float | None = None, **args: Any) -> Any:
        """Send one request and return its ``result``; :class:`ConsoleError` for an error reply,
        code ``timeout`` when no reply came in time (the request may still complete).

        Commands that wait on work get longer: ``sync`` its own ``timeout`` (default the server's)
        plus a margin; those that stop or start actors (``remove``, ``reload``, ``consent``, ``add``)
        as long as a slow mailbox may take to stop.
        """
        wait = timeout or _reply_wait(command, args, self.timeout)
        try:
            with self._connect(wait) as conn:
                request_id = next(self._ids)
                conn.sendall(encode_line({"id": request_id, "command": command, "args": args}))
                reply = _read_reply(conn)
        except TimeoutError:
            raise ConsoleError("timeout", f"no answer to {command} within {wait:g}s; it may still complete "
                               "(see `ctl status`)") from None
        if not reply.get("ok"):
            error = reply.get("error") or {}
            raise ConsoleError(error.get("code", "failed"), error.get("message", "the server gave no reason"))
        return reply.get("result")

    def events(self) -> Iterator[dict[str, Any]]:
        """Subscribe, then yield event objects as they come, until the server closes the stream."""
        return self.stream("subscribe")

    def stream(self, command: str, /, **args: Any) -> Iterator[dict[str, Any]]:
        """Start a stream (``subscribe``, ``changes``) and yield its lines' objects as they come,
        until the server closes it; :class:`ConsoleError` when it is refused."""
        with self._connect(self.timeout) as conn:
            conn.sendall(encode_line({"id": command, "command": command, "args": args}))
            # One buffered reader for the reply and the lines after it: the first lines often come
            # in the same read as the reply, and must not be dropped with it.
            reader = conn.makefile("rb")
            first = reader.readline(64 * MAX_LINE_BYTES)
            if not first.endswith(b"\n"):
                raise ConsoleUnavailable("the process closed the console connection without answering")
            reply = json.loads(first)
            if not reply.get("ok"):
                error = reply.get("error") or {}
                raise ConsoleError(error.get("code", "failed"), error.get("message", ""))
            conn.settimeout(None)  # events come when they come; the server closes on shutdown
            for line in reader:
                yield json.loads(line)

    def _connect(self, timeout: float) -> socket.socket:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(timeout)
        try:
            conn.connect(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            conn.close()
            raise ConsoleUnavailable(f"no futurnal-actors process is running on {self.path.parent}") from exc
        except OSError:
            conn.close()
            raise
        return conn

    def _server_pid(self) -> int | None:
        """The pid of the process on the other end (its peer credentials); also proves it listens,
        and that it runs as this user: requests carry mailbox ids and get mail-derived answers."""
        with self._connect(self.timeout) as conn:
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _gid = struct.unpack("3i", creds)
        if uid != os.getuid():
            raise ConsoleUnavailable(f"the process on {self.path} runs as uid {uid}, not as this user; not using it")
        return pid or None


#: Seconds to wait for replies of commands that stop or start a mailbox's actors (their stop
#: timeout is ``stop_timeout_seconds * 3``, 60 s by default).
_ACTOR_CHANGE_WAIT = 300.0
#: The server's default for ``sync`` when no timeout is given.
_SYNC_WAIT = 3600.0


def _reply_wait(command: str, args: dict[str, Any], default: float) -> float:
    if command == "sync":
        return float(args.get("timeout", _SYNC_WAIT)) + 30
    if command in ("remove", "reload", "consent", "add", "quarantine", "reauthenticated"):
        return max(default, _ACTOR_CHANGE_WAIT)
    return default


def _read_reply(conn: socket.socket) -> dict[str, Any]:
    buffer = b""
    while b"\n" not in buffer:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConsoleUnavailable("the process closed the console connection without answering")
        buffer += chunk
        if len(buffer) > 64 * MAX_LINE_BYTES:
            raise ProtocolError("line-too-long", "the reply is too long")
    return json.loads(buffer.split(b"\n", 1)[0])


def connect_if_running(data_dir: Path, timeout: float = 30.0) -> ConsoleClient | None:
    """A client when a process serves ``data_dir``, else None (no socket, or a stale one)."""
    with contextlib.suppress(ConsoleUnavailable, ProtocolError):
        return ConsoleClient(data_dir, timeout)
    return None
