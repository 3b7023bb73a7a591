"""Mailbox leases in a real PostgreSQL: balance between processes, takeover of expired leases,
fencing of a stale owner's writes, and the local safety margin (storage/postgres/leases.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from futurnal.storage.element_store import ElementKey

pytest.importorskip("psycopg")

from futurnal.storage.postgres import PostgresElementStore  # noqa: E402
from futurnal.storage.postgres.fencing import LeaseLost  # noqa: E402
from futurnal.storage.postgres.leases import LeaseBook  # noqa: E402

MAILBOXES = [f"mb{n:02d}" for n in range(30)]


@pytest.fixture
def books(postgres_url: str) -> Iterator[list[LeaseBook]]:
    opened: list[LeaseBook] = []
    yield opened
    for book in opened:
        book.close()


def _book(books: list[LeaseBook], url: str, **options: Any) -> LeaseBook:
    book = LeaseBook(url, lease_seconds=options.pop("lease_seconds", 3.0), host=f"host{len(books)}", **options)
    books.append(book)
    return book


PENDING = {"filename": "report.pdf", "content_type": "application/pdf", "size": 9, "sha256": "a" * 64,
           "status": "pending", "text": None, "blob": None}


def _element(mailbox: str, uid: int) -> dict[str, Any]:
    return {"id": f"{mailbox}-{uid}", "mailbox": mailbox, "folder": "INBOX", "uidvalidity": 1, "uid": uid,
            "subject": "s", "text": "", "from": [], "to": [], "flags": [], "attachments": [dict(PENDING)],
            "date": "2024-01-01T00:00:00Z", "thread_id": "t", "deleted": False}


def _settle(books: list[LeaseBook], rounds: int = 4) -> None:
    """Heartbeats as the keepers run them: first everyone says it is alive, then rounds of taking,
    each process giving back its surplus."""
    for book in books:
        book.heartbeat(MAILBOXES, take=False)
    for _ in range(rounds):
        for book in books:
            found = book.heartbeat(MAILBOXES)
            book.give_back(found.surplus)


def test_three_processes_share_thirty_mailboxes_ten_each_with_no_mailbox_twice(postgres_url: str,
                                                                                books: list[LeaseBook]) -> None:
    three = [_book(books, postgres_url) for _ in range(3)]
    _settle(three)
    held = [book.held() for book in three]
    assert sorted(len(mailboxes) for mailboxes in held) == [10, 10, 10]
    assert set().union(*held) == set(MAILBOXES)
    holders = three[0].holders()
    assert {holder.host for holder in holders.values()} == {"host0", "host1", "host2"}
    assert all(holders[mailbox].process == three[0].process_id for mailbox in held[0])


def test_a_process_that_joins_late_gets_its_share_from_the_others(postgres_url: str, books: list[LeaseBook]) -> None:
    first = _book(books, postgres_url)
    _settle([first])
    assert len(first.held()) == 30
    second = _book(books, postgres_url)
    _settle([second, first])
    assert sorted([len(first.held()), len(second.held())]) == [15, 15]


def test_expired_leases_are_taken_over_with_a_new_token_and_the_dead_owners_writes_are_refused(
        postgres_url: str, books: list[LeaseBook]) -> None:
    dead, survivor = _book(books, postgres_url), _book(books, postgres_url)
    _settle([dead, survivor])
    lost = sorted(dead.held())
    old_tokens = dead.tokens()
    store = PostgresElementStore(postgres_url, fence=dead)
    try:
        assert store.upsert_many([_element(lost[0], 1)]) == 1  # while its lease holds, it writes
        time.sleep(3.2)  # the dead process no longer renews: its leases expire
        for _ in range(2):
            survivor.heartbeat(MAILBOXES)
        assert survivor.held() == frozenset(MAILBOXES)
        assert all(survivor.tokens()[mailbox] == old_tokens[mailbox] + 1 for mailbox in lost)
        last = store.last_seq()
        with pytest.raises(LeaseLost, match=lost[0]):
            store.upsert_many([_element(lost[0], 2)])
        with pytest.raises(LeaseLost):
            store.mark_deleted([ElementKey(lost[0], "INBOX", 1, 1)], "2024-01-02T00:00:00Z")
        assert store.last_seq() == last and store.get(f"{lost[0]}-2") is None
        # An attachment's text is the exception: it fills in a pending attachment once, whoever
        # extracted it, and moves no watermark, so a queue left on the old owner's host completes.
        ok = {"index": 0, "sha256": "a" * 64, "status": "ok", "text": "quarterly figures"}
        assert store.update_attachments([(ElementKey(lost[0], "INBOX", 1, 1), [ok])]) == 1
        assert store.get(f"{lost[0]}-1") is not None and not store.get(f"{lost[0]}-1")["deleted"]
    finally:
        store.close()
    fenced = PostgresElementStore(postgres_url, fence=survivor)
    try:
        assert fenced.upsert_many([_element(lost[0], 2)]) == 1  # the new owner writes
    finally:
        fenced.close()


def test_a_takeover_passes_over_a_mailbox_while_a_fenced_write_for_it_is_in_flight(
        postgres_url: str, books: list[LeaseBook]) -> None:
    """The fence key-share-locks the lease row: the takeover skips it until the write has
    committed, then takes it, and the old owner's next write is refused."""
    import psycopg

    owner, taker = _book(books, postgres_url), _book(books, postgres_url)
    owner.heartbeat(["mb00"])
    taker.heartbeat(["mb00"], take=False)
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("UPDATE mailbox_leases SET expires_at = now() - interval '1 second' WHERE mailbox = 'mb00'")
        with db.transaction():
            owner.check(db, ["mb00"])  # the write in flight, its lease already expired
            assert taker.heartbeat(["mb00"]).taken == {}
            owner.heartbeat(["mb00"], take=False)  # the owner's renewal is not held up by its own write
        db.execute("UPDATE mailbox_leases SET expires_at = now() - interval '1 second' WHERE mailbox = 'mb00'")
        assert taker.heartbeat(["mb00"]).taken == {"mb00": 2}
        with pytest.raises(LeaseLost):
            owner.check(db, ["mb00"])


