"""``imap import``: many mailboxes from a TOML or JSON Lines file, each checked against a real Dovecot
like ``imap add``, their passwords from files and commands, all or none registered unless --keep-going."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from futurnal.demo.dovecot import DovecotServer

from .cli import Cli
from .conftest import DovecotFactory
from .running_process import RunningProcess
from .sync_harness import ServerClient

USERS = {"alice": "secret-pw", "bob": "bob-pw", "carol": "carol-pw", "dave": "dave-pw", "erin": "erin-pw"}


@pytest.fixture
def server(dovecot_factory: DovecotFactory) -> DovecotServer:
    server = dovecot_factory()
    for user, password in USERS.items():
        server.add_user(user, password)
    server.start()
    ServerClient(server).append(3, tag="for-alice")
    ServerClient(server, "bob", USERS["bob"]).client.create_folder("Archive")
    return server


def _private(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def _toml_record(server: DovecotServer, user: str, **fields: object) -> str:
    values = {"email": f"{user}@example.org", "id": user, "host": server.host, "port": server.imaps_port,
              "username": user, "cafile": "server.pem", **fields}
    return "[[mailbox]]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items()) + "\n"


def _json_record(server: DovecotServer, user: str, **fields: object) -> str:
    return json.dumps({"email": f"{user}@example.org", "id": user, "host": server.host, "port": server.imaps_port,
                       "username": user, "cafile": "server.pem", **fields}) + "\n"


def _files(tmp_path: Path, server: DovecotServer) -> Path:
    """Where the import files live: the server's certificate, and a file per password, only the owner's."""
    files = tmp_path / "import"
    (files / "secrets").mkdir(parents=True)
    (files / "server.pem").write_bytes(server.cert_path.read_bytes())
    for user, password in USERS.items():
        _private(files / "secrets" / user, password + "\n")
    return files


def test_mailboxes_from_toml_and_json_lines_are_checked_registered_and_sync(
    tmp_path: Path, server: DovecotServer
) -> None:
    cli = Cli(tmp_path)
    files = _files(tmp_path, server)
    toml = files / "mailboxes.toml"
    toml.write_text(
        "# three mailboxes of one server\n"
        + _toml_record(server, "alice", password_file="secrets/alice", consent=True, watch=[])
        + _toml_record(server, "bob", password_file=str(files / "secrets" / "bob"), consent=True,
                       folders=["INBOX", "Archive"], schedule="@manual", priority="high")
        + _toml_record(server, "carol", password_command=["cat", "secrets/carol"], consent=True,
                       consent_scopes="metadata")
    )
    imported = cli("imap", "import", str(toml), "--json")
    assert imported.code == 0, imported.err
    report = imported.json()
    assert (report["ok"], report["registered"], report["failed"]) == (True, 3, 0)
    headers = [number for number, line in enumerate(toml.read_text().splitlines(), 1) if line == "[[mailbox]]"]
    assert [(r["record"], r["line"], r["id"], r["status"]) for r in report["records"]] == [
        (1, headers[0], "alice", "registered"), (2, headers[1], "bob", "registered"),
        (3, headers[2], "carol", "registered")]
    assert report["records"][1]["mailbox"]["folders"] == ["INBOX", "Archive"]

    jsonl = files / "more.jsonl"
    jsonl.write_text(_json_record(server, "dave", password_command=["cat", str(files / "secrets" / "dave")])
                     + "\n" + _json_record(server, "erin", password_file="secrets/erin", interval=600))
    refused = cli("imap", "import", str(jsonl))
    assert refused.code == 2 and "record 1 (line 1" in refused.err and "consent is required" in refused.err
    shown = cli("imap", "import", str(jsonl), "--consent")  # the owners' consent for every record
    assert shown.code == 0, shown.err
    assert "registered dave" in shown.out and "registered erin" in shown.out
    assert "registered 2 mailbox(es)" in shown.out

    listed = {r["id"]: r for r in cli("imap", "list", "--json").json()}
    assert sorted(listed) == sorted(USERS)
    assert listed["alice"]["watch"] == [] and listed["bob"]["schedule"] == "@manual"
    assert listed["bob"]["priority"] == "high" and listed["erin"]["sync_interval_seconds"] == 600
    assert listed["alice"]["cafile"] == str(files / "server.pem")  # taken from the file's directory
    assert cli("consent", "show", "carol", "--json").json()["scopes"] == ["metadata"]

    synced = cli("imap", "sync", "alice", "--json")
    assert synced.code == 0, synced.err
    assert synced.json()["fetched"] == 3
    assert cli("imap", "sync", "dave", "--json").json()["ok"]  # the password a command printed, kept
    assert not any(password in toml.read_text() + jsonl.read_text() for password in USERS.values())


def test_a_refused_login_registers_none_without_keep_going_and_the_others_with_it(
    tmp_path: Path, server: DovecotServer
) -> None:
    cli = Cli(tmp_path)
    files = _files(tmp_path, server)
    _private(files / "secrets" / "wrong", "not-bobs-password\n")
    toml = files / "mailboxes.toml"
    toml.write_text(_toml_record(server, "alice", password_file="secrets/alice")
                    + _toml_record(server, "bob", password_file="secrets/wrong")
                    + _toml_record(server, "carol", password_file="secrets/carol"))

    failed = cli("imap", "import", str(toml), "--consent", "--json")
    assert failed.code == 1
    report = failed.json()
    assert (report["ok"], report["registered"], report["failed"]) == (False, 0, 1)
    assert [(r["id"], r["status"]) for r in report["records"]] == [
        ("alice", "not-registered"), ("bob", "failed"), ("carol", "not-registered")]
    assert report["records"][1]["stage"] == "check"
    assert cli("imap", "list", "--json").json() == []

    told = cli("imap", "import", str(toml), "--consent")
    assert told.code == 1
    assert "record 2 (line" in told.err and "nothing was registered" in told.err and "--keep-going" in told.err
    assert "checked alice" in told.out and "carol" not in told.out  # no server asked after the failure

    kept = cli("imap", "import", str(toml), "--consent", "--keep-going", "--json")
    assert kept.code == 1
    assert [(r["id"], r["status"]) for r in kept.json()["records"]] == [
        ("alice", "registered"), ("bob", "failed"), ("carol", "registered")]
    assert [r["id"] for r in cli("imap", "list", "--json").json()] == ["alice", "carol"]

    again = cli("imap", "import", str(toml), "--consent", "--json")  # the same file once more: all taken
    assert again.code == 1
    errors = [r.get("error", "") for r in again.json()["records"]]
    assert "already registered" in errors[0] and "already registered" in errors[2]


def test_a_secret_file_others_can_read_and_a_failing_command_name_their_record(
    tmp_path: Path, server: DovecotServer
) -> None:
    cli = Cli(tmp_path)
    files = _files(tmp_path, server)
    (files / "secrets" / "bob").chmod(0o644)
    jsonl = files / "mailboxes.jsonl"
    jsonl.write_text(_json_record(server, "alice", password_file="secrets/alice", consent=True)
                     + _json_record(server, "bob", password_file="secrets/bob", consent=True)
                     + _json_record(server, "carol", password_command=["false"], consent=True))
    done = cli("imap", "import", str(jsonl), "--keep-going", "--json")
    assert done.code == 2
    records = done.json()["records"]
    assert records[0]["status"] == "registered"
    assert records[1]["status"] == "failed" and "chmod 600" in records[1]["error"] and records[1]["code"] == 2
    assert records[2]["status"] == "failed" and "exit status 1" in records[2]["error"]
    assert [r["id"] for r in cli("imap", "list", "--json").json()] == ["alice"]


def test_import_while_run_is_up_starts_each_mailbox_at_once(tmp_path: Path, server: DovecotServer) -> None:
    """The process starts each mailbox as it is registered and reads its secret at once: every
    secret is stored before the first is registered, so none is read while the file keyring is
    being rewritten."""
    cli = Cli(tmp_path)
    files = _files(tmp_path, server)
    toml = files / "mailboxes.toml"
    toml.write_text("".join(_toml_record(server, user, password_command=["cat", f"secrets/{user}"], consent=True)
                            for user in USERS))
    process = RunningProcess(cli)
    try:
        imported = cli("imap", "import", str(toml))
        assert imported.code == 0, imported.err
        process.wait_for(lambda: process.stored() == 3, "the running process did not sync the imported alice")
        live = {m["mailbox"]["id"]: m for m in process.client.call("status")["mailboxes"]}
        assert sorted(live) == sorted(USERS)
        assert not [line for line in process.lines if "failed" in line]
    finally:
        code, err = process.finish()
    assert code == 0, err
