"""A loopback TCP proxy that cuts connections at chosen byte offsets, a bounded number of times."""

from __future__ import annotations

import random
import socket
import threading


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to a server; the first ``cuts`` connections are dropped after a
    random number of bytes from the server (between ``low`` and ``high``). Later ones pass.

    Loopback only, bounded in count, and it stops with the test: a fault injector, not a load tool.
    """

    def __init__(self, target_port: int, *, cuts: int, low: int, high: int, seed: int = 0) -> None:
        self._target = ("127.0.0.1", target_port)
        self._rng = random.Random(seed)
        self._cuts_left = cuts
        self._low, self._high = low, high
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.cut = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

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

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                limit = self._rng.randint(self._low, self._high) if self._cuts_left > 0 else None
                if limit is not None:
                    self._cuts_left -= 1
            threading.Thread(target=self._serve, args=(client, limit), daemon=True).start()

    def _serve(self, client: socket.socket, limit: int | None) -> None:
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

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(5)
