from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from futurnal.demo.sample_mailbox import generate_mailbox
from futurnal.element.build import SCHEMA_VERSION, build_element, element_id
from futurnal.imap.fetched import FetchedMessage
from futurnal.parse.parser import parse_message

from ..element_schema import assert_valid_element

RAW = (
    b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\r\nTo: a@example.org\r\nSubject: Hallo\r\n"
    b"Message-ID: <m1@example.org>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0100\r\n\r\nText.\r\n"
)


def _element(flags: tuple[str, ...] = ("\\Seen",), uid: int = 4) -> dict[str, object]:
    fetched = FetchedMessage(uid, RAW, flags, datetime(2026, 3, 3, 11, 0, tzinfo=timezone(timedelta(hours=2))), 321)
    return build_element(parse_message(RAW), fetched, mailbox="alice", folder="INBOX", uidvalidity=9)


def test_element_id_is_stable_and_distinguishes_every_coordinate() -> None:
    base = element_id("alice", "INBOX", 9, 4)
    assert base == element_id("alice", "INBOX", 9, 4)
    others = {element_id("bob", "INBOX", 9, 4), element_id("alice", "Archive", 9, 4),
              element_id("alice", "INBOX", 10, 4), element_id("alice", "INBOX", 9, 5)}
    assert base not in others and len(others) == 4
    assert _element()["id"] == base


def test_element_carries_server_facts_and_decoded_content() -> None:
    element = _element()
    assert element["schema_version"] == SCHEMA_VERSION
    assert (element["mailbox"], element["folder"], element["uidvalidity"], element["uid"]) == ("alice", "INBOX", 9, 4)
    assert element["from"] == [{"name": "Jürgen", "address": "j@example.org"}]
    assert element["date"] == "2026-03-03T09:00:00Z"
    assert element["internal_date"] == "2026-03-03T09:00:00Z"
    assert element["size"] == 321 and element["deleted"] is False
    json.dumps(element)  # everything in it is plain JSON


def test_session_only_recent_flag_is_not_stored() -> None:
    assert _element(flags=("\\Recent", "\\Seen", "$Label1"))["flags"] == ["$Label1", "\\Seen"]


def test_every_element_of_the_sample_mailbox_matches_the_json_schema() -> None:
    for uid, message in enumerate(generate_mailbox(300), start=1):
        fetched = FetchedMessage(uid, message.raw, ("\\Seen", "\\Recent"), None, len(message.raw))
        for scopes in (("metadata", "content", "attachments"), ("metadata",)):
            element = build_element(parse_message(message.raw), fetched, mailbox="alice", folder="INBOX",
                                    uidvalidity=9, scopes=scopes)
            assert_valid_element(element)
    assert_valid_element({**_element(), "deleted": True, "deleted_at": "2026-03-03T09:00:00Z"})
