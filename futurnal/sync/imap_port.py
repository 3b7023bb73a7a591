"""The IMAP operations a folder sync needs, and nothing more.

The sync core is typed against this port rather than against :class:`~futurnal.imap.session.ImapSession`,
so its decisions (what to fetch, when the watermark may move) can be checked against a server kept
in memory, with the failures a test switches on, and without a real IMAP server. ``ImapSession``
satisfies it structurally; nothing has to inherit from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from futurnal.imap.fetched import FetchAnswer, FetchedMessage
from futurnal.imap.session import FolderChanges, FolderStatus
from futurnal.imap.uidset import UidSet

__all__ = ["ImapPort"]


class ImapPort(Protocol):
    """One logged-in connection, as far as syncing one folder at a time goes.

    Every method may raise a :class:`~futurnal.imap.errors.MailError`; the sync relies on
    ``ServerError`` (a refusal) and ``ServerHungUp`` (a BYE) from ``fetch_messages`` to fetch a
    batch in halves.
    """

    #: The sync extensions in use on this connection (``CONDSTORE``, ``QRESYNC``), stored with the
    #: folder's state so a change of server is noticed.
    extensions: frozenset[str]

    @property
    def condstore(self) -> bool:
        """MODSEQ is available: flag changes are asked for, not found by fetching every flag."""
        ...

    def select(self, folder: str, *, read_write: bool = False) -> FolderStatus:
        """Open ``folder`` read-only (EXAMINE), or with ``read_write`` by SELECT, and say what the
        server says about it."""
        ...

    def sizes(self, criteria: str) -> dict[int, int]:
        """UID -> size for a UID range such as ``101:2100``: how new mail is discovered and batched."""
        ...

    def fetch_messages(self, uids: Iterable[int], expected_bytes: int = 0) -> FetchAnswer:
        """Whole messages, without setting ``\\Seen``; missing and oversized ones are listed apart.
        ``expected_bytes`` (their announced sizes) bounds what the answer may hold in memory."""
        ...

    def fetch_headers(self, uids: Iterable[int]) -> list[FetchedMessage]:
        """Header sections only, for messages too large to download."""
        ...

    def uids_between(self, first: int, last: int) -> UidSet:
        """The UIDs from ``first`` to ``last`` the folder holds now (UID SEARCH)."""
        ...

    def changes_since(self, modseq: int, up_to_uid: int) -> FolderChanges:
        """Flags changed since ``modseq`` (CONDSTORE) and, with QRESYNC, the UIDs that vanished."""
        ...

    def flags(self, criteria: str) -> dict[int, tuple[str, ...]]:
        """Every message's flags in a UID range: the fallback without CONDSTORE."""
        ...

    def uids(self, up_to_uid: int) -> UidSet:
        """The UIDs from 1 to ``up_to_uid`` the folder holds now: the deletion check without QRESYNC."""
        ...
