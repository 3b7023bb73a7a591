"""The sync core against a server kept in memory: its edge cases, without a real IMAP server.

FolderSync only sequences the steps (plan, fetch, parse, build, hand to the sink, commit) and
owns the watermark; these tests hold it to the guarantees README.md gives: the watermark never
passes a message the sink has not confirmed or the quarantine does not hold, a new UIDVALIDITY
starts the folder over, and back-pressure bounds what waits on the sink.
"""

from __future__ import annotations

import inspect
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from futurnal.imap.session import ImapSession
from futurnal.imap.uidset import UidSet
from futurnal.logs.configure import configure_logging
from futurnal.storage.quarantine import QuarantineStore
from futurnal.storage.sqlite import SqliteElementStore
from futurnal.storage.sync_state import FolderState, FolderStateStore
from futurnal.sync.fetch_plan import BatchLimits
from futurnal.sync.folder_sync import FolderSync, SyncInterrupted, SyncProgress
from futurnal.sync.imap_port import ImapPort
from futurnal.sync.message_key import MessageKey
from tests.unit.memory_imap import MemoryServer, SinkFailed, WatchedSink, note


class WatchedStates(FolderStateStore):
    """A state store that checks every state before it is saved."""

    def __init__(self, path: Path, check: Callable[[FolderState], None]) -> None:
        super().__init__(path)
        self._check = check
        self.saves = 0

    def put(self, state: FolderState) -> None:
        self._check(state)
        self.saves += 1
        super().put(state)


class Core:
    """FolderSync on a memory server, a watched sink and a state store that checks the watermark."""

    def __init__(self, tmp_path: Path, server: MemoryServer, **options: Any) -> None:
        self.server = server
        self.store = SqliteElementStore(tmp_path / "elements.sqlite", tmp_path / "feed-listeners")
        self.sink = WatchedSink(self.store)
        self.states = WatchedStates(tmp_path / "state.json", self._watermark_is_earned)
        self.quarantine = QuarantineStore(tmp_path / "quarantine")
        self.sync = FolderSync(
            mailbox="m", session=server, states=self.states, sink=self.sink, quarantine=self.quarantine,
            reconnect=lambda: server, **options,
        )

    def _watermark_is_earned(self, state: FolderState) -> None:
        """Every message from the backfill's floor up to the watermark, and every known UID, is
        stored or quarantined."""
        if state.uidvalidity != self.server.uidvalidity:
            return
        settled = {uid for uidvalidity, uid in self.sink.confirmed if uidvalidity == state.uidvalidity}
        settled |= set(self.quarantined())
        # Newest first, the UIDs below the backfill's floor are still to come.
        floor = state.backfill_floor if state.backfill_floor > 1 else 1
        passed = {uid for uid in self.server.messages if floor <= uid <= state.last_uid}
        assert passed <= settled, f"watermark {state.last_uid} passed unconfirmed {sorted(passed - settled)}"
        known = set(UidSet.parse(state.known_uids))
        assert known <= settled, f"known but unconfirmed: {sorted(known - settled)}"

    def live(self) -> dict[tuple[int, int], str]:
        """(UIDVALIDITY, UID) -> subject of every element not tombstoned."""
        return {(e["uidvalidity"], e["uid"]): e["subject"] for e in self.store.iter_elements("m")
                if not e.get("deleted")}

    def quarantined(self) -> dict[int, str]:
        return {r.uid: r.reason for r in self.quarantine.list("m")}

    def fetches(self) -> list[str]:
        return [c for c in self.server.commands if c.startswith(("FETCH", "SEARCH"))]


def test_a_new_uidvalidity_tombstones_the_old_elements_and_syncs_the_folder_afresh(tmp_path: Path) -> None:
    server = MemoryServer([1, 2, 3, 4, 5], uidvalidity=7)
    core = Core(tmp_path, server)
    core.sync.run("INBOX")
    assert set(core.live()) == {(7, uid) for uid in range(1, 6)}

    server.recreate([1, 2, 3], uidvalidity=8)
    result = core.sync.run("INBOX")

    assert result.uidvalidity_changed and result.uidvalidity == 8 and result.fetched == 3
    # The old UIDs mean nothing now: all five old elements are tombstones, never mixed with new ones.
    assert core.live() == {(8, 1): "again 1", (8, 2): "again 2", (8, 3): "again 3"}
    assert sum(1 for e in core.store.iter_elements("m") if e.get("deleted")) == 5
    state = core.states.get("INBOX")
    assert (state.uidvalidity, state.last_uid, state.known_uids, state.deleted) == (8, 3, "1:3", 5)


