"""Folder selection and folder lifecycle through the real CLI and actor system."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from futurnal.demo.dovecot import DovecotServer

from .cli import Cli
from .sync_harness import ServerClient


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def folders(dovecot: DovecotServer) -> Any:
    """INBOX, Archive (\\Archive), Archive/2024, Archive/2024/Q1, Sent (\\Sent), Trash (\\Trash), Junk."""
    other = ServerClient(dovecot)
    for folder in ("Archive", "Archive/2024", "Archive/2024/Q1", "Sent", "Trash", "Junk", "Projects"):
        other.client.create_folder(folder)
    for folder in ("INBOX", "Archive", "Archive/2024", "Archive/2024/Q1", "Sent", "Trash", "Junk", "Projects"):
        other.append(2, folder=folder, tag=folder.replace("/", "-"))
    yield other
    other.close()


def _synced_folders(cli: Cli) -> set[str]:
    return {e["folder"] for e in cli("elements", "export").lines()}


def test_globs_and_excludes_choose_the_folders(cli: Cli, dovecot: DovecotServer, folders: Any) -> None:
    added = cli.add(dovecot, "--exclude", "Archive/2024/Q1,\\Trash", folders="INBOX,Archive/**,special:sent")
    assert added.code == 0, added.err
    assert cli("imap", "sync", "alice").code == 0
    assert _synced_folders(cli) == {"INBOX", "Archive/2024", "Sent"}


def test_special_use_selects_by_attribute_whatever_the_name(cli: Cli, dovecot: DovecotServer, folders: Any) -> None:
    assert cli.add(dovecot, folders="\\Archive,\\Junk").code == 0
    assert cli("imap", "sync", "alice").code == 0
    assert _synced_folders(cli) == {"Archive", "Junk"}


def test_a_missing_exact_folder_is_refused_at_add(cli: Cli, dovecot: DovecotServer, folders: Any) -> None:
    done = cli.add(dovecot, folders="INBOX,Archve")
    assert done.code == 1 and "'Archve'" in done.err and "do not exist" in done.err


def test_new_folders_matching_a_pattern_are_picked_up(cli: Cli, dovecot: DovecotServer, folders: Any) -> None:
    assert cli.add(dovecot, folders="Archive/*").code == 0
    assert cli("imap", "sync", "alice").code == 0
    assert _synced_folders(cli) == {"Archive/2024"}
    folders.client.create_folder("Archive/2025")
    folders.append(3, folder="Archive/2025", tag="new")
    report = cli("imap", "sync", "alice", "--json").json()
    assert {f["folder"]: f["fetched"] for f in report["folders"]} == {"Archive/2024": 0, "Archive/2025": 3}


def test_a_folder_deleted_on_the_server_is_tombstoned_and_the_rest_sync(
    cli: Cli, dovecot: DovecotServer, folders: Any
) -> None:
    assert cli.add(dovecot, folders="INBOX,Projects/**,Projects").code == 0
    assert cli("imap", "sync", "alice").code == 0
    folders.client.select_folder("INBOX")
    folders.client.rename_folder("Projects", "Projects-2026")
    folders.append(1, tag="after")
    done = cli("imap", "sync", "alice", "--json")
    report = done.json()
    # The exact name is now missing, which is reported; INBOX still synced.
    assert [e["folder"] for e in report["errors"]] == ["Projects"]
    assert {f["folder"] for f in report["folders"]} == {"INBOX"}
    live = cli("elements", "export").lines()
    assert {e["folder"] for e in live} == {"INBOX"}
    tombstones = [e for e in cli("elements", "export", "--include-deleted").lines() if e["deleted"]]
    assert {e["folder"] for e in tombstones} == {"Projects"} and len(tombstones) == 2
    status = cli("imap", "status", "alice", "--json").json()
    assert "Projects" not in {f["folder"] for f in status["folders"]}


def test_a_renamed_folder_that_still_matches_is_synced_under_its_new_name(
    cli: Cli, dovecot: DovecotServer, folders: Any
) -> None:
    assert cli.add(dovecot, folders="Archive/*").code == 0
    assert cli("imap", "sync", "alice").code == 0
    folders.client.select_folder("INBOX")
    folders.client.rename_folder("Archive/2024", "Archive/2023")
    report = cli("imap", "sync", "alice", "--json").json()
    assert report["ok"] and {f["folder"]: f["fetched"] for f in report["folders"]} == {"Archive/2023": 2}
    live = cli("elements", "export").lines()
    assert {e["folder"] for e in live} == {"Archive/2023"} and len(live) == 2
    everything = cli("elements", "export", "--include-deleted").lines()
    assert sorted((e["folder"], e["deleted"]) for e in everything) == [
        ("Archive/2023", False), ("Archive/2023", False), ("Archive/2024", True), ("Archive/2024", True)]
