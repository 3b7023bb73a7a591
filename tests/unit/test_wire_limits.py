"""The bounds on one IMAP connection, over a real socket pair: literals over the limit, or past
what one command may hold, are drained, not kept; a command that trickles past its deadline ends
with a timeout."""

from __future__ import annotations

import imaplib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from futurnal.imap.wire_limits import OversizedLiteral, WireLimits


class Connection:
    """What WireLimits needs of an imaplib connection: its socket, its reader, its error class."""

    error = imaplib.IMAP4.error

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    client, server = socket.socketpair()
    client.settimeout(5)
    yield client, server
    client.close()
    server.close()


def limits(client: socket.socket, **overrides: float) -> tuple[Connection, WireLimits]:
    connection = Connection(client)
    options = {"max_literal": 1000, "read_timeout": 5.0, "min_rate": 1_000_000.0, "max_line": 200, **overrides}
    return connection, WireLimits(connection, **options)  # type: ignore[arg-type]


def send_slowly(sock: socket.socket, data: bytes, pause: float) -> threading.Thread:
    def trickle() -> None:
        for byte in data:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return
            time.sleep(pause)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    return thread


def test_a_literal_within_the_limit_is_read_whole(pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    connection, wire = limits(client)
    server.sendall(b"x" * 900 + b")\r\n")
    wire.start_command()
    assert connection.read(900) == b"x" * 900  # type: ignore[attr-defined]
    assert connection.readline() == b")\r\n"  # type: ignore[attr-defined]


def test_a_literal_over_the_limit_is_drained_and_the_connection_stays_in_step(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    client, server = pair
    connection, wire = limits(client)
    threading.Thread(target=server.sendall, args=(b"y" * 300_000 + b" UID 7)\r\nA1 OK done\r\n",), daemon=True).start()
    wire.start_command()
    kept = connection.read(300_000)  # type: ignore[attr-defined]
    assert isinstance(kept, OversizedLiteral) and kept == b"" and kept.size == 300_000
    assert wire.dropped == [300_000]
    assert connection.readline() == b" UID 7)\r\n"  # type: ignore[attr-defined]
    assert connection.readline() == b"A1 OK done\r\n"  # type: ignore[attr-defined]


def test_literals_past_the_commands_budget_are_drained_each_under_the_limit_or_not(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    client, server = pair
    connection, wire = limits(client)
    server.sendall(b"a" * 900 + b"b" * 900 + b"c" * 900 + b"d" * 50)
    wire.start_command(keep=1000)
    assert connection.read(900) == b"a" * 900  # type: ignore[attr-defined]
    second = connection.read(900)  # type: ignore[attr-defined]
    assert isinstance(second, OversizedLiteral) and second.size == 900  # 100 bytes of the budget left
    assert isinstance(connection.read(900), OversizedLiteral)  # type: ignore[attr-defined]
    assert connection.read(50) == b"d" * 50  # type: ignore[attr-defined]
    assert wire.dropped == [900, 900]
    wire.end_command()

    server.sendall(b"e" * 900)
    wire.start_command()  # the next command has its own budget: one max_literal
    assert connection.read(900) == b"e" * 900  # type: ignore[attr-defined]


def test_a_trickled_literal_ends_at_the_commands_deadline(pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    connection, wire = limits(client, read_timeout=1.0, min_rate=1000.0)
    send_slowly(server, b"z" * 100, 0.1)  # each byte well within the read timeout
    wire.start_command()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        connection.read(100)  # type: ignore[attr-defined]
    assert time.monotonic() - started < 3.0


def test_an_oversized_announcement_buys_no_more_time_than_the_limit(pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    # 4 GB announced at a least rate of 1,000 bytes/s would be 46 days; counted as the 1,000-byte
    # limit it is 1 s on top of the read timeout.
    connection, wire = limits(client, read_timeout=1.0, min_rate=1000.0)
    send_slowly(server, b"z" * 100, 0.1)
    wire.start_command()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        connection.read(4 * 10**9)  # type: ignore[attr-defined]
    assert time.monotonic() - started < 4.0


def test_a_trickled_line_ends_at_the_commands_deadline(pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    connection, wire = limits(client, read_timeout=1.0)
    send_slowly(server, b"* OK " + b"a" * 100 + b"\r\n", 0.1)
    wire.start_command()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        connection.readline()  # type: ignore[attr-defined]
    assert time.monotonic() - started < 3.0


def test_a_line_longer_than_the_limit_is_refused(pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    connection, wire = limits(client)
    server.sendall(b"* " + b"b" * 500 + b"\r\n")
    wire.start_command()
    with pytest.raises(imaplib.IMAP4.error, match="more than 200 bytes"):
        connection.readline()  # type: ignore[attr-defined]


def test_between_commands_reads_wait_as_long_as_the_socket_allows(pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    connection, wire = limits(client, read_timeout=0.5)
    send_slowly(server, b"* 3 EXISTS\r\n", 0.1)  # an IDLE notice: no command, no deadline
    assert connection.readline() == b"* 3 EXISTS\r\n"  # type: ignore[attr-defined]
