"""The build step alone: a parsed batch becomes elements, attachment work and quarantine entries,
with no sink, no watermark and no IMAP involved."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from futurnal.imap.fetched import FetchedMessage, GmailAttributes
from futurnal.imap.uidset import UidSet
from futurnal.logs.configure import configure_logging
from futurnal.parse.parse_pool import ParseBatch, ParseFailure, ParseOutcome, ParsePool
from futurnal.parse.parser import parse_message
from futurnal.storage.gmail_index import GmailMessageIndex
from futurnal.sync.batch_elements import (
    BatchElements,
    FetchedBatch,
    ParsingBatch,
    SetAside,
    Undelivered,
    placeholder,
    start_parsing,
)
from futurnal.sync.message_key import MessageKey
from tests.unit.memory_imap import note


def fetched(uid: int, gmail: str | None = None) -> FetchedMessage:
    raw = note(uid)
    attributes = GmailAttributes(gmail, None, ()) if gmail else None
    return FetchedMessage(uid, raw, ("\\Seen",), None, len(raw), attributes)


class Outcomes:
    """Stands for a parse pool's batch: the outcomes it gives, in order, and how many were taken."""

    def __init__(self, outcomes: list[ParseOutcome]) -> None:
        self._outcomes = outcomes
        self.taken = 0

    def outcomes(self) -> Iterator[ParseOutcome]:
        for outcome in self._outcomes:
            self.taken += 1
            yield outcome


def builder(set_aside: list[SetAside], **options: Any) -> BatchElements:
    return BatchElements(mailbox="m", scopes=("metadata", "content"), set_aside=set_aside.append, **options)


def test_every_message_ends_an_element_or_a_quarantine_entry_with_its_reason() -> None:
    entries: list[SetAside] = []
    seen: list[bytes] = []
    batch = FetchedBatch([fetched(1), fetched(2), fetched(3), fetched(4)],
                         [Undelivered(placeholder(5), "the server could not send it: NO")])
    parses = Outcomes([parse_message(note(1)), ParseFailure("parser process died"), parse_message(note(4))])
    build = builder(entries, fault_hook=seen.append)

    log = io.StringIO()
    configure_logging("WARNING", stream=log)
    try:
        built = build.build(ParsingBatch(batch, UidSet.of([3]), cast(ParseBatch, parses)), "INBOX", 9)
    finally:
        configure_logging("WARNING")
    assert "UID 2 of folder 'INBOX' could not be parsed (parser process died); quarantined" in log.getvalue()

    assert [(e["folder"], e["uidvalidity"], e["uid"]) for e in built.elements] == [("INBOX", 9, 1), ("INBOX", 9, 4)]
    assert sorted(built.quarantined) == [2, 3, 5]
    assert [(e.key, e.reason, e.complete) for e in entries] == [
        (MessageKey("INBOX", 9, 5), "the server could not send it: NO", False),
        (MessageKey("INBOX", 9, 2), "parser process died", True),
        (MessageKey("INBOX", 9, 3), "crashed the fetcher repeatedly", True),
    ]
    # The poisoned message is neither parsed nor shown to the fault hook; nothing stays in flight.
    assert parses.taken == 3 and note(3) not in seen and build.in_flight is None
    assert batch.uids == [1, 2, 3, 4, 5]  # all of them become known at the commit
    # The quarantine got the bytes it keeps; the batch holds none once built (memory: two syncs at
    # once held two whole batches of bytes beside their elements).
    assert [e.message.raw for e in entries[1:]] == [note(2), note(3)]
    assert [m.raw for m in batch.messages] == [b""] * 4 and [m.size for m in batch.messages] == [
        len(note(uid)) for uid in (1, 2, 3, 4)]


class Pool:
    """Stands for the parse pool: records what it was given and parses it at once."""

    def __init__(self) -> None:
        self.given: list[bytes] = []

    def submit(self, raws: list[bytes]) -> Outcomes:
        self.given.extend(raws)
        return Outcomes([parse_message(raw) for raw in raws])


def test_poisoned_messages_never_reach_the_parse_pool_and_without_a_pool_parsing_is_done_here() -> None:
    batch = FetchedBatch([fetched(1), fetched(2), fetched(3)], [])
    pool = Pool()
    parsing = start_parsing(batch, UidSet.of([2]), cast(ParsePool, pool))
    assert pool.given == [note(1), note(3)]
    built = builder([]).build(parsing, "INBOX", 9)
    assert [e["uid"] for e in built.elements] == [1, 3] and built.quarantined == [2]

    with pytest.raises(RuntimeError, match="built already"):  # the first build let its bytes go
        builder([]).build(parsing, "INBOX", 9)
    batch = FetchedBatch([fetched(1), fetched(2), fetched(3)], [])
    here = start_parsing(batch, UidSet.of([2]), None)
    assert here.parses is None
    assert [e["uid"] for e in builder([]).build(here, "INBOX", 9).elements] == [1, 3]


def test_a_gmail_message_is_built_once_under_the_folder_that_first_had_it(tmp_path: Path) -> None:
    index = GmailMessageIndex(tmp_path / "gmail")
    entries: list[SetAside] = []
    build = builder(entries, gmail_index=index)
    first = build.build(ParsingBatch(FetchedBatch([fetched(1, gmail="77")], []), UidSet(), None), "[Gmail]/All Mail", 3)
    again = build.build(ParsingBatch(FetchedBatch([fetched(8, gmail="77")], []), UidSet(), None), "Work", 4)
    assert [e["uid"] for e in first.elements] == [1]
    assert again.elements == [] and again.quarantined == [] and entries == []
