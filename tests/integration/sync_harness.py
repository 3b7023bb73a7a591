"""Drive FolderSync directly against a real server and compare the store with the server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import imapclient
import imapclient.exceptions

from futurnal.demo.dovecot import DovecotServer
from futurnal.imap.errors import ConnectionFailed
from futurnal.imap.session import ConnectionSettings, ImapSession
from futurnal.storage.element_store import ElementKey
from futurnal.storage.quarantine import QuarantineStore
from futurnal.storage.sqlite import SqliteElementStore
from futurnal.storage.sync_state import FolderStateStore
from futurnal.sync.folder_sync import FolderSync, FolderSyncResult

from ..element_schema import assert_valid_element

#: Dovecot's capabilities with the sync extensions taken out, to force each fallback path.
BASE_CAPABILITIES = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES " \
    "THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE " \
    "UIDPLUS LIST-EXTENDED I18NLEVEL=1 ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS " \
    "BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE"
PROFILES = {
    "qresync": None,
    "condstore-only": BASE_CAPABILITIES + " CONDSTORE",
    "no-extensions": BASE_CAPABILITIES,
    "cyrus": None,  # a second, different server: Cyrus IMAP with its own CONDSTORE and QRESYNC
}


class Done:
    def __init__(self, value: Any) -> None:
        self.value = value

    def get(self, timeout: float | None = None) -> Any:
        return self.value


class DirectSink:
    """The element store behind the sink port, without actors (the actor is tested elsewhere)."""

    def __init__(self, store: SqliteElementStore) -> None:
        self.store = store

    def write(self, elements: list[dict[str, Any]]) -> Done:
        for element in elements:  # every element a sync-engine test stores matches the schema
            assert_valid_element(element)
        return Done(self.store.upsert_many(elements))

    def update_flags(self, updates: list[tuple[ElementKey, list[str]]]) -> Done:
        return Done(self.store.update_flags(updates))

    def mark_deleted(self, keys: list[ElementKey]) -> Done:
        return Done(self.store.mark_deleted(keys, "now"))


class SyncHarness:
    def __init__(self, server: DovecotServer, root: Path, user: str = "alice", password: str = "secret-pw") -> None:
        self.server, self.user, self.password = server, user, password
        self.store = SqliteElementStore(root / "elements.sqlite", root / "feed-listeners")
        self.states = FolderStateStore(root / "state.json")
        self.quarantine = QuarantineStore(root / "quarantine")
        self.session: ImapSession | None = None
        self.commands: list[bytes] = []

    def connect(self) -> ImapSession:
        if self.session is None:
            settings = ConnectionSettings(self.server.host, self.server.imap_port, self.user, security="plain")
            self.session = ImapSession(settings).connect(self.password)
            imap = self.session.client._imap
            send = imap._command

            def counting(name: str, *args: Any) -> Any:
                self.commands.append(name.encode() if isinstance(name, str) else name)
                return send(name, *args)

            imap._command = counting
        return self.session

    def sync(self, folder: str = "INBOX", **options: Any) -> FolderSyncResult:
        """One folder sync; a broken connection is dropped and the sync tried once more, as the
        fetcher's next tick would (Dovecot disconnects a session whose selected folder is deleted)."""
        for attempt in (1, 2):
            self.commands.clear()
            folder_sync = FolderSync(
                mailbox="alice", session=self.connect(), states=self.states, sink=DirectSink(self.store),
                quarantine=self.quarantine, **options,
            )
            try:
                return folder_sync.run(folder)
            except ConnectionFailed:
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

    def stored(self, folder: str = "INBOX") -> dict[int, list[str]]:
        """Live elements of the folder's current UIDVALIDITY: UID -> flags."""
        validity = self.states.get(folder).uidvalidity
        return {
            e["uid"]: e["flags"]
            for e in self.store.iter_elements("alice", folder)
            if not e.get("deleted") and e["uidvalidity"] == validity
        }

    def live_uidvalidities(self, folder: str = "INBOX") -> set[int]:
        return {e["uidvalidity"] for e in self.store.iter_elements("alice", folder) if not e.get("deleted")}


class ServerClient:
    """A second, ordinary client that changes the mailbox the way another mail program would."""

    def __init__(self, server: DovecotServer, user: str = "alice", password: str = "secret-pw") -> None:
        self.client = imapclient.IMAPClient(server.host, port=server.imap_port, ssl=False, timeout=30)
        self.client.login(user, password)

    def state(self, folder: str = "INBOX") -> dict[int, list[str]]:
        self.client.select_folder(folder, readonly=True)
        flags = self.client.get_flags(self.client.search("ALL"))
        return {
            uid: sorted(f.decode() for f in values if f.decode().lower() != "\\recent")
            for uid, values in flags.items()
        }

    def append(self, count: int, folder: str = "INBOX", tag: str = "m") -> None:
        """One MULTIAPPEND (RFC 3502) for all of them where the server takes IMAPClient's form of it
        (Dovecot does; Cyrus answers BAD), else one APPEND each."""
        messages = [
            (
                f"From: a@example.org\r\nTo: b@example.org\r\nSubject: {tag} {i}\r\n"
                f"Message-ID: <{tag}-{i}@example.org>\r\n\r\nbody {i}\r\n"
            ).encode()
            for i in range(count)
        ]
        if count > 1:
            try:
                self.client.multiappend(folder, messages)
                return
            except imapclient.exceptions.IMAPClientError:
                pass
        for message in messages:
            self.client.append(folder, message)

    def set_flags(self, uids: list[int], flags: list[str], folder: str = "INBOX") -> None:
        self.client.select_folder(folder)
        self.client.set_flags(uids, [f.encode() for f in flags])

    def expunge(self, uids: list[int], folder: str = "INBOX") -> None:
        self.client.select_folder(folder)
        self.client.delete_messages(uids)
        self.client.uid_expunge(uids)

    def recreate(self, folder: str) -> None:
        self.client.select_folder("INBOX")  # deleting the selected folder would cost this connection
        if self.client.folder_exists(folder):
            self.client.delete_folder(folder)
        self.client.create_folder(folder)

    def close(self) -> None:
        try:
            self.client.logout()
        except Exception:
            pass
