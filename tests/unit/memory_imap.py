"""A folder kept in memory behind the sync core's IMAP port, and sinks a test can watch.

``MemoryServer`` answers :class:`futurnal.sync.imap_port.ImapPort` the way ``ImapSession`` does,
with the failures a test switches on, so the sync core's decisions can be checked without a real
server. ``WatchedSink`` stores what it is given only when the write is waited for, so a test can
tell what the sink has confirmed from what it was merely handed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from futurnal.imap.errors import CommandTimedOut, ServerError, ServerHungUp
from futurnal.imap.fetched import FetchAnswer, FetchedMessage
from futurnal.imap.session import FolderChanges, FolderStatus
from futurnal.imap.uidset import UidSet
from futurnal.storage.element_store import ElementKey
from futurnal.storage.sqlite import SqliteElementStore

__all__ = ["MemoryServer", "SinkFailed", "WatchedSink", "note"]


def note(uid: int, tag: str = "note") -> bytes:
    return f"From: a@example.org\r\nSubject: {tag} {uid}\r\nMessage-ID: <{tag}-{uid}@example.org>\r\n\r\nbody {uid}\r\n".encode()


class MemoryServer:
    """One folder in memory, answering like ImapSession, with the failures a test switches on."""

    extensions: frozenset[str] = frozenset()
    condstore = qresync = gmail = False

    def __init__(self, uids: list[int], uidnext: int | None = None, uidvalidity: int = 7) -> None:
        self.messages = {uid: note(uid) for uid in uids}
        self.uidnext = uidnext or max(uids) + 1
        self.uidvalidity = uidvalidity
        self.without_body: dict[int, int] = {}  # uid -> how many more answers lack its body
        self.refuses: set[int] = set()  # a batch holding one of these is refused whole
        self.hangs_up_on: set[int] = set()  # ... or answered with BYE, and the connection closed
        self.stalls_on: dict[int, int] = {}  # uid -> how many more FETCHes holding it run out of time
        self.reconnects = 0
        self.announced_too_large: set[int] = set()  # bodies the wire drained as over the limit
        self.expunge_when_asked: set[int] = set()
        self.commands: list[str] = []
        #: Courier-IMAP with a folder no client opened read-write: every EXAMINE numbers it afresh
        #: (a new UIDVALIDITY, same messages) until a SELECT makes the server save its UIDs.
        self.unsaved_uids = False
        self.flaps_even_read_write = False

    def recreate(self, uids: list[int], uidvalidity: int, tag: str = "again") -> None:
        """The folder was deleted and created again: new UIDVALIDITY, UIDs numbered afresh."""
        self.messages = {uid: note(uid, tag) for uid in uids}
        self.uidvalidity = uidvalidity
        self.uidnext = max(uids) + 1

    def select(self, folder: str, *, read_write: bool = False) -> FolderStatus:
        self.commands.append("SELECT" if read_write else "EXAMINE")
        if self.unsaved_uids or self.flaps_even_read_write:
            self.uidvalidity += 1
            self.unsaved_uids = self.unsaved_uids and not read_write
        return FolderStatus(folder, self.uidvalidity, self.uidnext, len(self.messages), None)

    def sizes(self, criteria: str) -> dict[int, int]:
        self.commands.append(f"SIZES {criteria}")
        low, _, high = criteria.partition(":")
        top = self.uidnext if high in ("", "*") else int(high)
        return {uid: len(raw) for uid, raw in self.messages.items() if int(low) <= uid <= top}

    def fetch_messages(self, uids: Iterable[int], expected_bytes: int = 0) -> FetchAnswer:
        wanted = sorted(uids)
        self.commands.append(f"FETCH {wanted}")
        if self.refuses.intersection(wanted):
            raise ServerError("127.0.0.1:143 refused a command: [SERVERBUG] Internal error occurred")
        for uid in sorted(set(self.stalls_on).intersection(wanted)):
            if self.stalls_on[uid] > 0:
                self.stalls_on[uid] -= 1
                raise CommandTimedOut("127.0.0.1:143 did not answer in time (no data for 60s)")
        if self.hangs_up_on.intersection(wanted):
            raise ServerHungUp("127.0.0.1:143 ended the connection: FETCH failed: Internal error occurred")
        for uid in self.expunge_when_asked.intersection(wanted):
            self.messages.pop(uid, None)
        messages, missing, too_large = [], [], {}
        for uid in wanted:
            if uid not in self.messages:
                missing.append(uid)
            elif uid in self.announced_too_large:
                too_large[uid] = 10**9
            elif self.without_body.get(uid, 0) > 0:
                self.without_body[uid] -= 1
                missing.append(uid)
            else:
                raw = self.messages[uid]
                messages.append(FetchedMessage(uid, raw, ("\\Seen",), None, len(raw)))
        return FetchAnswer(messages, missing, too_large)

    def fetch_headers(self, uids: Iterable[int]) -> list[FetchedMessage]:
        self.commands.append(f"HEADERS {sorted(uids)}")
        return [FetchedMessage(uid, self.messages[uid].split(b"\r\n\r\n")[0] + b"\r\n\r\n", (), None, 0)
                for uid in sorted(uids) if uid in self.messages]

    def uids_between(self, first: int, last: int) -> UidSet:
        self.commands.append(f"SEARCH {first}:{last}")
        return UidSet.of(uid for uid in self.messages if first <= uid <= last)

    def uids(self, up_to_uid: int) -> UidSet:
        return self.uids_between(1, up_to_uid)

    def changes_since(self, modseq: int, up_to_uid: int) -> FolderChanges:
        raise AssertionError("CHANGEDSINCE asked of a server without CONDSTORE")

    def flags(self, criteria: str) -> dict[int, tuple[str, ...]]:
        return {uid: ("\\Seen",) for uid in self.messages}


class SinkFailed(Exception):
    """The sink could not write a batch (its disk, its actor): the write is not durable."""


class _Pending:
    def __init__(self, sink: WatchedSink, elements: list[dict[str, Any]]) -> None:
        self.sink, self.elements = sink, elements
        self.waited = False

    def get(self, timeout: float | None = None) -> int:
        if not self.waited:
            self.waited = True
            self.sink.outstanding.remove(self)
            uids = [e["uid"] for e in self.elements]
            if self.sink.fails_on.intersection(uids):
                raise SinkFailed(f"could not write UIDs {uids}")
            self.sink.store.upsert_many(self.elements)
            self.sink.confirmed.update((e["uidvalidity"], e["uid"]) for e in self.elements)
        return len(self.elements)


class _Done:
    def __init__(self, value: Any) -> None:
        self.value = value

    def get(self, timeout: float | None = None) -> Any:
        return self.value


class WatchedSink:
    """A sink whose writes become durable only when waited for; it counts writes not yet waited for."""

    def __init__(self, store: SqliteElementStore) -> None:
        self.store = store
        self.outstanding: list[_Pending] = []
        self.most_outstanding = 0
        self.confirmed: set[tuple[int, int]] = set()  # (UIDVALIDITY, UID) written durably
        self.fails_on: set[int] = set()  # a write holding one of these UIDs fails when waited for

    def write(self, elements: list[dict[str, Any]]) -> _Pending:
        pending = _Pending(self, elements)
        self.outstanding.append(pending)
        self.most_outstanding = max(self.most_outstanding, len(self.outstanding))
        return pending

    def update_flags(self, updates: list[tuple[ElementKey, list[str]]]) -> _Done:
        return _Done(self.store.update_flags(updates))

    def mark_deleted(self, keys: list[ElementKey]) -> _Done:
        return _Done(self.store.mark_deleted(keys, "now"))
