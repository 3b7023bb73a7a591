"""The element store on both backends (SQLite, and PostgreSQL when it can run here): upserts, the
change feed, search, purge, concurrent readers and writers; then SQLite's own bad files and limits.

The tests taking ``store`` run once per backend: they are the contract any backend keeps. The
PostgreSQL ones are skipped when no PostgreSQL or psycopg is installed, unless CI is set (then they fail).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from futurnal.storage.element_store import (
    BadSearchQuery,
    CursorExpired,
    ElementKey,
    SearchFilters,
    decode_element,
    encode_element,
)
from futurnal.storage.sqlite import BadStoreFile, SqliteElementReader, SqliteElementStore
from futurnal.storage.sqlite.schema import SCHEMA_VERSION


def _element(uid: int, folder: str = "INBOX", mailbox: str = "alice", **fields: Any) -> dict[str, Any]:
    element = {"id": f"{mailbox}-{folder}-{uid}", "mailbox": mailbox, "folder": folder, "uidvalidity": 5, "uid": uid,
               "subject": f"subject {uid}", "text": "", "from": [], "to": [], "flags": [], "attachments": [],
               "date": f"2024-03-{uid % 28 + 1:02d}T10:00:00Z", "thread_id": "t", "deleted": False}
    element.update(fields)
    return element


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        opened: Any = SqliteElementStore(tmp_path / "elements.sqlite", tmp_path / "listeners")
    else:
        from futurnal.storage.postgres import PostgresElementStore

        opened = PostgresElementStore(request.getfixturevalue("postgres_url"))
    yield opened
    opened.close()


def _reader(store: Any) -> Any:
    """Another connection to the store ``store`` writes to: a reader."""
    if isinstance(store, SqliteElementStore):
        return SqliteElementReader(store.path, store._listeners)
    from futurnal.storage.postgres import PostgresElementReader

    return PostgresElementReader(store.url)


def _writer(store: Any) -> Any:
    """A second writer of the same store, with a connection of its own."""
    if isinstance(store, SqliteElementStore):
        return SqliteElementStore(store.path, store._listeners)
    from futurnal.storage.postgres import PostgresElementStore

    return PostgresElementStore(store.url)


def _ops(store: Any, since: int | None = None) -> list[tuple[int, str, str | None]]:
    return [(change.seq, change.op, change.id) for change in store.changes(since)]


def test_upserting_the_same_element_again_stores_it_once_and_adds_no_change(store: Any) -> None:
    assert store.upsert_many([_element(1), _element(2)]) == 2
    assert store.upsert_many([_element(2), _element(3)]) == 1
    assert [e["uid"] for e in store.iter_elements("alice")] == [1, 2, 3]
    assert [op[2] for op in _ops(store)] == ["alice-INBOX-1", "alice-INBOX-2", "alice-INBOX-3"]


def test_a_changed_element_replaces_the_stored_one_and_is_a_new_change(store: Any) -> None:
    store.upsert_many([_element(1)])
    store.upsert_many([_element(1, subject="edited")])
    assert store.get("alice-INBOX-1")["subject"] == "edited"
    assert _ops(store) == [(1, "upsert", "alice-INBOX-1"), (2, "upsert", "alice-INBOX-1")]
    assert [hit.subject for hit in store.search("edited")] == ["edited"]
    assert store.search("subject") == []  # the old text left the index


def test_documents_are_kept_exactly_and_read_back_by_another_connection(store: Any) -> None:
    odd = _element(1, subject="déjà vu \u2028 menu", text="line\u2029break \x85 and \x00 nul")
    plain = _element(2, subject="見積書", text="東京の見積書", size=2**63 - 1)
    assert store.upsert_many([odd, plain]) == 2
    reader = _reader(store)
    try:
        assert reader.get(odd["id"]) == odd and reader.get(plain["id"]) == plain
        assert [e["id"] for e in reader.iter_elements("alice")] == [odd["id"], plain["id"]]
    finally:
        reader.close()
    assert store.upsert_many([odd, plain]) == 0  # read back equal, so nothing new for the feed


def test_what_the_fast_encoder_refuses_is_written_by_the_standard_library_and_read_back() -> None:
    element = {"id": "x", "subject": "caf\udce9"}  # a lone surrogate, which orjson refuses
    text = encode_element(element)
    assert decode_element(text) == element, text


def test_the_same_element_twice_in_one_batch_ends_as_the_later_one(store: Any) -> None:
    batch = [_element(uid, subject=f"first {uid}") for uid in range(1, 41)]
    batch += [_element(uid, subject=f"second {uid}") for uid in range(1, 41)]
    store.upsert_many(batch)
    assert [e["subject"] for e in store.iter_elements("alice")] == [f"second {uid}" for uid in range(1, 41)]


def test_flag_updates_change_only_what_differs(store: Any) -> None:
    store.upsert_many([_element(1, flags=["\\Seen"]), _element(2)])
    key1, key2, missing = (ElementKey("alice", "INBOX", 5, uid) for uid in (1, 2, 99))
    assert store.update_flags([(key1, ["\\Seen"]), (key2, ["\\Flagged"]), (missing, ["\\Seen"])]) == 1
    assert [e["flags"] for e in store.iter_elements("alice")] == [["\\Seen"], ["\\Flagged"]]
    assert _ops(store, since=2) == [(3, "upsert", "alice-INBOX-2")]


def test_tombstones_keep_the_element_say_when_and_leave_search(store: Any) -> None:
    store.upsert_many([_element(1, text="unicorn"), _element(2, text="unicorn")])
    assert store.mark_deleted([ElementKey("alice", "INBOX", 5, 2)], "2026-01-01T00:00:00Z") == 1
    assert store.mark_deleted([ElementKey("alice", "INBOX", 5, 2)], "2026-01-02T00:00:00Z") == 0
    elements = list(store.iter_elements("alice"))
    assert [e["deleted"] for e in elements] == [False, True]
    assert elements[1]["deleted_at"] == "2026-01-01T00:00:00Z"
    assert [e["uid"] for e in store.iter_elements("alice", include_deleted=False)] == [1]
    assert [hit.id for hit in store.search("unicorn")] == ["alice-INBOX-1"]
    (change,) = store.changes(since=2)
    assert (change.op, change.element["deleted"]) == ("delete", True)


def test_attachment_results_are_applied_once_and_make_the_text_searchable(store: Any) -> None:
    pending = {"filename": "report.pdf", "content_type": "application/pdf", "size": 9, "sha256": "a" * 64,
               "status": "pending", "text": None, "blob": None}
    store.upsert_many([_element(1, attachments=[pending])])
    key, ok = ElementKey("alice", "INBOX", 5, 1), {"index": 0, "sha256": "a" * 64, "status": "ok", "text": "zeppelin"}
    assert store.search("zeppelin") == []
    assert store.update_attachments([(key, [{**ok, "sha256": "b" * 64}])]) == 0  # another file's result
    assert store.update_attachments([(key, [ok])]) == 1
    assert store.update_attachments([(key, [ok])]) == 0
    assert store.get("alice-INBOX-1")["attachments"][0]["text"] == "zeppelin"
    assert [hit.id for hit in store.search("zeppelin")] == ["alice-INBOX-1"]
    assert [op[1] for op in _ops(store)] == ["upsert", "upsert"]


def test_the_sequence_grows_by_one_per_change_without_gaps(store: Any) -> None:
    store.upsert_many([_element(uid) for uid in range(1, 6)])
    store.update_flags([(ElementKey("alice", "INBOX", 5, 3), ["\\Seen"])])
    store.mark_deleted([ElementKey("alice", "INBOX", 5, 4)], "2026-01-01T00:00:00Z")
    store.upsert_many([_element(6)])
    seqs = [seq for seq, _, _ in _ops(store)]
    assert seqs == list(range(1, 9)) and store.last_seq() == 8
    assert [seq for seq, _, _ in _ops(store, since=5)] == [6, 7, 8]
    assert store.changes(since=8) == []
    assert [c.seq for c in store.changes(since=0, limit=2)] == [1, 2]


def test_a_purge_leaves_one_purge_change_and_expires_older_cursors(store: Any, tmp_path: Path) -> None:
    store.upsert_many([_element(1, mailbox="bob")])
    store.upsert_many([_element(uid, subject=f"Quarterly xylophone {uid}") for uid in range(1, 4)])
    store.upsert_many([_element(2, mailbox="bob")])
    assert store.remove_mailbox("alice") == 3
    assert list(store.iter_elements("alice")) == [] and store.search("xylophone") == []
    assert _ops(store, since=4) == [(5, "upsert", "bob-INBOX-2"), (6, "purge", None)]
    (purge,) = store.changes(since=5)
    assert (purge.mailbox, purge.json_line()) == ("alice", '{"seq": 6, "op": "purge", "mailbox": "alice"}')
    with pytest.raises(CursorExpired) as expired:
        store.changes(since=3)
    assert expired.value.oldest == 4
    assert [c.id for c in store.changes()] == ["bob-INBOX-1", "bob-INBOX-2", None]  # from the oldest served
    for name in ("elements.sqlite", "elements.sqlite-wal") if isinstance(store, SqliteElementStore) else ():
        path = tmp_path / name
        assert not path.exists() or b"xylophone" not in path.read_bytes().lower()


def test_a_reader_in_another_connection_sees_every_commit_in_order_while_the_writer_writes(store: Any) -> None:
    seen: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def follow() -> None:
        reader, cursor = _reader(store), 0
        try:
            while not (done.is_set() and reader.last_seq() == cursor):
                batch = reader.changes(cursor)
                seen.extend(change.seq for change in batch)
                cursor = batch[-1].seq if batch else cursor
                if not batch:
                    reader.wait_for_changes(cursor, 1.0)
        except BaseException as exc:  # reported below: "database is locked" would land here
            errors.append(exc)
        finally:
            reader.close()

    thread = threading.Thread(target=follow)
    thread.start()
    for batch in range(50):
        store.upsert_many([_element(batch * 10 + uid) for uid in range(1, 11)])
    done.set()
    thread.join(timeout=60)
    assert not thread.is_alive() and errors == []
    assert seen == list(range(1, 501))


def test_a_follower_is_woken_by_a_commit_rather_than_its_timeout(store: Any, tmp_path: Path) -> None:
    reader = _reader(store)
    woke = threading.Event()
    try:
        assert reader.wait_for_changes(0, 0.05) is False
        waiter = threading.Thread(target=lambda: reader.wait_for_changes(0, 30.0) and woke.set())
        waiter.start()
        store.upsert_many([_element(1)])
        waiter.join(timeout=10)  # far sooner than the 30 s it would sleep without the bell
        assert woke.is_set()
    finally:
        reader.close()
    if isinstance(store, SqliteElementStore):
        assert list((tmp_path / "listeners").iterdir()) == []  # a closed listener leaves nothing behind


def test_search_ranks_filters_and_takes_words_phrases_prefixes_and_addresses(store: Any) -> None:
    bob = [{"name": "Bob Builder", "address": "bob@example.com"}]
    store.upsert_many([
        _element(1, subject="Invoice for March", text="please pay", **{"from": bob}),
        _element(2, subject="Lunch", text="the invoice is attached, café on friday"),
        _element(3, folder="Archive", subject="Old invoice", date="2023-01-01T00:00:00Z"),
    ])
    assert [hit.id for hit in store.search("invoice")][-1] == "alice-INBOX-2"  # the subject counts most
    assert {hit.id for hit in store.search("invoice", SearchFilters(folder="Archive"))} == {"alice-Archive-3"}
    assert {hit.id for hit in store.search("invoice", SearchFilters(after="2024-01-01"))} == {
        "alice-INBOX-1", "alice-INBOX-2"}
    assert {hit.id for hit in store.search("invoice", SearchFilters(before="2024-01-01"))} == {"alice-Archive-3"}
    assert [hit.id for hit in store.search("invoice", SearchFilters(sender="BOB@example"))] == ["alice-INBOX-1"]
    assert [hit.id for hit in store.search("bob@example.com")] == ["alice-INBOX-1"]
    assert [hit.id for hit in store.search('"invoice is attached"')] == ["alice-INBOX-2"]
    assert [hit.id for hit in store.search("cafe")] == ["alice-INBOX-2"]  # accents do not matter
    assert [hit.id for hit in store.search("invo* NOT lunch NOT old")] == ["alice-INBOX-1"]
    assert [hit.id for hit in store.search("subject:lunch OR subject:march", limit=5)] != []
    hit = store.search("pay")[0]
    assert (hit.sender, hit.subject, hit.snippet) == ("Bob Builder <bob@example.com>", "Invoice for March",
                                                      "please [pay]")
    with pytest.raises(BadSearchQuery):
        store.search('"never closed')
    with pytest.raises(BadSearchQuery):
        store.search("invoice", SearchFilters(after="next tuesday"))


def test_search_finds_japanese_and_chinese_words_inside_unspaced_text(store: Any) -> None:
    store.upsert_many([
        _element(1, subject="会議の予定", text="明日は東京で会議があります。"),
        _element(2, text="我们下周在北京见面"),
        _element(3, text="京都の東にある"),  # 東 and 京 apart: not 東京
    ])
    assert [hit.id for hit in store.search("東京")] == ["alice-INBOX-1"]
    assert [hit.id for hit in store.search("北京")] == ["alice-INBOX-2"]
    assert store.search("東京")[0].snippet == "明日は[東京]で会議があります。"


def test_a_thread_is_its_live_elements_oldest_first(store: Any) -> None:
    store.upsert_many([_element(1, thread_id="x", date="2024-02-02T00:00:00Z"),
                       _element(2, thread_id="x", date="2024-01-01T00:00:00Z"), _element(3, thread_id="y")])
    assert [e["uid"] for e in store.thread("x")] == [2, 1]
    store.mark_deleted([ElementKey("alice", "INBOX", 5, 2)], "2026-01-01T00:00:00Z")
    assert [e["uid"] for e in store.thread("x")] == [1]


def test_consumers_keep_their_cursor_and_show_their_lag(store: Any) -> None:
    store.upsert_many([_element(uid) for uid in range(1, 4)])
    assert store.consumer_cursor("indexer") is None
    store.save_consumer_cursor("indexer", 2)
    (consumer,) = store.consumers()
    assert (consumer.name, consumer.cursor, consumer.lag) == ("indexer", 2, 1)
    assert store.remove_consumer("indexer") and not store.remove_consumer("indexer")


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"this is a text file, not a database\n" * 10, "not a SQLite database"),
     (None, "made by another program"), ("newer", "newer than this version")],
)
def test_a_foreign_corrupt_or_newer_file_is_refused_and_left_untouched(
    tmp_path: Path, content: bytes | str | None, message: str
) -> None:
    import sqlite3

    path = tmp_path / "elements.sqlite"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        other = sqlite3.connect(path)
        if content == "newer":
            SqliteElementStore(path, tmp_path / "listeners").close()
            other.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        else:
            other.execute("CREATE TABLE notes (text TEXT)")
        other.commit()
        other.close()
    before = path.read_bytes()
    with pytest.raises(BadStoreFile, match=message) as refused:
        SqliteElementStore(path, tmp_path / "listeners")
    assert str(path) in str(refused.value)
    assert path.read_bytes() == before


def test_a_query_matching_very_many_ranks_the_newest_matches_of_its_filters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from futurnal.storage.sqlite import reader

    store = SqliteElementStore(tmp_path / "elements.sqlite", tmp_path / "listeners")

    monkeypatch.setattr(reader, "RANKED_MATCHES", 3)
    store.upsert_many([_element(1, subject="apple apple apple", mailbox="bob")])  # the best match, stored first
    store.upsert_many([_element(uid, text=f"an apple and {uid} other words") for uid in range(2, 7)])
    newest = store.search("apple", limit=10)
    assert {hit.id for hit in newest} == {"alice-INBOX-4", "alice-INBOX-5", "alice-INBOX-6"}
    assert [hit.id for hit in store.search("apple", SearchFilters(mailbox="bob"))] == ["bob-INBOX-1"]
    monkeypatch.setattr(reader, "RANKED_MATCHES", 100)
    assert store.search("apple", limit=1)[0].id == "bob-INBOX-1"  # every match ranked: the best one wins
    store.close()


def test_two_writers_at_once_leave_a_feed_without_gap_or_repeat_for_a_reader_polling_meanwhile(store: Any) -> None:
    """Writers in two connections commit interleaved; a reader reading ``changes(cursor)`` all the
    while must never see a number after one it skipped (PostgreSQL's sequences commit out of order,
    which is why its store numbers changes in commit order)."""
    other = _writer(store)
    seen: list[int] = []
    errors: list[BaseException] = []
    writers_done = threading.Event()

    def write(writer: Any, mailbox: str) -> None:
        try:
            for batch in range(25):
                writer.upsert_many([_element(batch * 4 + uid, mailbox=mailbox) for uid in range(1, 5)])
                writer.update_flags([(ElementKey(mailbox, "INBOX", 5, batch * 4 + 1), ["\\Seen"])])
        except BaseException as exc:
            errors.append(exc)

    def follow() -> None:
        reader, cursor = _reader(store), 0
        try:
            while True:
                finished = writers_done.is_set()
                batch = reader.changes(cursor)
                seen.extend(change.seq for change in batch)
                cursor = batch[-1].seq if batch else cursor
                if finished and not batch:
                    return
        except BaseException as exc:
            errors.append(exc)
        finally:
            reader.close()

    threads = [threading.Thread(target=write, args=(store, "alice")), threading.Thread(target=write, args=(other, "bob"))]
    follower = threading.Thread(target=follow)
    follower.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    writers_done.set()
    follower.join(timeout=60)
    other.close()
    assert not follower.is_alive() and errors == []
    assert seen == list(range(1, 2 * 25 * 5 + 1))
    assert store.last_seq() == 250 and store.count() == 200


def test_a_failed_write_gives_its_numbers_back(store: Any) -> None:
    store.upsert_many([_element(1)])
    with pytest.raises(KeyError):
        store.upsert_many([_element(2), {"id": "broken"}])  # no mailbox: fails midway, rolled back
    store.upsert_many([_element(3)])
    assert _ops(store) == [(1, "upsert", "alice-INBOX-1"), (2, "upsert", "alice-INBOX-3")]


def test_postgres_schema_newer_than_the_code_is_refused_and_left_untouched(postgres_url: str) -> None:
    import psycopg

    from futurnal.storage.postgres import SCHEMA_VERSION as PG_VERSION
    from futurnal.storage.postgres import BadStoreDatabase, PostgresElementStore

    PostgresElementStore(postgres_url).close()
    PostgresElementStore(postgres_url).close()  # the second open finds the schema in place
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("UPDATE futurnal_schema SET version = %s", (PG_VERSION + 1,))
    with pytest.raises(BadStoreDatabase, match="newer than this version"):
        PostgresElementStore(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as db:
        assert db.execute("SELECT version FROM futurnal_schema").fetchone() == (PG_VERSION + 1,)


def test_a_version_1_postgres_database_is_migrated_in_place_keeping_its_elements(postgres_url: str) -> None:
    """Version 1 had the element store alone; version 2 adds the control plane's tables."""
    import psycopg

    from futurnal.storage.postgres import SCHEMA_VERSION as PG_VERSION
    from futurnal.storage.postgres import PostgresElementStore

    with PostgresElementStore(postgres_url) as store:
        store.upsert_many([_element(1)])
    with psycopg.connect(postgres_url, autocommit=True) as db:  # back to what version 1 made
        db.execute("DROP TABLE documents, audit_log, processes, mailbox_leases, quarantine")
        db.execute("UPDATE futurnal_schema SET version = 1")
    with PostgresElementStore(postgres_url) as store:
        assert store.get("alice-INBOX-1") is not None and store.last_seq() == 1
    with psycopg.connect(postgres_url, autocommit=True) as db:
        assert db.execute("SELECT version FROM futurnal_schema").fetchone() == (PG_VERSION,)
        assert db.execute("SELECT count(*) FROM mailbox_leases").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)


