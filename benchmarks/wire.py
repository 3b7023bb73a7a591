"""The ceiling: how fast a bare imapclient client can pull every message body off the server.

No parsing, no storage: SELECT (read-only), list UIDs, ``UID FETCH <batch> (BODY.PEEK[])`` until
done, count bytes. Whatever an ingestion tool adds on top of this is its own cost, so dividing
its throughput by this one shows how much of the wire it uses.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass

import imapclient

__all__ = ["WireResult", "measure_server_floor", "measure_wire"]


@dataclass(frozen=True)
class WireResult:
    """One full pass over a folder."""

    messages: int
    bytes: int
    wall_seconds: float
    cpu_seconds: float  # this (client) process only; Dovecot's CPU is not counted

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def mb_per_second(self) -> float:
        return self.bytes / 1e6 / self.wall_seconds if self.wall_seconds else 0.0


def measure_wire(host: str, port: int, user: str, password: str, *, batch: int = 200,
                 folder: str = "INBOX", timeout: float = 60.0, imaplib_debug: bool = True) -> WireResult:
    """Fetch every ``BODY.PEEK[]`` of ``folder`` over plain IMAP, ``batch`` UIDs per command.

    The batch size matches futurnal's default ``batch_messages`` (200), so both issue about as
    many round trips. Timing starts before connecting and ends after LOGOUT, like a real sync.

    ``imaplib_debug=False`` undoes one thing IMAPClient does on connect: it sets imaplib's
    ``debug = 5`` (to route imaplib's messages to a logger), and at that level imaplib formats
    ``%r`` of every untagged response - each whole message body, twice - before the logger
    throws the text away. That costs more CPU than the rest of the client together, so the
    table shows the ceiling with and without it.
    """
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    client = imapclient.IMAPClient(host, port=port, ssl=False, timeout=timeout)
    if not imaplib_debug:
        client._imap.debug = 0
    messages = total = 0
    try:
        client.login(user, password)
        client.select_folder(folder, readonly=True)
        uids = sorted(client.search(["ALL"]))
        for first in range(0, len(uids), batch):
            chunk = uids[first:first + batch]
            for data in client.fetch(chunk, ["BODY.PEEK[]"]).values():
                total += len(data[b"BODY[]"])
                messages += 1
    finally:
        client.logout()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    used = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    return WireResult(messages, total, wall, used)


def measure_server_floor(host: str, port: int, user: str, password: str, *, repeats: int = 10,
                         folder: str = "INBOX", timeout: float = 60.0) -> list[float]:
    """Round trips of the server dialogue of a no-change sync, on one open connection (seconds).

    The same commands futurnal sends when nothing changed: ENABLE QRESYNC once, then per sync
    ``LIST "" "*"`` and ``EXAMINE`` of the folder, which stays selected between syncs (so Dovecot
    closes and re-opens it). A no-change resync cannot cost less than this; whatever it costs
    above it is the client's own work. Measure it well after delivery: Dovecot rescans a Maildir
    whose directory changed moments ago.
    """
    client = imapclient.IMAPClient(host, port=port, ssl=False, timeout=timeout)
    timings: list[float] = []
    try:
        client.login(user, password)
        capabilities = {c.upper() for c in client.capabilities()}
        if b"ENABLE" in capabilities and b"QRESYNC" in capabilities:
            client.enable("QRESYNC")
        for _ in range(repeats + 1):
            started = time.perf_counter()
            client.list_folders()
            client.select_folder(folder, readonly=True)
            timings.append(time.perf_counter() - started)
    finally:
        client.logout()
    return timings[1:]  # the first one also opens the mailbox's index in the imap process
