"""Fencing: every write for a mailbox carries the token of that mailbox's lease, and the database
refuses it when the lease has since passed to another process (or to nobody).

The check runs inside the write's own transaction and takes a key-share lock on the lease rows
it reads (``FOR KEY SHARE``). A takeover locks the row ``FOR UPDATE SKIP LOCKED``, so it passes
over a mailbox while a write for it is in flight and takes it at its next round; a write that
comes after the takeover sees the new token and is refused. So a stale owner's late write is
stopped by the database, not merely made unlikely by timing. The owner's own renewals update only
the expiry, which a key-share lock does not hold up.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol

import psycopg

from ..errors import LocalFault

__all__ = ["Fence", "LeaseLost", "check_tokens"]


class LeaseLost(LocalFault):
    """A write for a mailbox whose lease this process no longer holds; nothing of it was written.

    A fault of this process's, not of any message: nothing is quarantined for it, and the work is
    done again by whichever process holds the lease now."""

    def __init__(self, mailbox: str, detail: str) -> None:
        self.mailbox = mailbox
        super().__init__(f"write for mailbox {mailbox} refused: {detail}; another process runs it now")


class Fence(Protocol):
    """What a store asks before it writes for some mailboxes, inside the write's transaction."""

    def check(self, db: psycopg.Connection[Any], mailboxes: Collection[str]) -> None:
        """Raise :class:`LeaseLost` unless this process holds every one of ``mailboxes``'s leases."""


def check_tokens(db: psycopg.Connection[Any], owner: str, tokens: Mapping[str, int],
                 mailboxes: Collection[str]) -> None:
    """Raise :class:`LeaseLost` unless each of ``mailboxes`` is leased to ``owner`` with the token
    in ``tokens`` (the one this process got when it took the mailbox). Key-share-locks the rows."""
    wanted = sorted(set(mailboxes))
    if not wanted:
        return
    for mailbox in wanted:
        if mailbox not in tokens:
            raise LeaseLost(mailbox, "this process holds no lease on it")
    rows = db.execute("SELECT mailbox, owner, token FROM mailbox_leases WHERE mailbox = ANY(%s)"
                      " ORDER BY mailbox FOR KEY SHARE", (wanted,)).fetchall()
    found = {str(row[0]): (row[1], int(row[2])) for row in rows}
    for mailbox in wanted:
        holder, token = found.get(mailbox, (None, -1))
        if holder != owner or token != tokens[mailbox]:
            raise LeaseLost(mailbox, f"its lease token is now {token}, this process holds {tokens[mailbox]}")
