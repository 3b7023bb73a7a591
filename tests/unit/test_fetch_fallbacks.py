"""A folder sync against a server that fails in the ways real ones do: every UID ends stored,
quarantined with a reason, or gone from the server; the watermark never passes one that is not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from futurnal.imap.errors import ConnectionFailed
from futurnal.imap.fetched import FetchAnswer
from futurnal.imap.uidset import UidSet
from futurnal.storage.quarantine import QuarantineStore
from futurnal.storage.sqlite import SqliteElementStore
from futurnal.storage.sync_state import FolderStateStore
from futurnal.sync.fetch_plan import BatchLimits
from futurnal.sync.folder_sync import FolderSync
from tests.integration.sync_harness import DirectSink
from tests.unit.memory_imap import MemoryServer, note


class Harness:
    def __init__(self, tmp_path: Path, server: MemoryServer, limits: BatchLimits = BatchLimits()) -> None:
        self.store = SqliteElementStore(tmp_path / "elements.sqlite", tmp_path / "feed-listeners")
        self.states = FolderStateStore(tmp_path / "state.json")
        self.quarantine = QuarantineStore(tmp_path / "quarantine")
        self.sync = FolderSync(
            mailbox="m", session=server, states=self.states, sink=DirectSink(self.store),
            quarantine=self.quarantine, limits=limits, reconnect=self.reconnect,
        )
        self.server = server

    def reconnect(self) -> MemoryServer:
        self.server.reconnects += 1
        return self.server

    def stored_uids(self) -> list[int]:
        return sorted(e["uid"] for e in self.store.iter_elements("m"))

    def quarantined(self) -> dict[int, str]:
        return {r.uid: r.reason for r in self.quarantine.list("m")}


def test_a_uid_answered_without_its_body_is_asked_for_again_alone(tmp_path: Path) -> None:
    server = MemoryServer([1, 2, 3, 4, 5])
    server.without_body[3] = 1
    harness = Harness(tmp_path, server)
    result = harness.sync.run("INBOX")
    assert harness.stored_uids() == [1, 2, 3, 4, 5]
    assert "FETCH [3]" in server.commands
    assert result.quarantined == 0


def test_a_body_never_sent_is_quarantined_and_the_rest_goes_on(tmp_path: Path) -> None:
    server = MemoryServer([1, 2, 3, 4, 5])
    server.without_body[3] = 99
    harness = Harness(tmp_path, server)
    harness.sync.run("INBOX")
    assert harness.stored_uids() == [1, 2, 4, 5]
    assert "did not send" in harness.quarantined()[3]
    record = harness.quarantine.list("m")[0]
    assert record.complete is False
    state = harness.states.get("INBOX")
    assert state.last_uid == 5 and 3 in UidSet.parse(state.known_uids)
    server.commands.clear()
    harness.sync.run("INBOX")
    assert not any(c.startswith("FETCH") for c in server.commands)  # not asked again for ever


def test_a_message_expunged_between_size_and_fetch_is_neither_stored_nor_quarantined(tmp_path: Path) -> None:
    server = MemoryServer([1, 2, 3])
    server.expunge_when_asked.add(2)
    harness = Harness(tmp_path, server)
    harness.sync.run("INBOX")
    assert harness.stored_uids() == [1, 3]
    assert harness.quarantined() == {}
    assert harness.states.get("INBOX").last_uid == 3


def test_a_refused_batch_is_split_until_the_one_refused_message_is_quarantined(tmp_path: Path) -> None:
    server = MemoryServer(list(range(1, 33)))
    server.refuses.add(17)
    harness = Harness(tmp_path, server)
    harness.sync.run("INBOX")
    assert harness.stored_uids() == [uid for uid in range(1, 33) if uid != 17]
    assert "SERVERBUG" in harness.quarantined()[17]
    fetches = [c for c in server.commands if c.startswith("FETCH")]
    assert len(fetches) <= 2 * 6 + 1  # halving: about two per level, not one per message


def test_a_server_that_hangs_up_on_one_message_is_reconnected_and_only_that_message_is_set_aside(
    tmp_path: Path,
) -> None:
    server = MemoryServer(list(range(1, 9)))
    server.hangs_up_on.add(3)
    harness = Harness(tmp_path, server)
    harness.sync.run("INBOX")
    assert harness.stored_uids() == [1, 2, 4, 5, 6, 7, 8]
    assert "Internal error" in harness.quarantined()[3]
    assert server.commands.count("FETCH [3]") == 2  # alone twice: a server restart says BYE too
    assert server.reconnects <= 6


def test_without_a_way_to_reconnect_a_hang_up_stops_the_sync(tmp_path: Path) -> None:
    server = MemoryServer([1, 2, 3])
    server.hangs_up_on.add(2)
    harness = Harness(tmp_path, server)
    harness.sync._reconnect = None
    with pytest.raises(ConnectionFailed):
        harness.sync.run("INBOX")
    assert harness.quarantined() == {}


def test_a_message_over_the_size_limit_is_not_downloaded_and_its_headers_are_kept(tmp_path: Path) -> None:
    server = MemoryServer([1, 2, 3])
    server.messages[2] = note(2) + b"x" * 5000
    harness = Harness(tmp_path, server, BatchLimits(max_message_bytes=1024))
    harness.sync.run("INBOX")
    assert harness.stored_uids() == [1, 3]
    assert "too large" in harness.quarantined()[2] and str(len(server.messages[2])) in harness.quarantined()[2]
    assert not any(c.startswith("FETCH") and "2" in c.split(" ", 1)[1] for c in server.commands)
    record = harness.quarantine.list("m")[0]
    assert harness.quarantine.raw(record.id).startswith(b"From: a@example.org")
    assert b"body 2" not in harness.quarantine.raw(record.id)


def test_a_body_bigger_than_its_announced_size_is_quarantined_as_too_large(tmp_path: Path) -> None:
    server = MemoryServer([1, 2, 3])
    server.announced_too_large.add(2)
    harness = Harness(tmp_path, server)
    harness.sync.run("INBOX")
    assert harness.stored_uids() == [1, 3]
    assert "1000000000 bytes" in harness.quarantined()[2]


def test_a_sparse_uid_space_costs_a_few_commands(tmp_path: Path) -> None:
    server = MemoryServer([1, 2, 4294967290], uidnext=4294967295)
    harness = Harness(tmp_path, server)
    harness.sync.run("INBOX")
    assert harness.stored_uids() == [1, 2, 4294967290]
    assert len(server.commands) < 20, server.commands
    assert harness.states.get("INBOX").last_uid == 4294967294
    server.commands.clear()
    harness.sync.run("INBOX")
    assert len(server.commands) < 5, server.commands


@pytest.mark.parametrize("newest_first", [False, True])
def test_the_watermark_stays_below_a_batch_the_connection_lost(tmp_path: Path, newest_first: bool) -> None:
    server = MemoryServer(list(range(1, 11)))
    harness = Harness(tmp_path, server, BatchLimits(max_messages=4, newest_first=newest_first))
    original = server.fetch_messages

    def breaks_on_the_second_batch(uids: Any, expected_bytes: int = 0) -> FetchAnswer:
        if 5 in uids:
            raise ConnectionFailed("connection broke")
        return original(uids, expected_bytes)

    server.fetch_messages = breaks_on_the_second_batch  # type: ignore[method-assign]
    with pytest.raises(ConnectionFailed):
        harness.sync.run("INBOX")
    state = harness.states.get("INBOX")
    if newest_first:  # going down, the floor stays above the batch that did not arrive
        assert state.backfill_floor > 8 and set(harness.stored_uids()) <= {9, 10}
    else:  # going up, the watermark stays below it
        assert state.last_uid < 5
    server.fetch_messages = original  # type: ignore[method-assign]
    harness.sync.run("INBOX")
    assert harness.stored_uids() == list(range(1, 11))
    assert harness.states.get("INBOX").backfill_floor == 0