def test_a_uidvalidity_new_at_every_read_only_open_is_found_and_the_folder_opened_read_write(tmp_path: Path) -> None:
    # Courier-IMAP saves UIDs only in read-write sessions: each EXAMINE numbers the folder afresh.
    server = MemoryServer([1, 2, 3, 4, 5], uidvalidity=7)
    core = Core(tmp_path, server)
    core.sync.run("INBOX")
    server.unsaved_uids = True

    fetched = [core.sync.run("INBOX").fetched for _ in range(5)]

    # The first new UIDVALIDITY may be a folder made again: it is synced afresh. The second in a
    # row with the same messages is the server's doing: the folder is opened read-write, the
    # server keeps the UIDs from then on, and nothing is downloaded again.
    assert fetched == [5, 5, 0, 0, 0]
    assert server.commands.count("SELECT") == 4  # the switch, then every later sync
    state = core.states.get("INBOX")
    assert state.open_read_write and state.uidvalidity == server.uidvalidity and state.uidvalidity_flips == 0
    assert set(core.live()) == {(server.uidvalidity, uid) for uid in range(1, 6)}
    # Read-write survives a reload of the state file, so a restart does not go back to EXAMINE.
    assert FolderState.from_document(state.to_document()).open_read_write


def test_a_folder_made_again_is_no_flapping_and_stays_read_only(tmp_path: Path) -> None:
    server = MemoryServer([1, 2, 3], uidvalidity=7)
    core = Core(tmp_path, server)
    core.sync.run("INBOX")
    server.recreate([1, 2, 3], uidvalidity=8)
    core.sync.run("INBOX")
    core.sync.run("INBOX")  # the same UIDVALIDITY: the one change was not a run of them
    server.recreate([1, 2, 3], uidvalidity=9)
    core.sync.run("INBOX")
    state = core.states.get("INBOX")
    assert not state.open_read_write and state.uidvalidity == 9 and "SELECT" not in server.commands


def test_a_uidvalidity_new_even_read_write_stops_the_downloads_with_the_reason(tmp_path: Path) -> None:
    server = MemoryServer([1, 2, 3], uidvalidity=7)
    core = Core(tmp_path, server)
    core.sync.run("INBOX")
    server.flaps_even_read_write = True
    assert [core.sync.run("INBOX").fetched for _ in range(2)] == [3, 3]  # afresh, then read-write
    fetches = len(core.fetches())
    with pytest.raises(Exception, match="new UIDVALIDITY at every sync"):
        core.sync.run("INBOX")
    assert len(core.fetches()) == fetches  # nothing downloaded again
    state = core.states.get("INBOX")
    assert "new UIDVALIDITY at every sync" in (state.last_error or "")
    assert len(core.live()) == 3  # what was stored stays, not tombstoned


def test_a_first_sync_fetches_the_newest_mail_first_going_down(tmp_path: Path) -> None:
    server = MemoryServer(list(range(1, 11)))
    core = Core(tmp_path, server, limits=BatchLimits(max_messages=4))
    core.sync.run("INBOX")  # every save is checked: the floor never passes an unconfirmed UID
    assert core.fetches() == ["FETCH [9, 10]", "FETCH [5, 6, 7, 8]", "FETCH [1, 2, 3, 4]"]
    state = core.states.get("INBOX")
    assert (state.last_uid, state.backfill_floor, state.known_uids) == (10, 0, "1:10")
    server.messages[11] = note(11)
    server.uidnext = 12
    core.sync.run("INBOX")  # later mail goes up from the watermark, as before
    assert core.fetches()[-1] == "FETCH [11]" and set(core.live()) == {(7, uid) for uid in range(1, 12)}


