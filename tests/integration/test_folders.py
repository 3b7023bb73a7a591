"""Folder selection and folder lifecycle through the real CLI and actor system."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from futurnal.demo.dovecot import DovecotServer

from .cli import Cli
from .running_process import RunningProcess
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
    done = cli.add(dovecot, folders="INBOX,Archvie")
    assert done.code == 1
    assert f"folder 'Archvie' does not exist on 127.0.0.1:{dovecot.imaps_port}; did you mean 'Archive'?" in done.err
    assert "nothing was registered" in done.err and cli("imap", "list", "--json").json() == []


_SURVEYED = {  # name: (special use, messages, synced, excluded), for the selection below
    "INBOX": (None, 2, True, False), "Archive": ("\\Archive", 2, False, False),
    "Archive/2024": (None, 2, True, False), "Archive/2024/Q1": (None, 2, False, True),
    "Sent": ("\\Sent", 2, True, False), "Trash": ("\\Trash", 2, False, False),
    "Junk": ("\\Junk", 2, False, False), "Projects": (None, 2, False, False),
}


def test_imap_folders_shows_special_use_counts_and_the_selection_with_run_up_or_not(
    cli: Cli, dovecot: DovecotServer, folders: Any
) -> None:
    # --no-verify registers a name the server lacks, as a folder deleted after `imap add` would leave it.
    added = cli.add(dovecot, "--exclude", "Archive/2024/Q1", "--no-verify", folders="INBOX,Archive/**,\\Sent,Projcts")
    assert added.code == 0, added.err

    def surveyed() -> dict[str, Any]:
        done = cli("imap", "folders", "alice", "--json")
        assert done.code == 0, done.err
        document = done.json()
        assert document["mailbox"] == "alice" and document["server"] == f"127.0.0.1:{dovecot.imaps_port}"
        assert document["selection"] == {"include": ["INBOX", "Archive/**", "\\Sent", "Projcts"],
                                         "exclude": ["Archive/2024/Q1"]}
        assert document["missing"] == [{"folder": "Projcts", "did_you_mean": "Projects"}]
        assert all(f["selectable"] and f["delimiter"] == "/" for f in document["folders"])
        return {f["name"]: (f["special_use"], f["messages"], f["synced"], f["excluded"]) for f in document["folders"]}

    assert surveyed() == _SURVEYED
    assert list(surveyed()) == ["INBOX", "Archive", "Archive/2024", "Archive/2024/Q1", "Junk", "Projects", "Sent", "Trash"]
    shown = cli("imap", "folders", "alice")
    assert shown.code == 0, shown.err
    assert f"alice <alice@example.org> at 127.0.0.1:{dovecot.imaps_port}: 8 folder(s), 3 synced" in shown.out
    rows = {line.split()[1]: line.split()[2:] for line in shown.out.splitlines() if line.startswith("│ ")}
    assert rows["Sent"] == ["│", "\\Sent", "│", "2", "│", "yes", "│"]
    assert rows["Archive/2024/Q1"][-3:] == ["no", "(excluded)", "│"] and rows["Trash"][1] == "\\Trash"
    assert "folder 'Projcts' does not exist on the server; did you mean 'Projects'?" in shown.out

    folders.append(3, folder="Junk", tag="later")
    running = RunningProcess(cli)
    try:
        assert surveyed() == {**_SURVEYED, "Junk": ("\\Junk", 5, False, False)}
    finally:
        code, err = running.finish()
    assert code == 0, err


def test_imap_folders_of_an_unknown_mailbox_or_a_refused_login_is_one_error(
    cli: Cli, dovecot: DovecotServer
) -> None:
    assert cli.add(dovecot).code == 0
    unknown = cli("imap", "folders", "bob")
    assert unknown.code == 1 and "bob" in unknown.err and unknown.out == ""
    dovecot.add_user("alice", "changed-pw")
    refused = cli("imap", "folders", "alice", "--json")
    assert refused.code == 1 and "rejected the login of alice" in refused.err and refused.out == ""


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
    # The exact name is now missing, which is reported with the folder it most likely became; INBOX still synced.
    assert report["errors"] == [{"folder": "Projects", "error": "folder 'Projects' does not exist on the server; "
                                 "did you mean 'Projects-2026'?"}]
    assert "did you mean 'Projects-2026'?" in cli("imap", "sync", "alice").err
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


def _stored_per_folder(cli: Cli) -> dict[str, int]:
    counts: dict[str, int] = {}
    for element in cli("elements", "export").lines():
        counts[element["folder"]] = counts.get(element["folder"], 0) + 1
    return counts


def test_a_folder_the_selection_excludes_is_never_watched_into_the_store(cli: Cli, dovecot: DovecotServer) -> None:
    other = ServerClient(dovecot)
    try:
        other.client.create_folder("Att")
        other.append(1, folder="Att", tag="att-before")
        other.append(1, folder="INBOX", tag="inbox-before")  # a watcher's catch-up sync would bring it
        refused = cli.add(dovecot, "--exclude", "INBOX", "--watch", "INBOX", folders="Att")
        assert refused.code == 2 and "--watch INBOX: not among the folders this mailbox syncs" in refused.err
        added = cli.add(dovecot, "--exclude", "INBOX", "--json", folders="Att")
        assert added.code == 0, added.err
        assert added.json()["watch"] == ["Att"]  # the selection's folders, not INBOX
        # As a registry written before this check has it: INBOX watched although excluded.
        registry = cli.data_dir / "mailboxes.json"
        doc = json.loads(registry.read_text())
        doc["mailboxes"]["1"]["watch"] = ["INBOX", "Att"]
        registry.write_text(json.dumps(doc))

        running = RunningProcess(cli)
        try:
            running.wait_for(lambda: _stored_per_folder(cli) == {"Att": 1}, "the start-up sync of Att")
            other.append(1, folder="INBOX", tag="inbox-live")
            other.append(1, folder="Att", tag="att-live")  # after INBOX's: once it is stored, INBOX had its turn
            running.wait_for(lambda: _stored_per_folder(cli).get("Att") == 2, "the Att watcher's sync")
            status = cli("imap", "status", "alice", "--json").json()
        finally:
            code, err = running.finish()
        assert code == 0, err
        assert _stored_per_folder(cli) == {"Att": 2}
        assert {f["folder"]: f["watch"] for f in status["folders"]}.get("INBOX", "not watched") == "not watched"
    finally:
        other.close()


def test_long_non_latin_folder_names_sync_and_name_no_file(cli: Cli, dovecot: DovecotServer) -> None:
    cyrillic = ("Переписка с бухгалтерией о квартальных отчётах " * 2)[:56]
    cjk = ("项目会议记录与季度财务报告归档" * 6)[:80]
    assert (len(cyrillic), len(cjk)) == (56, 80)
    other = ServerClient(dovecot)
    try:
        for count, name in ((2, cyrillic), (3, cjk)):
            other.client.create_folder(name)
            other.append(count, folder=name, tag=f"long-{count}")
    finally:
        other.close()
    added = cli.add(dovecot, folders=f"INBOX,{cyrillic},{cjk}")
    assert added.code == 0, added.err
    done = cli("imap", "sync", "alice", "--json")
    assert done.code == 0, done.err
    assert {f["folder"]: f["fetched"] for f in done.json()["folders"]} == {"INBOX": 0, cyrillic: 2, cjk: 3}
    assert _stored_per_folder(cli) == {cyrillic: 2, cjk: 3}
    status = cli("imap", "status", "alice", "--json").json()
    assert {f["folder"]: f["stored"] for f in status["folders"]} == {"INBOX": 0, cyrillic: 2, cjk: 3}
    text = cli("imap", "status", "alice").out
    assert cyrillic in text and cjk in text
    names = [p.name for p in cli.data_dir.rglob("*")]
    assert max(len(name.encode()) for name in names) < 100
    assert not any(word in name for name in names for word in ("Переписка", "项目", "&BB"))
