"""Watching many folders on one connection with IMAP NOTIFY (RFC 5465), where the server has it.

Per-folder IDLE costs one connection per folder, and providers cap connections (Gmail: 15 per
account, shared with the user's other mail programs). With NOTIFY one connection, idling with no
folder selected, hears about new mail, expunges and flag changes in every watched folder, as
untagged STATUS responses naming the folder. Everything else (renewal, dead-connection
detection, back-off, the catch-up sync after each connection) is :class:`IdleWatch`'s.
"""

from __future__ import annotations

import imaplib
from collections.abc import Sequence
from typing import Any

from imapclient import imap_utf7

from .idle_watch import IdleWatch, WatchEvent, WatchNotPossible
from .session import ImapSession

__all__ = ["NotifyWatch"]

# imaplib refuses commands it does not know; NOTIFY is valid once authenticated.
imaplib.Commands.setdefault("NOTIFY", ("AUTH", "SELECTED"))

#: What we ask to hear about; FlagChange arrives as STATUS (HIGHESTMODSEQ) for unselected folders.
EVENTS = "(MessageNew MessageExpunge FlagChange)"


class NotifyWatch(IdleWatch):
    """The watch loop of all of a mailbox's watched folders, on one NOTIFY connection.

    Raises nothing on a server without NOTIFY: the loop ends with a ``not-possible`` event, and
    the owner falls back to one :class:`IdleWatch` per folder.
    """

    def __init__(self, *, folders: Sequence[str], **options: Any) -> None:
        super().__init__(folder=folders[0], **options)
        self.folders = tuple(folders)

    def _prepare(self, session: ImapSession) -> str:
        if "NOTIFY" not in session.capabilities:
            raise WatchNotPossible("the server does not advertise NOTIFY (RFC 5465)")
        if "IDLE" not in session.capabilities:
            raise WatchNotPossible("the server advertises NOTIFY but not IDLE to wait in")
        names = b" ".join(_quoted(imap_utf7.encode(folder)) for folder in self.folders)
        imap = session.client._imap
        tag = imap._command("NOTIFY", b"SET (mailboxes (" + names + b") " + EVENTS.encode() + b")")
        typ, lines = imap._command_complete("NOTIFY", tag)
        if typ != "OK":
            raise WatchNotPossible(f"the server refused NOTIFY SET: {lines!r}")
        return "notify"

    def _changed_folders(self, responses: list[tuple[object, ...]] | list[object]) -> list[str]:
        changed: list[str] = []
        for response in responses:
            if not isinstance(response, tuple) or len(response) < 2:
                continue
            if response[0] == b"STATUS":
                changed.append(_folder_name(response[1]))
            elif any(isinstance(part, bytes) and b"NOTIFICATIONOVERFLOW" in part.upper() for part in response):
                changed.extend(self.folders)  # the server gave up telling us: look at everything
        return [folder for folder in dict.fromkeys(changed) if folder in self.folders]

    def _event(self, kind: str, detail: str) -> None:
        for folder in self.folders:  # connected, disconnected, catch-up: true of every folder
            self._notify(WatchEvent(self.mailbox, folder, kind, detail))


def _quoted(name: bytes) -> bytes:
    return b'"' + name.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _folder_name(raw: object) -> str:
    if isinstance(raw, bytes):
        return str(imap_utf7.decode(raw))
    return str(raw)  # IMAPClient parses a folder named "2024" as an int


