"""``imap import``'s pure parts: the file's formats, its fields (the options of ``imap add``), the
secrets' files and commands, and the all-or-none registration with mailboxes that are not checked
against a server (``no_verify``). Against a real Dovecot: tests/integration/test_import_cli.py."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from keyrings.alt.file import PlaintextKeyring

from futurnal.admin.local import LocalAdmin
from futurnal.cli import import_command
from futurnal.cli.add_mailbox import add_arguments
from futurnal.cli.context import CommandContext
from futurnal.cli.mailbox_file import (
    FileRecord,
    SecretSource,
    add_fields,
    file_format,
    in_file_terms,
    read_records,
    record_options,
)
from futurnal.cli.main import build_parser
from futurnal.cli.output import UserError
from futurnal.storage.audit_log import AuditLog
from futurnal.storage.credentials import CredentialStore
from futurnal.storage.data_dir import DataDir
from futurnal.storage.registry import MailboxRecord, MailboxRegistry


def _add_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    return parser


PARSER = _add_parser()
FIELDS = add_fields(PARSER)


def _options(tmp_path: Path, **fields: Any) -> Any:
    return record_options(FileRecord(1, None, {"email": "a@example.org", **fields}), FIELDS, PARSER, tmp_path)


def _refused(tmp_path: Path, **fields: Any) -> str:
    with pytest.raises(UserError) as refused:
        _options(tmp_path, **fields)
    assert refused.value.code == 2
    return str(refused.value)


# -- the fields are imap add's options --------------------------------------------------------------


def _subcommand(parser: argparse.ArgumentParser, *names: str) -> argparse.ArgumentParser:
    for name in names:
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = commands.choices[name]
    return parser


def test_every_option_of_imap_add_is_a_field_spelled_without_its_dashes() -> None:
    add = _subcommand(build_parser("imap"), "imap", "add")
    options = {option[2:].replace("-", "_") for action in add._actions for option in action.option_strings
               if option.startswith("--")}
    assert set(FIELDS) == options - {"help", "password_stdin", "client_secret_stdin", "json"}
    assert {"id", "consent_scopes", "no_verify", "client_id", "scope", "auth_timeout"} <= set(FIELDS)
    assert FIELDS["id"].dest == "mailbox_id" and FIELDS["port"].kind is int and FIELDS["consent"].kind is bool


def test_a_record_becomes_the_options_imap_add_would_have_parsed(tmp_path: Path) -> None:
    options = _options(tmp_path, host="h", port=1993, folders=["INBOX", "Archive/*"], watch=[], id="a1",
                       consent=True, scope="one two", cafile="ca.pem", password_file="pw")
    args = options.args
    assert (args.host, args.port, args.folders, args.watch, args.mailbox_id) == ("h", 1993, "INBOX,Archive/*", "", "a1")
    assert args.consent is True and args.scope == ["one two"] and args.security == "tls"  # the default
    assert args.cafile == str(tmp_path / "ca.pem")  # from the file's directory
    assert (args.password_stdin, args.client_secret_stdin, args.json) == (False, False, False)
    assert options.password == SecretSource("password_file", path=tmp_path / "pw") and options.client_secret is None


def test_an_unknown_field_suggests_the_nearest_known_one(tmp_path: Path) -> None:
    assert "unknown field 'prot'; did you mean 'port'?" in _refused(tmp_path, prot=1)
    assert "did you mean 'password_file'?" in _refused(tmp_path, pasword_file="x")
    assert "known:" in _refused(tmp_path, zzzzzz=1)


@pytest.mark.parametrize("field", ["password", "client_secret", "password_stdin", "client_secret_stdin"])
def test_a_secret_in_the_file_itself_is_refused_naming_where_to_keep_it(tmp_path: Path, field: str) -> None:
    message = _refused(tmp_path, **{field: "hunter2"})
    assert f"{field!r} cannot be given" in message and "_file = PATH" in message and "_command = [" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(("fields", "expected"), [
    ({"port": "993"}, "port must be a whole number, not '993'"),
    ({"port": True}, "port must be a whole number"),
    ({"consent": "yes"}, "consent must be true or false"),
    ({"security": "ssl"}, "security must be one of tls, starttls, plain"),
    ({"auth_timeout": "5"}, "auth_timeout must be a number"),
    ({"folders": ["INBOX", 3]}, "folders must be a comma-separated string or a list of names"),
    ({"scope": [1]}, "scope must be a list of strings"),
    ({"interval": 60, "schedule": "@manual"}, "interval and schedule do not go together"),
    ({"password_file": "a", "password_command": ["b"]}, "password_file and password_command do not go together"),
    ({"password_command": "pass show x"}, "password_command must be a list of words"),
    ({"client_secret_command": []}, "client_secret_command must be a list of words"),
    ({"password_file": ""}, "password_file must be a file name"),
])
def test_a_bad_field_is_refused_naming_it(tmp_path: Path, fields: dict[str, Any], expected: str) -> None:
    assert expected in _refused(tmp_path, **fields)


def test_a_record_without_an_address_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="email is required"):
        record_options(FileRecord(1, None, {"host": "h"}), FIELDS, PARSER, tmp_path)


def test_imap_adds_messages_name_the_fields() -> None:
    assert in_file_terms("--port 0 is not a TCP port", FIELDS.values()) == "port 0 is not a TCP port"
    assert in_file_terms("--auth-timeout must be positive", FIELDS.values()) == "auth_timeout must be positive"
    assert in_file_terms("--auth oauth2 needs --client-id", FIELDS.values()) == "auth oauth2 needs client_id"
    assert in_file_terms("--password-stdin does not go", FIELDS.values()) == "password_file/password_command does not go"
    assert in_file_terms("use --id to add it", FIELDS.values()) == "use id to add it"
    assert in_file_terms("--keep-going", FIELDS.values()) == "--keep-going"  # not a field


# -- the file ------------------------------------------------------------------------------------------


def test_the_format_comes_from_the_extension_unless_given(tmp_path: Path) -> None:
    assert file_format(Path("m.toml"), None) == "toml"
    assert file_format(Path("m.JSONL"), None) == "jsonl" and file_format(Path("m.json"), None) == "jsonl"
    assert file_format(Path("m.txt"), "toml") == "toml"
    with pytest.raises(UserError, match="--format toml|jsonl") as refused:
        file_format(Path("m.txt"), None)
    assert refused.value.code == 2


def test_toml_records_are_mailbox_tables_with_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('# mailboxes\n\n[[mailbox]]\nemail = "a@x.org"\n\n  [[ mailbox ]]  # the second\nemail = "b@x.org"\n')
    records = read_records(path, "toml")
    assert [(r.number, r.line, r.fields) for r in records] == [(1, 3, {"email": "a@x.org"}), (2, 6, {"email": "b@x.org"})]
    assert records[1].label() == "record 2 (line 6, b@x.org)"


@pytest.mark.parametrize(("text", "expected"), [
    ('[[mailboxes]]\nemail = "a"\n', "unknown table 'mailboxes'; did you mean 'mailbox'?"),
    ('[mailbox]\nemail = "a"\n', "write each mailbox as a [[mailbox]] table"),
    ('[[mailbox]]\nemail = \n', "not valid TOML"),
    ("# nothing yet\n", "no mailbox records"),
])
def test_a_toml_file_that_is_not_records_is_refused_whole(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=expected.replace("[", r"\[").replace("?", r"\?")) as refused:
        read_records(path, "toml")
    assert refused.value.code == 2


def test_json_lines_records_skip_blank_lines_and_keep_their_line(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"email": "a@x.org"}\n\n   \n{"email": "b@x.org", "port": 993}\n')
    assert [(r.number, r.line, r.fields) for r in read_records(path, "jsonl")] == [
        (1, 1, {"email": "a@x.org"}), (2, 4, {"email": "b@x.org", "port": 993})]
    path.write_text('{"email": "a@x.org"}\n{"email": \n')
    with pytest.raises(UserError, match="line 2: not valid JSON"):
        read_records(path, "jsonl")
    path.write_text('{"email": "a@x.org"}\n["b@x.org"]\n')
    with pytest.raises(UserError, match="line 2: a record is a JSON object, not an array"):
        read_records(path, "jsonl")


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="No such file") as refused:
        read_records(tmp_path / "none.toml", "toml")
    assert refused.value.code == 2


# -- the secrets ------------------------------------------------------------------------------------


def _secret_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "secret"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_secret_file_is_read_without_its_line_ending(tmp_path: Path) -> None:
    assert SecretSource("password_file", path=_secret_file(tmp_path, "pa ss\r\n")).read(5) == "pa ss"
    assert SecretSource("password_file", path=_secret_file(tmp_path, "no-newline", 0o400)).read(5) == "no-newline"


@pytest.mark.parametrize(("text", "mode", "expected"), [
    ("pw\n", 0o644, "readable by others (mode 0644)"),
    ("pw\n", 0o640, "chmod 600"),
    ("\n", 0o600, "the secret is empty"),
    ("one\ntwo\n", 0o600, "more than one line"),
])
def test_a_secret_file_others_can_read_or_that_holds_no_single_secret_is_refused(
    tmp_path: Path, text: str, mode: int, expected: str
) -> None:
    with pytest.raises(UserError, match=re.escape(expected)) as refused:
        SecretSource("password_file", path=_secret_file(tmp_path, text, mode)).read(5)
    assert str(refused.value).startswith("password_file") and refused.value.code == 2


def test_a_missing_secret_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"password_file .*/gone: No such file"):
        SecretSource("password_file", path=tmp_path / "gone").read(5)


def test_a_secret_command_runs_without_a_shell_in_the_files_directory(tmp_path: Path) -> None:
    (tmp_path / "kept").write_text("from-a-command\n")
    source = SecretSource("password_command", command=("cat", "kept"), cwd=tmp_path)
    assert source.read(5) == "from-a-command"
    literal = SecretSource("password_command", command=("printf", "%s", "$HOME;x"), cwd=tmp_path)
    assert literal.read(5) == "$HOME;x"  # no shell expanded it


@pytest.mark.parametrize(("command", "expected", "code"), [
    ((sys.executable, "-c", "import sys; sys.exit(3)"), "failed with exit status 3", 1),
    ((sys.executable, "-c", "import time; time.sleep(5)"), "gave no answer within 0.5 s", 1),
    (("/nonexistent/get-secret",), "No such file or directory", 2),
    ((sys.executable, "-c", "pass"), "the secret is empty", 2),
])
def test_a_failing_secret_command_is_named(tmp_path: Path, command: tuple[str, ...], expected: str, code: int) -> None:
    with pytest.raises(UserError, match=expected) as refused:
        SecretSource("client_secret_command", command=command, cwd=tmp_path).read(0.5)
    assert str(refused.value).startswith(f"client_secret_command {command[0]}") and refused.value.code == code


# -- registering: all or none ---------------------------------------------------------------------------


@pytest.fixture
def ctx(tmp_path: Path) -> CommandContext:
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring.cfg")
    return CommandContext(DataDir(tmp_path / "data"), False, CredentialStore(backend))


def _write(tmp_path: Path, *records: dict[str, Any]) -> Path:
    _secret_file(tmp_path, "pw\n")
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps({"host": "127.0.0.1", "no_verify": True, "password_file": "secret",
                                        "consent": True, **r}) + "\n" for r in records))
    return path


def _import(ctx: CommandContext, capsys: pytest.CaptureFixture[str], path: Path, *options: str) -> tuple[int, Any]:
    args = build_parser("imap").parse_args(["imap", "import", str(path), "--json", *options])
    code = import_command._import(args, ctx)
    return code, json.loads(capsys.readouterr().out)


def _registered(ctx: CommandContext) -> list[str]:
    if not ctx.data_dir.registry_path.exists():
        return []
    with MailboxRegistry(ctx.data_dir.registry_path, read_only=True) as registry:
        return [record.id for record in registry.all()]


def test_records_are_registered_with_their_secrets_and_consent(
    tmp_path: Path, ctx: CommandContext, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, {"email": "a@x.org"}, {"email": "b@x.org", "id": "bee", "consent": False})
    code, report = _import(ctx, capsys, path, "--consent")
    assert code == 0 and report["ok"] and report["registered"] == 2
    assert [(r["id"], r["status"], r["mailbox"]["email"]) for r in report["records"]] == [
        ("a-x.org", "registered", "a@x.org"), ("bee", "registered", "b@x.org")]
    assert _registered(ctx) == ["a-x.org", "bee"]
    assert ctx.credentials.get_secret("bee", "password") == "pw"


def test_every_record_is_read_and_reported_and_none_registered_when_one_fails(
    tmp_path: Path, ctx: CommandContext, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, {"email": "a@x.org", "id": "same"}, {"email": "b@x.org", "id": "same"},
                  {"email": "A@X.org"}, {"email": "c@x.org", "consent": False}, {"email": "d@x.org", "prot": 1},
                  {"email": "e@x.org", "security": "plain", "port": 70000}, {"email": "f@x.org"})
    code, report = _import(ctx, capsys, path)
    assert code == 2 and not report["ok"]
    outcomes = [(r["status"], r.get("error", "")) for r in report["records"]]
    assert outcomes[0] == ("not-registered", "")
    assert outcomes[1] == ("failed", "id 'same' is also record 1 (line 1, a@x.org)'s: a mailbox is registered once "
                           "(give one of them another id, or leave one out)")  # the user's own file, shown as it is
    assert outcomes[2][0] == "failed" and "is also record 1" in outcomes[2][1]  # the same address, another case
    assert "consent is required" in outcomes[3][1] and "did you mean 'port'" in outcomes[4][1]
    assert outcomes[5] == ("failed", "port 70000 is not a TCP port") and outcomes[6] == ("not-registered", "")
    assert _registered(ctx) == []

    code, report = _import(ctx, capsys, path, "--keep-going")
    assert code == 2 and [r["id"] for r in report["records"] if r["status"] == "registered"] == ["same", "f-x.org"]
    assert _registered(ctx) == ["f-x.org", "same"]
    code, report = _import(ctx, capsys, _write(tmp_path, {"email": "f@x.org", "id": "f2"}))
    assert code == 1 and "is already registered as f-x.org" in report["records"][0]["error"]


def test_a_secret_the_keyring_refuses_registers_none_and_leaves_no_secret(
    tmp_path: Path, ctx: CommandContext, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, {"email": "a@x.org"}, {"email": "b@x.org"}, {"email": "c@x.org"})
    store = ctx.credentials.set_secret

    def refuse_b(mailbox_id: str, kind: str, value: str) -> None:
        if mailbox_id == "b-x.org":
            raise OSError("the keyring is locked")
        store(mailbox_id, kind, value)

    monkeypatch.setattr(ctx.credentials, "set_secret", refuse_b)
    code, report = _import(ctx, capsys, path)
    assert code == 1
    assert [(r["status"], r.get("stage")) for r in report["records"]] == [
        ("not-registered", None), ("failed", "register"), ("not-registered", None)]
    assert "the keyring is locked" in report["records"][1]["error"]
    assert _registered(ctx) == [] and ctx.credentials.get_secret("a-x.org", "password") is None

    code, report = _import(ctx, capsys, path, "--keep-going")
    assert code == 1 and [r["status"] for r in report["records"]] == ["registered", "failed", "registered"]
    assert _registered(ctx) == ["a-x.org", "c-x.org"]


def test_a_registration_that_fails_removes_the_ones_this_run_registered_and_the_secrets_it_stored(
    tmp_path: Path, ctx: CommandContext, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, {"email": "a@x.org"}, {"email": "b@x.org"}, {"email": "c@x.org"})
    add = LocalAdmin.add_mailbox

    def taken_meanwhile(self: LocalAdmin, record: MailboxRecord, *args: Any) -> None:
        if record.id == "b-x.org":
            raise ValueError(f"a mailbox with id {record.id!r} is already registered")
        add(self, record, *args)

    monkeypatch.setattr(LocalAdmin, "add_mailbox", taken_meanwhile)
    code, report = _import(ctx, capsys, path)
    assert code == 1
    assert [(r["status"], r.get("rolled_back", False)) for r in report["records"]] == [
        ("not-registered", True), ("failed", False), ("not-registered", False)]
    assert _registered(ctx) == []
    assert [ctx.credentials.get_secret(key, "password") for key in ("a-x.org", "b-x.org", "c-x.org")] == [None] * 3
    audit = [entry["event"] for entry in AuditLog(ctx.data_dir.audit_path).entries()]
    assert audit == ["mailbox-added", "consent-granted", "mailbox-removed"]


def test_an_oauth2_record_takes_no_password_and_a_password_record_needs_one(
    tmp_path: Path, ctx: CommandContext, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, {"email": "a@gmail.com", "provider": "gmail", "client_id": "app"},
                  {"email": "b@x.org", "password_file": None})
    code, report = _import(ctx, capsys, path)
    errors = [r["error"] for r in report["records"]]
    assert code == 2 and "password_file: an OAuth2 mailbox signs in in the browser" in errors[0]
    assert "password_file must be a file name" in errors[1]
    path = _write(tmp_path, {"email": "b@x.org", "password_file": "secret", "client_secret_file": "secret"})
    code, report = _import(ctx, capsys, path)
    assert "client_secret_file/client_secret_command only go with auth oauth2" in report["records"][0]["error"]
    path.write_text(json.dumps({"email": "c@x.org", "host": "h", "consent": True}) + "\n")
    code, report = _import(ctx, capsys, path)
    assert "no password given: name where it is kept with password_file" in report["records"][0]["error"]


def test_the_human_output_names_each_record_and_says_what_to_do(
    tmp_path: Path, ctx: CommandContext, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, {"email": "a@x.org"}, {"email": "b@x.org", "secuirty": "tls"})
    args = build_parser("imap").parse_args(["imap", "import", str(path)])
    assert import_command._import(args, ctx) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "record 2 (line 2, " in err and "did you mean 'security'?" in err
    assert "nothing was registered from" in err and "--keep-going" in err
    path = _write(tmp_path, {"email": "a@x.org"})
    assert import_command._import(build_parser("imap").parse_args(["imap", "import", str(path)]), ctx) == 0
    out, err = capsys.readouterr()
    assert "not checked (no_verify) a-x.org (a@x.org): INBOX" in out and "registered a-x.org" in out
    assert "registered 1 mailbox(es) from" in out and err == ""


def test_the_readme_names_every_field_and_its_example_file_is_one_import_takes(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Many mailboxes at once\n", 1)[1].split("\n## ", 1)[0]
    assert [name for name in FIELDS if f"`{name}`" not in section] == []
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "mailboxes.toml"
    path.write_text(example)
    options = [record_options(record, FIELDS, PARSER, tmp_path) for record in read_records(path, "toml")]
    assert [(o.args.email, o.password.field if o.password else None) for o in options] == [
        ("alice@example.org", "password_file"), ("bob@example.org", "password_command")]