def test_an_interrupted_backfill_resumes_below_its_floor_without_fetching_again(tmp_path: Path) -> None:
    server = MemoryServer(list(range(1, 21)))
    stop_after = {"batches": 2}

    def should_stop() -> bool:
        return sum(1 for c in server.commands if c.startswith("FETCH")) >= stop_after["batches"]

    core = Core(tmp_path, server, limits=BatchLimits(max_messages=4, window_uids=8), max_in_flight=1,
                should_stop=should_stop)
    with pytest.raises(SyncInterrupted):
        core.sync.run("INBOX")
    state = core.states.get("INBOX")
    assert (state.last_uid, state.backfill_floor, state.known_uids) == (20, 13, "13:20")  # the newest 8
    assert set(core.live()) == {(7, uid) for uid in range(13, 21)}

    stop_after["batches"] = 10**6
    core.sync.run("INBOX")
    fetched = [c for c in core.fetches()]
    uids = [int(u) for c in fetched for u in c[len("FETCH ["):-1].split(", ")]
    assert sorted(uids) == list(range(1, 21))  # each message fetched once, over both runs
    assert core.states.get("INBOX").backfill_floor == 0


def test_mail_arriving_during_a_backfill_is_fetched_before_the_older_mail(tmp_path: Path) -> None:
    server = MemoryServer(list(range(1, 13)))
    original = server.fetch_messages

    def new_mail_meanwhile(uids: Any, expected_bytes: int = 0) -> Any:
        if 9 in uids and 13 not in server.messages:
            server.messages[13] = note(13)
            server.uidnext = 14
        return original(uids, expected_bytes)

    server.fetch_messages = new_mail_meanwhile  # type: ignore[method-assign]
    core = Core(tmp_path, server, limits=BatchLimits(max_messages=4, window_uids=4), arrivals_check_seconds=0)
    core.sync.run("INBOX")
    fetches = [c for c in core.fetches() if c.startswith("FETCH")]
    assert fetches == ["FETCH [9, 10, 11, 12]", "FETCH [13]", "FETCH [5, 6, 7, 8]", "FETCH [1, 2, 3, 4]"]
    state = core.states.get("INBOX")
    assert (state.last_uid, state.backfill_floor) == (13, 0)
    assert set(core.live()) == {(7, uid) for uid in range(1, 14)}


def test_oldest_first_when_newest_first_is_off(tmp_path: Path) -> None:
    server = MemoryServer(list(range(1, 11)))
    core = Core(tmp_path, server, limits=BatchLimits(max_messages=4, newest_first=False))
    core.sync.run("INBOX")
    assert core.fetches() == ["FETCH [1, 2, 3, 4]", "FETCH [5, 6, 7, 8]", "FETCH [9, 10]"]


def test_the_watermark_never_passes_a_batch_the_sink_has_not_confirmed(tmp_path: Path) -> None:
    # Gaps in the UID space and small windows: the watermark also moves over UIDs that hold nothing.
    uids = [uid for uid in range(1, 61) if uid % 7 != 0]
    server = MemoryServer(uids, uidnext=70)
    core = Core(tmp_path, server, limits=BatchLimits(max_messages=4, window_uids=10), max_in_flight=3)
    core.sync.run("INBOX")  # every save of the state is checked by WatchedStates
    assert core.states.saves > 10
    assert set(core.live()) == {(7, uid) for uid in uids}
    assert core.states.get("INBOX").last_uid == 69


@pytest.mark.parametrize("newest_first", [False, True])
def test_a_sink_that_fails_leaves_the_watermark_where_it_was(tmp_path: Path, newest_first: bool) -> None:
    server = MemoryServer(list(range(1, 17)))
    core = Core(tmp_path, server, limits=BatchLimits(max_messages=4, newest_first=newest_first), max_in_flight=3)
    core.sink.fails_on = {6}  # the batch 5..8 is never written; the ones after it are

    with pytest.raises(SinkFailed):
        core.sync.run("INBOX")
    state = core.states.get("INBOX")
    if newest_first:  # 13..16 and 9..12 went first; the floor stays above the failed batch
        assert (state.last_uid, state.backfill_floor, state.known_uids) == (16, 9, "9:16")
    else:
        assert state.last_uid == 4 and state.known_uids == "1:4"

    core.sink.fails_on.clear()
    core.sync.run("INBOX")
    assert set(core.live()) == {(7, uid) for uid in range(1, 17)}
    assert core.states.get("INBOX").last_uid == 16


