"""Embedding futurnal-actors in an application: its own sink, its own logging, events as they come.

Runs against a throwaway Dovecot on 127.0.0.1 (needs ``dovecot-imapd``, as ``bin/demo`` does)::

    .venv/bin/python examples/embed.py [--messages N]

It prints each folder's progress from ``system.events()``, then what the sink received, and
exits 0 when every message reached the sink exactly once.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from keyrings.alt.file import PlaintextKeyring
from loguru import logger

from futurnal import ActorSystem, MailboxSyncReport
from futurnal.demo.dovecot import DovecotServer, DovecotUnavailable
from futurnal.demo.sample_mailbox import generate_mailbox
from futurnal.storage.credentials import CredentialStore
from futurnal.storage.registry import MailboxRecord
from futurnal.sync.folder_sync import SyncProgress


class SubjectIndex:
    """The application's own sink: the ElementSink protocol, kept in memory.

    Writes may be retried after a crash, so each method must be idempotent: elements are keyed
    by their stable ``id``, so writing one twice changes nothing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # called from the sink actor's thread
        self.subjects: dict[str, str | None] = {}
        self.deleted: set[str] = set()

    def upsert_many(self, elements: list[dict[str, Any]]) -> int:
        with self._lock:
            for element in elements:
                self.subjects[element["id"]] = element["subject"]
        return len(elements)

    def update_flags(self, updates: list[Any]) -> int:
        return 0  # this application ignores flags

    def mark_deleted(self, keys: list[Any], when: str) -> int:
        with self._lock:
            self.deleted.update(str(key) for key in keys)
        return len(keys)

    def update_attachments(self, updates: list[Any]) -> int:
        return 0  # this application ignores attachment text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50)
    args = parser.parse_args()

    # The application's own logging: futurnal logs through loguru, so configure loguru as you like.
    logger.remove()
    logger.add(sys.stderr, level="WARNING")

    work = Path(tempfile.mkdtemp(prefix="futurnal-embed-"))  # private: data dir and keyring
    server_root = Path(tempfile.mkdtemp(prefix="futurnal-embed-dovecot-"))
    server = DovecotServer(server_root)
    try:
        server.add_user("alice", "alice-pw")
        for message in generate_mailbox(args.messages, seed=7):
            server.deliver("alice", message.raw, folder="INBOX", flags=message.flags)
        server.start()
    except DovecotUnavailable as exc:
        print(f"cannot start Dovecot: {exc}", file=sys.stderr)
        for path in (work, server_root):
            shutil.rmtree(path, ignore_errors=True)
        return 3
    # A throwaway keyring file; a real application leaves the default (the OS keyring).
    backend = PlaintextKeyring()
    backend.file_path = str(work / "keyring.cfg")  # type: ignore[misc]

    index = SubjectIndex()
    try:
        with ActorSystem(data_dir=work / "data", sink=index, credentials=CredentialStore(backend)) as system:
            events = system.events(timeout=60)  # subscribed from here on
            system.add_mailbox(
                MailboxRecord(id="alice", email="alice@example.org", host=server.host, port=server.imaps_port,
                              username="alice", cafile=str(server.cert_path)),
                password="alice-pw",
                consent=True,  # this application's user agreed to ingest this mailbox
            )
            # add_mailbox started the mailbox's actors, and its first sync; read its events.
            shown: set[tuple[str, int]] = set()
            for event in events:
                if isinstance(event, SyncProgress) and (event.folder, event.done) not in shown:
                    shown.add((event.folder, event.done))
                    print(f"  {event.folder}: {event.done}/{event.total}")
                elif isinstance(event, MailboxSyncReport):
                    print(f"synced {event.mailbox}: {event.fetched} new, ok={event.ok}")
                    break
            again = system.sync("alice", timeout=60)  # nothing new: the second sync fetches nothing
    finally:
        server.stop()
        for path in (work, server_root):
            shutil.rmtree(path, ignore_errors=True)
    print(f"the sink holds {len(index.subjects)} element(s); a second sync fetched {again.fetched}")
    for subject in sorted(s or "" for s in index.subjects.values())[:3]:
        print(f"  e.g. {subject!r}")
    return 0 if len(index.subjects) == args.messages and again.ok and again.fetched == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
