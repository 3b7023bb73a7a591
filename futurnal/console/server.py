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
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loguru import logger

from futurnal.storage.element_store import CursorExpired, ElementReader

from .command_specs import command_spec, validate_args
from .event_lines import event_document
from .protocol import MAX_LINE_BYTES, ProtocolError, Request, decode_request, encode_line, error_reply, ok_reply

__all__ = ["ConsoleServer"]

#: Events a subscriber may fall behind by before the oldest are dropped (and it is told so).
_SUBSCRIBER_BACKLOG = 1000
_MAX_CLIENTS = 64
_CHANGES_PAGE = 500
#: Seconds a stop waits for requests in progress to send their replies before cutting them off.
_REPLY_GRACE = 2.0
#: A connection that sends nothing for this long (outside ``subscribe``) is closed, so silent
#: clients cannot take every slot.
_IDLE_SECONDS = 60.0


class ConsoleServer:
    """Serves ``run(request) -> result`` (a :class:`~futurnal.console.commands.ConsoleCommands`),
    ``subscribe`` streams from ``subscribe_events(callback) -> unsubscribe`` and ``changes``
    streams from a reader of the element store that ``open_feed()`` opens for each client."""

    def __init__(
        self,
        path: Path,
        run: Callable[[Request], Any],
        subscribe_events: Callable[[Callable[[Any], None]], Callable[[], None]],
        open_feed: Callable[[], ElementReader] | None = None,
    ) -> None:
        self.path = path
        self._run = run
        self._subscribe_events = subscribe_events
        self._open_feed = open_feed
        self._closing = threading.Event()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._clients: dict[threading.Thread, socket.socket] = {}
        self._clients_lock = threading.Lock()
        self._answering = 0  # requests being answered: a stop lets them send their reply first
        self._answered = threading.Condition()

    def start(self) -> ConsoleServer:
        """Listen; a socket left by a process that died is replaced (the data dir lock says it is ours)."""
        self.path.parent.chmod(0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # No umask dance (it is process-wide, and actors are writing files meanwhile): until the
        # chmod, the 0700 data directory already keeps other users away from the socket.
        listener.bind(str(self.path))
        os.chmod(self.path, 0o600)
        listener.listen(16)
        self._listener = listener  # accept() blocks; stop() shuts the listener down to wake it
        self._thread = threading.Thread(target=self._accept_loop, name="console-accept", daemon=True)
        self._thread.start()
        logger.info("admin console listening on {path}", path=str(self.path))
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, end every connection, remove the socket; waits up to ``timeout`` in all.

        A client whose command is still running (a long sync) is cut off; its thread is a daemon
        and ends when the command returns, which the stopping actor system makes quick.
        """
        self._closing.set()
        deadline = time.monotonic() + timeout
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # a blocked accept() returns at once
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        with self._answered:  # `shutdown` itself is one: its reply must reach the client
            self._answered.wait_for(lambda: self._answering == 0,
                                    timeout=max(min(deadline - time.monotonic(), _REPLY_GRACE), 0))
        with self._clients_lock:
            clients = dict(self._clients)
        for conn in clients.values():
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in clients:
            if thread.ident is not None:
                thread.join(timeout=max(deadline - time.monotonic(), 0.01))
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
            except OSError as exc:  # EMFILE and the like: the console must outlive them
                if self._closing.is_set():
                    return
                logger.warning("admin console could not accept a connection ({error}); retrying", error=str(exc))
                self._closing.wait(0.5)
                continue
            with self._clients_lock:
                self._clients = {t: c for t, c in self._clients.items() if t.is_alive() or t.ident is None}
                crowded = len(self._clients) >= _MAX_CLIENTS
                if not crowded:
                    thread = threading.Thread(target=self._serve, args=(conn,), name="console-client", daemon=True)
                    self._clients[thread] = conn
                    thread.start()
            if crowded:
                self._refuse(conn, "busy", f"too many console clients ({_MAX_CLIENTS}); try again")

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                uid = _peer_uid(conn)
            except OSError:
                return  # gone before it could be asked who it is
            if uid != os.getuid():
                logger.warning("admin console refused a connection from uid {uid}", uid=uid)
                self._refuse(conn, "refused", f"only uid {os.getuid()} may use this console, not uid {uid}")
                return
            conn.settimeout(0.5)  # reads wake up to notice a shutdown; a slow client only holds its own thread
            for line in _lines(conn, self._closing, _IDLE_SECONDS):
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
            if request.command == "changes":
                self._stream_changes(conn, request_id, validate_args(command_spec("changes"), request.args))
                return False
        except ProtocolError as exc:
            return self._send(conn, error_reply(request_id, exc.code, exc.message))
        except Exception as exc:  # a failing stream must not take the console down
            logger.exception("admin console stream failed")
            return self._send(conn, error_reply(request_id, "failed", f"{exc.__class__.__name__}: {exc}"))
        with self._answered:
            self._answering += 1
        try:
            return self._send(conn, self._reply(request))
        finally:
            with self._answered:
                self._answering -= 1
                self._answered.notify_all()

    def _reply(self, request: Request) -> dict[str, Any]:
        try:
            return ok_reply(request.id, self._run(request))
        except ProtocolError as exc:
            return error_reply(request.id, exc.code, exc.message)
        except Exception as exc:  # a failing command must not take the console down
            logger.exception("admin console command failed")
            return error_reply(request.id, "failed", f"{exc.__class__.__name__}: {exc}")

    def _stream(self, conn: socket.socket, request_id: Any) -> None:
        """``subscribe``: the reply, then event lines until the client goes or the server stops."""
        backlog: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=_SUBSCRIBER_BACKLOG)
        dropped = [0]
        dropped_lock = threading.Lock()  # publishers run on several actors' threads

        def enqueue(event: Any) -> None:  # runs on the publishing actor's thread: never blocks
            doc = event_document(event)
            if doc is None:
                return
            try:
                backlog.put_nowait(doc)
            except queue.Full:
                with dropped_lock:
                    dropped[0] += 1

        unsubscribe = self._subscribe_events(enqueue)
        try:
            if not self._send(conn, ok_reply(request_id, {"subscribed": True})):
                return
            while not self._closing.is_set():
                with dropped_lock:
                    lost, dropped[0] = dropped[0], 0
                if lost:
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

    def _stream_changes(self, conn: socket.socket, request_id: Any, args: dict[str, Any]) -> None:
        """``changes``: the reply, then one line per change from the cursor on, as they commit."""
        if self._open_feed is None:
            raise ProtocolError("not-available", "this process serves no element store change feed")
        since, mailbox = args.get("since"), args.get("mailbox")
        reader = self._open_feed()
        try:
            try:
                reader.changes(since, mailbox=mailbox, limit=1)  # an expired cursor is the reply
            except CursorExpired as exc:
                self._send(conn, error_reply(request_id, "cursor-expired", str(exc)))
                return
            if not self._send(conn, ok_reply(request_id, {"streaming": True, "since": since})):
                return
            # Woken every half second at most, to notice a stop or a client that hung up.
            for batch in reader.change_pages(since, mailbox=mailbox, page=_CHANGES_PAGE, follow=True, wake=0.5):
                if self._closing.is_set() or (not batch and _closed_by_peer(conn)):
                    return
                for change in batch:
                    if not self._send(conn, change.as_dict()):
                        return
        finally:
            reader.close()

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


def _lines(conn: socket.socket, closing: threading.Event, idle_seconds: float) -> Any:
    """Yield request lines as they arrive; None once for an over-long line; ends at EOF, at
    shutdown, or after ``idle_seconds`` without a byte."""
    buffer = b""
    last_heard = time.monotonic()
    while not closing.is_set():
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            if time.monotonic() - last_heard > idle_seconds:
                return
            continue
        except OSError:
            return
        if not chunk:
            return
        last_heard = time.monotonic()
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
