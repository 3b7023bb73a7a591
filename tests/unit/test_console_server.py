"""The console's socket server with a plain command function: replies, silence, stopping."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from futurnal.console import server as server_module
from futurnal.console.client import ConsoleError
from futurnal.console.protocol import ProtocolError, Request
from futurnal.console.server import ConsoleServer
from futurnal.sync.sync_runs import SyncStarted


def _echo(request: Request) -> Any:
    if request.command == "boom":
        raise RuntimeError("a command failed")
    if request.command == "nope":
        raise ProtocolError("unknown-mailbox", "no such mailbox")
    return {"command": request.command, "args": request.args}


class Events:
    def __init__(self) -> None:
        self.subscribers: list[Callable[[Any], None]] = []

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        self.subscribers.append(callback)
        return lambda: self.subscribers.remove(callback)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ConsoleServer, Events]]:
    events = Events()
    directory = tmp_path / "d"
    directory.mkdir()
    console = ConsoleServer(directory / "console.sock", _echo, events.subscribe).start()
    yield console, events
    console.stop()


def _connect(console: ConsoleServer) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(10)
    conn.connect(str(console.path))
    return conn


def _ask(conn: socket.socket, line: bytes) -> dict[str, Any]:
    conn.sendall(line + b"\n")
    return json.loads(conn.makefile("rb").readline())


def test_each_request_line_gets_one_reply_and_failures_become_error_replies(served: Any) -> None:
    console, _ = served
    with _connect(console) as conn:
        assert _ask(conn, b'{"id": 1, "command": "status"}') == {
            "id": 1, "ok": True, "result": {"command": "status", "args": {}}}
        assert _ask(conn, b'{"id": 2, "command": "boom"}')["error"] == {
            "code": "failed", "message": "RuntimeError: a command failed"}
        assert _ask(conn, b'{"id": 3, "command": "nope"}')["error"]["code"] == "unknown-mailbox"
        assert _ask(conn, b'{"id": 4, "command": "status"}')["ok"] is True  # still serving after both


def test_a_silent_client_is_closed_so_it_cannot_hold_a_slot(served: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    console, _ = served
    monkeypatch.setattr(server_module, "_IDLE_SECONDS", 0.6)
    with _connect(console) as conn:
        assert conn.recv(1) == b""  # closed by the server, having said nothing


def test_a_subscriber_gets_event_lines_until_it_hangs_up(served: Any) -> None:
    console, events = served
    with _connect(console) as conn:
        reader = conn.makefile("rb")
        conn.sendall(b'{"command": "subscribe"}\n')
        assert json.loads(reader.readline())["result"] == {"subscribed": True}
        events.subscribers[0](SyncStarted("alice", 1, ("INBOX",)))
        events.subscribers[0]("not an event the stream carries")
        line = json.loads(reader.readline())
        assert (line["event"], line["mailbox"], line["folders"]) == ("sync-started", "alice", ["INBOX"])
        reader.close()  # the socket's file object holds it open too
    _wait(lambda: not events.subscribers)  # hung up: unsubscribed


def test_stopping_ends_every_connection_removes_the_socket_and_leaves_no_thread(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    console = ConsoleServer(tmp_path / "console.sock", _echo, Events().subscribe).start()
    clients = [_connect(console) for _ in range(3)]
    _ask(clients[0], b'{"command": "status"}')
    console.stop()
    assert not console.path.exists()
    assert all(_closed(client) for client in clients)
    _wait(lambda: set(threading.enumerate()) <= before)
    for client in clients:
        client.close()


def _closed(conn: socket.socket) -> bool:
    try:
        return conn.recv(1) == b""
    except ConnectionResetError:  # closed with our request still unread on its side
        return True


def _wait(condition: Callable[[], bool]) -> None:
    done = threading.Event()
    for _ in range(250):
        if condition():
            return
        done.wait(0.02)
    raise AssertionError("condition not reached in time")


def test_a_changes_stream_sends_the_feed_from_its_cursor_then_each_new_commit(tmp_path: Path) -> None:
    from futurnal.console.client import ConsoleClient
    from futurnal.console.protocol import console_socket_path
    from futurnal.storage.sqlite import SqliteElementReader, SqliteElementStore

    store = SqliteElementStore(tmp_path / "elements.sqlite", tmp_path / "listeners")

    def element(uid: int) -> dict[str, Any]:
        return {"id": f"{uid:032x}", "mailbox": "alice", "folder": "INBOX", "uidvalidity": 1, "uid": uid}

    store.upsert_many([element(1), element(2)])
    console = ConsoleServer(console_socket_path(tmp_path), _echo, Events().subscribe,
                            lambda: SqliteElementReader(tmp_path / "elements.sqlite", tmp_path / "listeners")).start()
    try:
        client = ConsoleClient(tmp_path, timeout=10)
        stream = client.stream("changes", since=1)
        assert next(stream) == {"seq": 2, "op": "upsert", "mailbox": "alice", "id": f"{2:032x}",
                                "element": element(2)}
        store.upsert_many([element(3)])  # committed while the stream waits: it comes next
        assert next(stream)["seq"] == 3
        stream.close()
        store.remove_mailbox("alice")
        with pytest.raises(ConsoleError) as expired:
            next(client.stream("changes", since=1))
        assert expired.value.code == "cursor-expired"
    finally:
        console.stop()
        store.close()


def test_stream_lines_that_arrive_with_the_reply_are_not_lost(tmp_path: Path) -> None:
    from futurnal.console.client import ConsoleClient
    from futurnal.console.protocol import console_socket_path

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(console_socket_path(tmp_path)))
    listener.listen(2)

    def serve() -> None:
        listener.accept()[0].close()  # the client's check that a process listens
        conn, _ = listener.accept()
        with conn:
            conn.makefile("rb").readline()
            conn.sendall(b'{"id": "changes", "ok": true, "result": {}}\n{"seq": 1}\n{"seq": 2}\n')  # one write

    server = threading.Thread(target=serve)
    server.start()
    try:
        assert list(ConsoleClient(tmp_path, timeout=10).stream("changes", since=0)) == [{"seq": 1}, {"seq": 2}]
    finally:
        server.join(timeout=10)
        listener.close()
