"""IMAP NOTIFY against a real Dovecot: several folders watched on one connection, beyond the
per-folder connection budget, with a fall-back to per-folder IDLE on a server without NOTIFY."""

from __future__ import annotations

from typing import Any

from futurnal.demo.dovecot import DovecotOptions, DovecotServer

from .sync_harness import BASE_CAPABILITIES, ServerClient
from .test_watchers import make_watched, wait_for  # noqa: F401 - the fixture

FOLDERS = ("INBOX", "Work", "Lists/Python")


def create_folders(server: DovecotServer) -> ServerClient:
    other = ServerClient(server)
    for folder in FOLDERS[1:]:
        other.client.create_folder(folder)
    return other


def test_notify_watches_every_folder_on_one_connection_beyond_the_budget(dovecot: DovecotServer,
                                                                          make_watched: Any) -> None:
    other = create_folders(dovecot)
    # A budget of 2: the fetcher's connection and one more. Per-folder IDLE could watch only INBOX.
    watched = make_watched(dovecot.imap_port, watch=FOLDERS, folders=FOLDERS, max_connections_per_mailbox=2)
    wait_for(lambda: {e.folder for e in watched.watch_events("connected")} == set(FOLDERS), what="NOTIFY")
    assert {e.detail for e in watched.watch_events("connected")} == {"notify"}

    other.append(2, folder="Work", tag="work")
    other.append(1, folder="Lists/Python", tag="list")
    wait_for(lambda: len(watched.stored_in("Work")) == 2 and len(watched.stored_in("Lists/Python")) == 1,
             what="NOTIFY to deliver new mail in folders that are not selected")
    other.set_flags([1], ["\\Flagged"], folder="Lists/Python")
    wait_for(lambda: watched.stored_in("Lists/Python").get(1) == ["\\Flagged"], what="a flag change")
    other.expunge([1], folder="Work")
    wait_for(lambda: 1 not in watched.stored_in("Work"), what="an expunge")
    other.append(1, tag="inbox")
    wait_for(lambda: len(watched.stored_in("INBOX")) == 1, what="new mail in INBOX")
    for folder in FOLDERS:
        assert watched.stored_in(folder) == other.state(folder)
    other.close()


def test_without_notify_the_watcher_falls_back_to_idle_within_the_budget(dovecot_factory: Any,
                                                                          make_watched: Any) -> None:
    server = dovecot_factory(DovecotOptions(capabilities=BASE_CAPABILITIES.replace(" NOTIFY", "")))
    server.start()
    other = create_folders(server)
    watched = make_watched(server.imap_port, watch=FOLDERS, folders=FOLDERS, max_connections_per_mailbox=2)
    wait_for(lambda: bool(watched.watch_events("connected")), what="the fall-back watcher")
    assert {e.folder for e in watched.watch_events("not-possible")} == set(FOLDERS)
    assert [(e.folder, e.detail) for e in watched.watch_events("connected")] == [("INBOX", "idle")]
    other.append(1, tag="inbox")
    wait_for(lambda: len(watched.stored_in("INBOX")) == 1, what="IDLE to deliver new mail")
    other.close()