def test_two_processes_taking_at_once_never_take_the_same_mailbox(postgres_url: str, books: list[LeaseBook]) -> None:
    racers = [_book(books, postgres_url, max_mailboxes=20) for _ in range(2)]
    for book in racers:
        book.heartbeat(MAILBOXES, take=False)
    barrier = threading.Barrier(2)

    def race(book: LeaseBook) -> None:
        barrier.wait()
        book.heartbeat(MAILBOXES)

    threads = [threading.Thread(target=race, args=(book,)) for book in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    first, second = (book.held() for book in racers)
    assert not first & second
    assert len(first) + len(second) == 30


def test_a_process_is_unsafe_half_a_lease_after_its_last_successful_heartbeat(postgres_url: str,
                                                                            books: list[LeaseBook]) -> None:
    now = [100.0]
    book = _book(books, postgres_url, lease_seconds=20.0, clock=lambda: now[0])
    assert not book.safe()  # no heartbeat yet
    book.heartbeat(["mb00"])
    now[0] += 9.9
    assert book.safe()
    now[0] += 0.2
    assert not book.safe()
    assert book.forget() == frozenset({"mb00"})
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as db, pytest.raises(LeaseLost):
        book.check(db, ["mb00"])  # forgotten leases fence this process's own writes at once
    book.heartbeat(["mb00"], take=False)  # the row it forgot is given back when the database answers
    assert book.holders()["mb00"].process is None


def test_a_clean_stop_gives_every_lease_back_at_once(postgres_url: str, books: list[LeaseBook]) -> None:
    leaving, staying = _book(books, postgres_url, lease_seconds=60.0), _book(books, postgres_url, lease_seconds=60.0)
    _settle([leaving, staying])
    leaving.leave()
    staying.heartbeat(MAILBOXES)
    assert staying.held() == frozenset(MAILBOXES)  # no wait for a 60 s lease to run out


def test_a_lease_shorter_than_three_seconds_is_refused(postgres_url: str) -> None:
    with pytest.raises(ValueError, match="at least 3 seconds"):
        LeaseBook(postgres_url, lease_seconds=1.0)


@pytest.mark.parametrize(("mailboxes", "capacities", "mine", "share"), [
    (30, [None, None, None], None, 10),
    (31, [None, None, None], None, 11),
    (30, [5, None, None], None, 13),       # the capped one runs 5, the other two share 25
    (30, [5, None, None], 5, 5),
    (30, [5, 5, 5], 5, 5),                 # all capped: each its cap, the rest wait for room
    (30, [40, None], 40, 15),              # a cap above the even share changes nothing
    (0, [None], None, 0),
])
def test_a_fair_share_leaves_no_mailbox_unowned_while_a_process_has_room(
        mailboxes: int, capacities: list[int | None], mine: int | None, share: int) -> None:
    from futurnal.storage.postgres.leases import fair_share

    assert fair_share(mailboxes, capacities, mine) == share


def test_a_capped_process_leaves_the_rest_to_the_others(postgres_url: str, books: list[LeaseBook]) -> None:
    small, big = _book(books, postgres_url, max_mailboxes=4), _book(books, postgres_url)
    _settle([small, big])
    assert (len(small.held()), len(big.held())) == (4, 26)


def test_a_heartbeat_that_ends_after_the_watchdog_gave_up_installs_nothing_and_gives_back(
        postgres_url: str, books: list[LeaseBook]) -> None:
    """A slow heartbeat must not revive leases whose mailboxes the watchdog stopped meanwhile:
    they would be renewed forever and run nowhere."""
    book = _book(books, postgres_url)
    book.heartbeat(["mb00", "mb01"])
    assert book.held() == frozenset({"mb00", "mb01"})

    class ForgottenMidway(list[str]):
        """The registered mailboxes, read inside the heartbeat's transaction: the watchdog fires then."""

        fired = False

        def __iter__(self) -> Any:
            if not ForgottenMidway.fired:
                ForgottenMidway.fired = True
                book.forget()
            return super().__iter__()

    found = book.heartbeat(ForgottenMidway(["mb00", "mb01"]))
    assert found.taken == {} and book.held() == frozenset()
    assert {holder.process for holder in book.holders().values()} == {None}
    book.heartbeat(["mb00", "mb01"])  # the next one takes them again, to be run
    assert book.held() == frozenset({"mb00", "mb01"})


def test_a_mailbox_being_removed_is_taken_from_its_owner_and_by_no_one_else(
        postgres_url: str, books: list[LeaseBook]) -> None:
    from futurnal.storage.postgres.control import SharedControl

    owner, other = _book(books, postgres_url), _book(books, postgres_url)
    owner.heartbeat(["mb00"])
    other.heartbeat(["mb00"], take=False)
    store = PostgresElementStore(postgres_url, fence=owner)
    try:
        assert store.upsert_many([_element("mb00", 1)]) == 1
        with SharedControl(postgres_url) as control:
            control.retire_lease("mb00")  # what imap remove does first, from any host
            with pytest.raises(LeaseLost):
                store.upsert_many([_element("mb00", 2)])
            assert other.heartbeat(["mb00"]).taken == {}  # still registered, but no one takes it
            assert owner.heartbeat(["mb00"]).lost == ("mb00",)
            control.drop_lease("mb00")
    finally:
        store.close()


def test_the_server_drops_a_writer_cut_off_mid_transaction_within_seconds_not_hours(postgres_url: str) -> None:
    """Client and server both give up on a silent peer, and the server ends a write left idle, so
    its locks (the feed's counter, a lease row) go with it."""
    store = PostgresElementStore(postgres_url)
    try:
        shown = {name: store._connection.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                 for name in ("idle_in_transaction_session_timeout", "tcp_user_timeout", "tcp_keepalives_idle")}
    finally:
        store.close()
    assert shown == {"idle_in_transaction_session_timeout": "20s", "tcp_user_timeout": "10000",
                     "tcp_keepalives_idle": "5"}
