"""The incremental sync against a real Dovecot, with and without CONDSTORE / QRESYNC."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from futurnal.demo.dovecot import DovecotOptions

from .sync_harness import PROFILES, ServerClient, SyncHarness


@pytest.fixture(params=sorted(PROFILES))
def profile(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path, profile: str) -> Iterator[tuple[SyncHarness, ServerClient]]:
    if profile == "cyrus":
        server = request.getfixturevalue("cyrus")
    else:
        server = request.getfixturevalue("dovecot_factory")(DovecotOptions(capabilities=PROFILES[profile]))
        server.start()
    harness, other = SyncHarness(server, tmp_path), ServerClient(server)
    yield harness, other
    harness.close()
    other.close()


def test_the_extensions_in_use_match_what_the_server_offers(world: Any, profile: str) -> None:
    harness, _ = world
    expected = {"qresync": {"CONDSTORE", "QRESYNC"}, "condstore-only": {"CONDSTORE"}, "no-extensions": set(),
                "cyrus": {"CONDSTORE", "QRESYNC"}}
    assert set(harness.connect().extensions) == expected[profile]


def test_flag_changes_reach_the_stored_elements(world: Any) -> None:
    harness, other = world
    other.append(10)
    harness.sync()
    other.set_flags([2, 5], ["\\Seen", "\\Flagged"])
    other.set_flags([7], ["$Work"])
    result = harness.sync()
    assert result.flags_changed == 3 and result.fetched == 0
    assert harness.stored() == other.state()


def test_deleted_messages_become_tombstones(world: Any) -> None:
    harness, other = world
    other.append(12)
    harness.sync()
    other.expunge([3, 4, 11])
    result = harness.sync()
    assert result.deleted == 3
    assert harness.stored() == other.state()
    tombstones = [e for e in harness.store.iter_elements("alice", "INBOX") if e.get("deleted")]
    assert sorted(e["uid"] for e in tombstones) == [3, 4, 11]
    assert harness.states.get("INBOX").known_uids == "1:2,5:10,12"


def test_an_expunge_of_many_with_new_mail_and_flags_in_the_same_sync(world: Any) -> None:
    harness, other = world
    other.append(300)
    harness.sync()
    other.expunge(list(range(1, 300, 2)))  # every other message
    other.append(20, tag="late")
    other.set_flags([2, 298], ["\\Answered"])
    result = harness.sync()
    assert (result.fetched, result.deleted) == (20, 150)
    assert harness.stored() == other.state()


def test_a_recreated_folder_gets_a_new_uidvalidity_and_nothing_is_mixed(world: Any) -> None:
    harness, other = world
    other.recreate("Work")
    other.append(6, folder="Work", tag="old")
    first = harness.sync("Work")
    other.recreate("Work")
    other.append(4, folder="Work", tag="new")
    second = harness.sync("Work")
    assert second.uidvalidity_changed and second.uidvalidity != first.uidvalidity
    assert second.fetched == 4
    assert harness.stored("Work") == other.state("Work")
    assert harness.live_uidvalidities("Work") == {second.uidvalidity}  # the old six are tombstones
    old = [e for e in harness.store.iter_elements("alice", "Work") if e["uidvalidity"] == first.uidvalidity]
    assert len(old) == 6 and all(e["deleted"] for e in old)


def test_a_no_change_resync_is_one_command(world: Any, profile: str) -> None:
    harness, other = world
    other.append(50)
    harness.sync()
    result = harness.sync()
    assert result.fetched == result.deleted == result.flags_changed == 0
    if profile == "no-extensions":
        # Without CONDSTORE nothing on SELECT reveals a flag change: one FLAGS fetch is the price.
        assert harness.commands == [b"EXAMINE", b"UID"]
    else:
        assert result.unchanged and harness.commands == [b"EXAMINE"]


OPERATIONS = ("append", "flag", "expunge", "recreate", "sync")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_server_changes_interleaved_with_syncs_leave_store_equal_to_server(
    world: Any, seed: int
) -> None:
    harness, other = world
    rng = random.Random(seed)
    other.recreate("Mixed")
    for step in range(25):
        operation = rng.choice(OPERATIONS)
        uids = sorted(other.state("Mixed"))
        if operation == "append":
            other.append(rng.randint(1, 15), folder="Mixed", tag=f"s{seed}-{step}")
        elif operation == "flag" and uids:
            chosen = rng.sample(uids, min(len(uids), rng.randint(1, 5)))
            other.set_flags(chosen, rng.sample(["\\Seen", "\\Flagged", "\\Answered", "$Later"], 2), folder="Mixed")
        elif operation == "expunge" and uids:
            other.expunge(rng.sample(uids, min(len(uids), rng.randint(1, 8))), folder="Mixed")
        elif operation == "recreate" and rng.random() < 0.3:
            other.recreate("Mixed")
            other.append(rng.randint(0, 5), folder="Mixed", tag=f"r{seed}-{step}")
        harness.sync("Mixed", limits=_small_batches())
        assert harness.stored("Mixed") == other.state("Mixed"), f"step {step} ({operation})"
        assert len(harness.live_uidvalidities("Mixed")) <= 1


def _small_batches() -> Any:
    from futurnal.sync.fetch_plan import BatchLimits

    return BatchLimits(max_messages=4, window_uids=8)


def test_sessions_of_a_mailbox_share_its_connection_budget(dovecot: Any) -> None:
    from futurnal.imap.connection_budget import ConnectionBudget
    from futurnal.imap.errors import AuthenticationFailed, ConnectionFailed
    from futurnal.imap.session import ConnectionSettings, ImapSession

    budget = ConnectionBudget(1)
    settings = ConnectionSettings(dovecot.host, dovecot.imap_port, "alice", security="plain", connect_timeout=0.2)
    first = ImapSession(settings, budget).connect("secret-pw")
    with pytest.raises(ConnectionFailed, match="connection"):
        ImapSession(settings, budget).connect("secret-pw")
    first.close()
    with pytest.raises(AuthenticationFailed):  # a failed login gives its slot back ...
        ImapSession(settings, budget).connect("wrong")
    second = ImapSession(settings, budget).connect("secret-pw")  # ... so this one gets it
    assert budget.in_use == 1
    second.close()
    assert budget.in_use == 0