def test_each_step_of_progress_is_told_once_and_the_last_says_the_folder_is_done(tmp_path: Path) -> None:
    seen: list[Any] = []
    server = MemoryServer(list(range(1, 7)))
    core = Core(tmp_path, server, limits=BatchLimits(max_messages=4), progress=seen.append)
    core.sync.run("INBOX")  # newest first: the batch 5..6, then 1..4
    assert [(p.folder, p.done, p.total) for p in seen if isinstance(p, SyncProgress)] == [("INBOX", 2, 6), ("INBOX", 6, 6)]

    # A message gone between the count and the fetch: the count overshot, and the last step ends full.
    seen.clear()
    server.messages.update({uid: note(uid) for uid in range(7, 13)})
    server.uidnext = 13
    server.expunge_when_asked = {12}
    core.sync.run("INBOX")
    assert [(p.done, p.total) for p in seen if isinstance(p, SyncProgress)] == [(4, 6), (5, 6), (5, 5)]


@pytest.mark.parametrize("max_in_flight", [1, 3])
def test_no_more_than_max_in_flight_batches_wait_on_the_sink(tmp_path: Path, max_in_flight: int) -> None:
    server = MemoryServer(list(range(1, 41)))
    core = Core(tmp_path, server, limits=BatchLimits(max_messages=4), max_in_flight=max_in_flight)
    core.sync.run("INBOX")
    assert core.sink.most_outstanding == max_in_flight  # ten batches, never more waiting than allowed
    assert core.sink.outstanding == []
    assert core.states.get("INBOX").last_uid == 40


def test_a_uid_answered_without_its_body_is_asked_for_alone_then_quarantined(tmp_path: Path) -> None:
    server = MemoryServer([1, 2, 3, 4, 5, 6])
    server.without_body[4] = 2  # neither in its batch nor asked alone
    core = Core(tmp_path, server)
    result = core.sync.run("INBOX")

    # Asked again alone, and then whether the server still lists it (not expunged meanwhile).
    assert core.fetches() == ["FETCH [1, 2, 3, 4, 5, 6]", "FETCH [4]", "SEARCH 4:4"]
    assert "did not send" in core.quarantined()[4]
    assert core.quarantine.list("m")[0].complete is False
    assert sorted(uid for _, uid in core.live()) == [1, 2, 3, 5, 6]
    assert result.quarantined == 1
    state = core.states.get("INBOX")
    assert state.last_uid == 6 and state.known_uids == "1:6"


def test_a_refused_batch_is_halved_down_to_the_one_message_it_quarantines(tmp_path: Path) -> None:
    server = MemoryServer(list(range(1, 9)))
    server.refuses.add(6)
    core = Core(tmp_path, server)
    core.sync.run("INBOX")

    assert core.fetches() == [
        "FETCH [1, 2, 3, 4, 5, 6, 7, 8]",
        "FETCH [1, 2, 3, 4]", "FETCH [5, 6, 7, 8]",
        "FETCH [5, 6]", "FETCH [5]", "FETCH [6]",
        "FETCH [7, 8]",
    ]
    assert "SERVERBUG" in core.quarantined()[6]
    assert sorted(uid for _, uid in core.live()) == [1, 2, 3, 4, 5, 7, 8]
    assert core.states.get("INBOX").last_uid == 8


def test_a_fetch_that_ran_out_of_time_is_asked_again_one_message_at_a_time(tmp_path: Path) -> None:
    server = MemoryServer(list(range(1, 7)))
    server.stalls_on = {4: 1}  # the first FETCH holding UID 4 stalls; then the server recovers
    core = Core(tmp_path, server)
    core.sync.run("INBOX")
    assert core.fetches() == ["FETCH [1, 2, 3, 4, 5, 6]"] + [f"FETCH [{uid}]" for uid in range(1, 7)]
    assert core.quarantined() == {}
    assert sorted(uid for _, uid in core.live()) == [1, 2, 3, 4, 5, 6]


