"""A stop cuts every open IMAP connection at once: a read blocked in a trickling FETCH returns
at once, and no connection is opened afterwards."""

from __future__ import annotations

import threading
import time

import pytest

from futurnal.imap.errors import ConnectionFailed
from futurnal.imap.live_connections import LiveConnections
from futurnal.imap.session import ConnectionSettings, ImapSession
from tests.servers.hostile_imap import Folder, HostileImap, Quirk

RAW = b"From: a@example.org\r\nSubject: slow\r\n\r\n" + b"body line\r\n" * 200


def test_cutting_all_connections_ends_a_fetch_blocked_on_a_trickling_server() -> None:
    server = HostileImap({"INBOX": Folder(uidvalidity=3, messages={1: RAW}, quirks={1: Quirk(trickle=20.0)})})
    live = LiveConnections()
    with server:
        settings = ConnectionSettings("127.0.0.1", server.port, "a", security="plain", read_timeout=30.0)
        session = ImapSession(settings, live=live).connect("pw")
        session.select("INBOX")
        assert len(live) == 1
        failures: list[Exception] = []

        def fetch() -> None:
            try:
                session.fetch_messages([1])
            except ConnectionFailed as exc:
                failures.append(exc)

        reader = threading.Thread(target=fetch)
        reader.start()
        time.sleep(0.5)  # the reader is inside the trickling literal now
        started = time.monotonic()
        assert live.cut_all() == 1
        reader.join(timeout=5)
        assert not reader.is_alive() and failures, "the blocked read did not end"
        assert time.monotonic() - started < 2.0
        session.close()
        with pytest.raises(ConnectionFailed, match="stopping"):
            ImapSession(settings, live=live).connect("pw")