def test_postgres_tables_of_another_program_are_refused(postgres_url: str) -> None:
    import psycopg

    from futurnal.storage.postgres import BadStoreDatabase, PostgresElementReader

    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("CREATE TABLE elements (x text)")
    with pytest.raises(BadStoreDatabase, match="did not make"):
        PostgresElementReader(postgres_url)


@pytest.mark.parametrize(("query", "tsquery"), [
    ("invoice", "'invoice'"),
    ("Café lunch", "'cafe' & 'lunch'"),
    ('"invoice is attached"', "('invoice' <-> 'is' <-> 'attached')"),
    ("invo* NOT lunch", "'invo':* & ! 'lunch'"),
    ("subject:lunch OR (march AND body:pay*)", "'lunch':A | ( 'march' & 'pay':*C )"),
    ("bob@example.com", "('bob' <-> 'example' <-> 'com')"),
    ('subject:"lunch on" people:bob', "('lunch':A <-> 'on':A) & 'bob':B"),
    ("東京", "('東' <-> '京')"),
])
def test_the_query_syntax_becomes_a_tsquery(query: str, tsquery: str) -> None:
    from futurnal.storage.postgres.search_text import ts_query

    assert ts_query(query) == tsquery


@pytest.mark.parametrize("query", ['"never closed', "", "OR lunch", "lunch AND"])
def test_a_query_postgres_cannot_read_is_a_bad_search_query(query: str) -> None:
    from futurnal.storage.postgres.search_text import ts_query

    with pytest.raises(BadSearchQuery):
        ts_query(query)
