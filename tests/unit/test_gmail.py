"""Gmail (X-GM-EXT-1), unit-level on recorded server responses: no local server speaks it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imapclient.response_parser import parse_fetch_response

from futurnal.element.build import build_element, gmail_thread_id
from futurnal.imap.fetched import FetchAnswer, FetchedMessage, fetched_message
from futurnal.imap.session import FolderStatus
from futurnal.imap.uidset import UidSet
from futurnal.parse.parser import parse_message
from futurnal.storage.gmail_index import GmailMessageIndex
from futurnal.storage.quarantine import QuarantineStore
from futurnal.storage.sqlite import SqliteElementStore
from futurnal.storage.sync_state import FolderStateStore
from futurnal.sync.folder_sync import FolderSync
from tests.integration.sync_harness import DirectSink

BODY_A = b"From: Bob <bob@example.org>\r\nSubject: Plans\r\nMessage-ID: <a@example.org>\r\n\r\nHello\r\n"
BODY_B = b"From: Al <al@example.org>\r\nSubject: Re: Plans\r\nMessage-ID: <b@example.org>\r\n\r\nHi\r\n"


def recorded(seq: int, uid: int, msgid: str, thrid: str, labels: bytes, body: bytes) -> list[Any]:
    """One FETCH answer the way imaplib hands it over (a literal is a (prefix, bytes) pair)."""
    prefix = (
        f"{seq} (X-GM-THRID {thrid} X-GM-MSGID {msgid} X-GM-LABELS (".encode() + labels
        + f") UID {uid} RFC822.SIZE {len(body)} FLAGS (\\Seen) "
        f'INTERNALDATE "17-Jul-2025 02:44:25 -0700" BODY[] {{{len(body)}}}'.encode()
    )
    return [(prefix, body), b")"]


def answers(*items: list[Any]) -> dict[int, FetchedMessage]:
    parsed = parse_fetch_response([part for item in items for part in item], False, True)
    return {uid: message for uid, data in parsed.items() if (message := fetched_message(uid, data))}


def test_gmail_ids_and_labels_are_read_from_the_fetch_answer() -> None:
    (message,) = answers(
        recorded(1, 11, "1278455344230334865", "1278455344230334000", b'"\\\\Important" "\\\\Sent" Work &AMk-t&AOk-', BODY_A)
    ).values()
    assert message.gmail is not None
    assert message.gmail.msgid == "1278455344230334865"
    assert message.gmail.thrid == "1278455344230334000"
    assert message.gmail.labels == ("Work", "\\Important", "\\Sent", "Été")
    assert message.flags == ("\\Seen",) and message.raw == BODY_A


def test_gmail_elements_take_labels_and_gmail_threading() -> None:
    fetched = answers(
        recorded(1, 11, "100", "900", b"Work", BODY_A),
        recorded(2, 12, "101", "900", b'"\\\\Inbox"', BODY_B),  # no References: header threading would split
    )
    elements = [
        build_element(parse_message(m.raw), m, mailbox="g", folder="[Gmail]/All Mail", uidvalidity=3)
        for m in fetched.values()
    ]
    assert [e["labels"] for e in elements] == [["Work"], ["\\Inbox"]]
    assert {e["thread_id"] for e in elements} == {gmail_thread_id("900")}
    assert [e["gmail_msgid"] for e in elements] == ["100", "101"]


class ReplaySession:
    """Serves recorded Gmail folders to FolderSync: the only stand-in for IMAP in this suite,
    because no local server implements X-GM-EXT-1."""

    extensions: frozenset[str] = frozenset()
    condstore = qresync = False
    gmail = True

    def __init__(self, folders: dict[str, tuple[int, dict[int, FetchedMessage]]]) -> None:
        self._folders = folders
        self._current = ""

    def select(self, folder: str, *, read_write: bool = False) -> FolderStatus:
        self._current = folder
        validity, messages = self._folders[folder]
        return FolderStatus(folder, validity, max(messages) + 1, len(messages), None)

    def _messages(self) -> dict[int, FetchedMessage]:
        return self._folders[self._current][1]

    def sizes(self, criteria: str) -> dict[int, int]:
        low, _, high = criteria.partition(":")
        top = max(self._messages()) if high in ("", "*") else int(high)
        return {uid: m.size for uid, m in self._messages().items() if int(low) <= uid <= top}

    def fetch_messages(self, uids: Any, expected_bytes: int = 0) -> FetchAnswer:
        return FetchAnswer([self._messages()[uid] for uid in sorted(uids) if uid in self._messages()], [], {})

    def flags(self, criteria: str) -> dict[int, tuple[str, ...]]:
        return {uid: m.flags for uid, m in self._messages().items()}

    def uids(self, up_to_uid: int) -> UidSet:
        return UidSet.of(uid for uid in self._messages() if uid <= up_to_uid)


def test_a_message_under_several_labels_is_ingested_once(tmp_path: Path) -> None:
    shared = recorded(1, 500, "777", "777", b"Work", BODY_A)
    all_mail = answers(shared, recorded(2, 501, "778", "778", b"", BODY_B))
    work_label = answers(recorded(1, 40, "777", "777", b"Work", BODY_A))
    session = ReplaySession({"[Gmail]/All Mail": (3, all_mail), "Work": (9, work_label)})
    store = SqliteElementStore(tmp_path / "elements.sqlite", tmp_path / "feed-listeners")
    states = FolderStateStore(tmp_path / "state.json")
    sync = FolderSync(
        mailbox="g", session=session, states=states, sink=DirectSink(store),  # type: ignore[arg-type]
        quarantine=QuarantineStore(tmp_path / "q"), gmail_index=GmailMessageIndex(tmp_path / "index"),
    )
    sync.run("[Gmail]/All Mail")
    work = sync.run("Work")
    assert work.fetched == 1
    elements = list(store.iter_elements("g"))
    assert sorted(e["gmail_msgid"] for e in elements) == ["777", "778"]  # 777 once, not twice
    assert states.get("Work").known_uids == "40"  # the duplicate is known, so not fetched again
    assert sync.run("Work").fetched == 0
    # Re-fetching the same folder (after a crash, say) still writes its own element: idempotent.
    states.put(states.get("[Gmail]/All Mail").with_changes(last_uid=0, known_uids="", uidnext=None))
    again = sync.run("[Gmail]/All Mail")
    assert again.fetched == 2 and len(list(store.iter_elements("g"))) == 2
