"""CPython's own e-mail test messages: every one becomes a schema-valid element (README beside them)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from futurnal.element.build import build_element
from futurnal.imap.fetched import FetchedMessage
from futurnal.parse.parser import parse_message

from ..element_schema import assert_valid_element

CORPUS = Path(__file__).resolve().parents[1] / "data" / "cpython_email"
MESSAGES = sorted(CORPUS.glob("msg_*.txt"))


def test_the_corpus_is_all_there() -> None:
    assert len(MESSAGES) == 48  # msg_01.txt to msg_47.txt, and msg_12a.txt


@pytest.mark.parametrize("path", MESSAGES, ids=[p.name for p in MESSAGES])
def test_every_message_becomes_a_schema_valid_element(path: Path) -> None:
    raw = path.read_bytes()
    fetched = FetchedMessage(1, raw, ("\\Seen",), datetime(2026, 3, 3, tzinfo=UTC), len(raw))
    element = build_element(parse_message(raw), fetched, mailbox="alice", folder="INBOX", uidvalidity=1)
    assert_valid_element(element)
    assert element["size"] == len(raw)
