"""Loopback TCP proxies for fault tests: one cuts connections at chosen byte offsets, a bounded
number of times; one answers chosen IMAP commands as a provider that limits the account would."""

from __future__ import annotations

import random
import re
import socket
import threading
from dataclasses import dataclass
from typing import Any, Self


class _LoopbackProxy:
    """Listens on 127.0.0.1 and serves each client on a thread of its own (``_serve``), toward the
    server on ``target_port``; keeps the open sockets so they can be cut, and stops with the test."""

    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client, *self._connection_args()), daemon=True).start()

    def _connection_args(self) -> tuple[Any, ...]:
        """What ``_serve`` is given for a new connection besides the client's socket."""
        return ()

    def _serve(self, client: socket.socket, *args: Any) -> None:
        raise NotImplementedError

    def sever(self) -> int:
        """Cut every connection open right now, as a server restart or a NAT timeout would."""
        with self._lock:
            live, self._live = list(self._live), set()
        for sock in live:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return len(live)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self.sever()
        self._thread.join(5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CuttingProxy(_LoopbackProxy):
    """Forwards 127.0.0.1:<port> to a server; the first ``cuts`` connections are dropped after a
    random number of bytes from the server (between ``low`` and ``high``). Later ones pass.

    Loopback only, bounded in count, and it stops with the test: a fault injector, not a load tool.
    """

    def __init__(self, target_port: int, *, cuts: int, low: int, high: int, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._cuts_left = cuts
        self._low, self._high = low, high
        self.cut = 0
        super().__init__(target_port)

    def _connection_args(self) -> tuple[Any, ...]:
        with self._lock:
            limit = self._rng.randint(self._low, self._high) if self._cuts_left > 0 else None
            if limit is not None:
                self._cuts_left -= 1
        return (limit,)

    def _serve(self, client: socket.socket, *args: Any) -> None:
        (limit,) = args
        try:
            server = socket.create_connection(self._target, timeout=10)
        except OSError:
            client.close()
            return
        done = threading.Event()
        with self._lock:
            self._live.update((client, server))

        def pump(source: socket.socket, sink: socket.socket, budget: int | None) -> None:
            sent = 0
            try:
                source.settimeout(0.5)
                while not done.is_set() and not self._stop.is_set():
                    try:
                        data = source.recv(65536)
                    except TimeoutError:
                        continue
                    if not data:
                        break
                    if budget is not None and sent + len(data) >= budget:
                        sink.sendall(data[: max(budget - sent, 0)])
                        with self._lock:
                            self.cut += 1
                        break
                    sink.sendall(data)
                    sent += len(data)
            except OSError:
                pass
            finally:
                done.set()
                for sock in (source, sink):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        upstream = threading.Thread(target=pump, args=(client, server, None), daemon=True)
        upstream.start()
        pump(server, client, limit)
        upstream.join(5)
        client.close()
        server.close()


@dataclass
class Answer:
    """What :class:`AnswerProxy` says instead of the server, to the ``nth`` (1-based) command
    named ``command`` (``UID FETCH``, ``SELECT``, ``LOGIN``), and to the ``times - 1`` after it.

    ``tagged``: the status and text of the tagged answer (``NO [OVERQUOTA] ...``); the command is
    then not forwarded at all. ``untagged``: lines sent before it (``* OK [ALERT] ...``), or
    without ``tagged``, before the server's own tagged answer.
    ``append``: forward the command and add this to the text of the server's own tagged OK
    (Gmail's ``OK Success [THROTTLED]``). ``bye``: the connection is closed after the answer.
    """

    command: str
    tagged: str | None = None
    untagged: tuple[str, ...] = ()
    append: str | None = None
    bye: bool = False
    nth: int = 1
    times: int = 1
    seen: int = 0
    used: int = 0


_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


class AnswerProxy(_LoopbackProxy):
    """A loopback IMAP proxy that answers chosen commands the way providers do when they limit an
    account (Gmail's OVERQUOTA, Office 365's backoff...), and forwards everything else.

    ``answers`` is plain data and may be changed while the proxy runs. Each client line is read
    with its literals, so a command's tag and name are known; the server's lines are read with
    theirs, so a body never passes for an answer. Loopback only, stops with the test.
    """

    def __init__(self, target_port: int, answers: list[Answer] | None = None) -> None:
        self.answers: list[Answer] = answers if answers is not None else []
        self.commands: list[str] = []  # "TAG NAME" of every command seen, in order
        self.logins = 0
        super().__init__(target_port)

    def _match(self, name: str) -> Answer | None:
        with self._lock:
            for answer in self.answers:
                if answer.command.upper() != name:
                    continue
                answer.seen += 1
                if answer.seen >= answer.nth and answer.used < answer.times:
                    answer.used += 1
                    return answer
        return None

    def _heard(self, line: bytes) -> Answer | None:
        """Note the command ``line`` starts; the answer scripted for it, if any."""
        words = line.rstrip(b"\r\n").split(b" ", 3)
        if len(words) < 2:
            return None  # IDLE's DONE, a SASL response
        uid = words[1].upper() == b"UID" and len(words) > 2
        name = b" ".join(words[1:3] if uid else words[1:2]).decode("latin-1").upper()
        with self._lock:
            self.commands.append(f"{words[0].decode('latin-1')} {name}")
            if name in ("LOGIN", "AUTHENTICATE"):
                self.logins += 1
        return self._match(name)

    def _serve(self, client: socket.socket, *args: Any) -> None:
        try:
            server = socket.create_connection(self._target, timeout=10)
        except OSError:
            client.close()
            return
        with self._lock:
            self._live.update((client, server))
        send_lock = threading.Lock()
        appends: dict[bytes, str] = {}  # tag -> text to add to the server's tagged OK
        before: dict[bytes, tuple[str, ...]] = {}  # tag -> untagged lines to send before the server's tagged answer
        done = threading.Event()

        def to_client(data: bytes) -> None:
            with send_lock:
                client.sendall(data)

        def close() -> None:
            done.set()
            for sock in (client, server):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        def upstream() -> None:
            reader = client.makefile("rb")
            rest_of_command = False  # the line after a literal continues the same command
            try:
                while not done.is_set():
                    data = reader.readline()
                    if not data:
                        break
                    literal = _LITERAL.search(data)
                    if rest_of_command:
                        server.sendall(data)
                    elif (answer := self._heard(data)) is not None and answer.tagged is not None:
                        tag = data.split(b" ", 1)[0].decode("latin-1")
                        lines = "".join(f"{line}\r\n" for line in answer.untagged)
                        to_client(f"{lines}{tag} {answer.tagged}\r\n".encode())
                        if answer.bye:
                            close()
                            return
                        continue
                    else:
                        if answer is not None and answer.append is not None:
                            appends[data.split(b" ", 1)[0]] = answer.append
                        if answer is not None and answer.untagged:
                            before[data.split(b" ", 1)[0]] = answer.untagged
                        server.sendall(data)
                    if literal:  # sent as it comes: a synchronizing one waits for the server's "+"
                        server.sendall(reader.read(int(literal.group(1))))
                    rest_of_command = bool(literal)
            except OSError:
                pass
            finally:
                close()

        thread = threading.Thread(target=upstream, daemon=True)
        thread.start()
        reader = server.makefile("rb")
        try:
            while not done.is_set():
                data = _read_with_literals(reader)
                if not data:
                    break
                tag = data.split(b" ", 1)[0]
                if tag in appends and data[len(tag):].lstrip().upper().startswith(b"OK"):
                    data = data.rstrip(b"\r\n") + b" " + appends.pop(tag).encode() + b"\r\n"
                if tag in before:
                    data = "".join(f"{line}\r\n" for line in before.pop(tag)).encode() + data
                to_client(data)
        except OSError:
            pass
        finally:
            close()
            thread.join(5)
            client.close()
            server.close()


def _read_with_literals(reader: Any) -> bytes:
    """One protocol line with every literal it announces (``{n}`` at its end), as sent."""
    data = b""
    while True:
        line = reader.readline()
        if not line:
            return data
        data += line
        match = _LITERAL.search(line)
        if not match:
            return data
        data += reader.read(int(match.group(1)))


class SwitchableProxy(CuttingProxy):
    """Forwards everything until :meth:`cut_off`: then every open connection is cut and each new
    one closed at once, as a network that fails between two hosts; :meth:`restore` mends it."""

    def __init__(self, target_port: int) -> None:
        super().__init__(target_port, cuts=0, low=0, high=0)
        self._off = threading.Event()

    def _serve(self, client: socket.socket, *args: Any) -> None:
        if self._off.is_set():
            client.close()
            return
        super()._serve(client, *args)

    def cut_off(self) -> None:
        self._off.set()
        self.sever()

    def restore(self) -> None:
        self._off.clear()