def test_a_message_the_server_never_sends_in_time_is_quarantined_and_the_folder_goes_on(tmp_path: Path) -> None:
    server = MemoryServer(list(range(1, 9)))
    server.stalls_on = {3: 99, 6: 99}  # two messages the server stalls on, every time
    core = Core(tmp_path, server)
    core.sync.run("INBOX")

    # Each was asked for twice (in the batch, then alone) and never came: quarantined with the
    # reason, the others stored, the watermark past them all; the next sync asks for nothing.
    assert sorted(core.quarantined()) == [3, 6]
    assert all("did not send it in time" in reason for reason in core.quarantined().values())
    assert sorted(uid for _, uid in core.live()) == [1, 2, 4, 5, 7, 8]
    assert core.states.get("INBOX").last_uid == 8
    asked = len(core.fetches())
    core.sync.run("INBOX")
    assert len(core.fetches()) == asked


def test_every_log_line_of_a_folder_sync_names_its_folder(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    try:
        server = MemoryServer(list(range(1, 9)))
        server.refuses.add(6)  # halved down to the one message the server cannot send
        core = Core(tmp_path, server)
        core.sync.run("Archive/2024")
        del server.messages[2]
        core.sync.run("Archive/2024")  # a message deleted on the server
        server.recreate([1, 2], uidvalidity=8)
        core.sync.run("Archive/2024")  # a new UIDVALIDITY
        core.sync.forget("Archive/2024")  # the folder is gone from the server
    finally:
        configure_logging("WARNING")
    lines = stream.getvalue().splitlines()
    for what in ("refused a batch of 8 of folder", "cannot send UID 6 of folder", "1 message(s) of folder",
                 "UIDVALIDITY of folder", "synced folder"):
        assert any(what in line for line in lines), (what, lines)
    assert [line for line in lines if "'Archive/2024'" not in line] == []


class Crash(Exception):
    pass


def test_a_crash_is_blamed_on_the_message_in_flight_by_a_typed_key(tmp_path: Path) -> None:
    def crash_on_the_third(raw: bytes) -> None:
        if b"Subject: note 3\r\n" in raw:
            raise Crash

    server = MemoryServer([1, 2, 3, 4])
    core = Core(tmp_path, server, fault_hook=crash_on_the_third)
    with pytest.raises(Crash):
        core.sync.run("INBOX")
    assert core.sync.in_flight == MessageKey("INBOX", 7, 3)
    assert {core.sync.in_flight: 1}[MessageKey("INBOX", 7, 3)] == 1  # a supervisor counts it as a key

    # Named poison, it is quarantined on the next pass without being parsed, and the rest is stored.
    core.states.put(core.states.get("INBOX").with_changes(poisoned_uids="3"))
    core.sync.run("INBOX")
    assert core.quarantined() == {3: "crashed the fetcher repeatedly"}
    assert sorted(uid for _, uid in core.live()) == [1, 2, 4]
    assert core.sync.in_flight is None


def _members(protocol: type) -> dict[str, Any]:
    names = set(getattr(protocol, "__annotations__", {})) | {
        name for name, value in vars(protocol).items()
        if not name.startswith("_") and (callable(value) or isinstance(value, property))
    }
    return {name: getattr(protocol, name, None) for name in sorted(names)}


@pytest.mark.parametrize("implementation", [ImapSession, MemoryServer])
def test_the_session_and_the_memory_server_have_every_operation_of_the_port(implementation: type) -> None:
    members = _members(ImapPort)
    assert {"select", "sizes", "fetch_messages", "fetch_headers", "uids_between", "changes_since", "flags",
            "uids", "condstore", "extensions"} == set(members)
    for name, member in members.items():
        if callable(member):
            ours = list(inspect.signature(getattr(implementation, name)).parameters)
            assert ours == list(inspect.signature(member).parameters), name
        elif name != "extensions":  # an attribute set per connection
            assert hasattr(implementation, name), name
