"""The admin console's server: a Unix socket in the data directory, one thread per client.

Only the user running the service gets in: the socket is 0600 in a 0700 directory, and each
connection's peer credentials (``SO_PEERCRED``) must carry the same uid, so even a loosened mode
(or root's way around it on the file system) does not open it to other users.
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loguru import logger

from .event_lines import event_document
from .protocol import MAX_LINE_BYTES, ProtocolError, Request, decode_request, encode_line, error_reply, ok_reply

__all__ = ["ConsoleServer"]

#: Events a subscriber may fall behind by before the oldest are dropped (and it is told so).
_SUBSCRIBER_BACKLOG = 1000
_MAX_CLIENTS = 32


class ConsoleServer:
    """Serves ``run(request) -> result`` (a :class:`~futurnal.console.commands.ConsoleCommands`)
    and ``subscribe`` streams from ``subscribe_events(callback) -> unsubscribe``."""

    def __init__(
        self,
        path: Path,
        run: Callable[[Request], Any],
        subscribe_events: Callable[[Callable[[Any], None]], Callable[[], None]],
    ) -> None:
        self.path = path
        self._run = run
        self._subscribe_events = subscribe_events
        self._closing = threading.Event()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._clients: set[threading.Thread] = set()
        self._clients_lock = threading.Lock()

    def start(self) -> ConsoleServer:
        """Listen; a socket left by a process that died is replaced (the data dir lock says it is ours)."""
        self.path.parent.chmod(0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # created 0600: no moment where another user could connect
        try:
            listener.bind(str(self.path))
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        listener.listen(16)
        listener.settimeout(0.5)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept_loop, name="console-accept", daemon=True)
        self._thread.start()
        logger.info("admin console listening on {path}", path=str(self.path))
        return self

    def stop(self) -> None:
        """Stop accepting, end every connection, remove the socket; waits for the threads."""
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._clients_lock:
            clients = list(self._clients)
        for thread in clients:
            thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    # -- connections --------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._closing.is_set():
                    return
                raise
            with self._clients_lock:
                self._clients = {t for t in self._clients if t.is_alive()}
                crowded = len(self._clients) >= _MAX_CLIENTS
                if not crowded:
                    thread = threading.Thread(target=self._serve, args=(conn,), name="console-client", daemon=True)
                    self._clients.add(thread)
            if crowded:
                self._refuse(conn, "busy", f"too many console clients ({_MAX_CLIENTS}); try again")
            else:
                thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            uid = _peer_uid(conn)
            if uid != os.getuid():
                logger.warning("admin console refused a connection from uid {uid}", uid=uid)
                self._refuse(conn, "refused", f"only uid {os.getuid()} may use this console, not uid {uid}")
                return
            conn.settimeout(0.5)  # reads wake up to notice a shutdown; a slow client only holds its own thread
            for line in _lines(conn, self._closing):
                if line is None:
                    self._send(conn, error_reply(None, "line-too-long", f"requests are at most {MAX_LINE_BYTES} bytes"))
                    return
                if not line.strip():
                    continue
                if not self._answer(conn, line):
                    return

    def _answer(self, conn: socket.socket, line: bytes) -> bool:
        """Reply to one request line; False when the connection is done (a stream ended, or it broke)."""
        request_id = None
        try:
            request = decode_request(line)
            request_id = request.id
            if request.command == "subscribe":
                if request.args:
                    raise ProtocolError("bad-argument", "subscribe takes no arguments")
                self._stream(conn, request_id)
                return False
            reply = ok_reply(request_id, self._run(request))
        except ProtocolError as exc:
            reply = error_reply(request_id, exc.code, exc.message)
        except Exception as exc:  # a failing command must not take the console down
            logger.exception("admin console command failed")
            reply = error_reply(request_id, "failed", f"{exc.__class__.__name__}: {exc}")
        return self._send(conn, reply)

    def _stream(self, conn: socket.socket, request_id: Any) -> None:
        """``subscribe``: the reply, then event lines until the client goes or the server stops."""
        backlog: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=_SUBSCRIBER_BACKLOG)
        dropped = [0]

        def enqueue(event: Any) -> None:  # runs on the publishing actor's thread: never blocks
            doc = event_document(event)
            if doc is None:
                return
            try:
                backlog.put_nowait(doc)
            except queue.Full:
                dropped[0] += 1

        unsubscribe = self._subscribe_events(enqueue)
        try:
            if not self._send(conn, ok_reply(request_id, {"subscribed": True})):
                return
            while not self._closing.is_set():
                if dropped[0]:
                    lost, dropped[0] = dropped[0], 0
                    if not self._send(conn, {"event": "dropped", "count": lost}):
                        return
                try:
                    doc = backlog.get(timeout=0.5)
                except queue.Empty:
                    if _closed_by_peer(conn):
                        return
                    continue
                if not self._send(conn, doc):
                    return
        finally:
            unsubscribe()

    @staticmethod
    def _send(conn: socket.socket, doc: dict[str, Any]) -> bool:
        try:
            conn.settimeout(10)  # a client that stops reading is dropped, not waited for
            conn.sendall(encode_line(doc))
            conn.settimeout(0.5)
            return True
        except OSError:
            return False

    def _refuse(self, conn: socket.socket, code: str, message: str) -> None:
        with conn:
            self._send(conn, error_reply(None, code, message))


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def _lines(conn: socket.socket, closing: threading.Event) -> Any:
    """Yield request lines as they arrive; None once for an over-long line; ends at EOF or shutdown."""
    buffer = b""
    while not closing.is_set():
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if len(line) > MAX_LINE_BYTES:
                yield None
                return
            yield line
        if len(buffer) > MAX_LINE_BYTES:
            yield None
            return


def _closed_by_peer(conn: socket.socket) -> bool:
    """True when a subscriber hung up (readable at EOF); anything it sends is ignored."""
    try:
        conn.setblocking(False)
        try:
            data = conn.recv(4096)
        finally:
            conn.settimeout(0.5)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return data == b""
