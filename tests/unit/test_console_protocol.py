"""The admin console's request format and command table, without a socket."""

from __future__ import annotations

import json

import pytest

from futurnal.console import COMMANDS, ProtocolError, args_from_words, command_spec, console_socket_path
from futurnal.console.command_specs import validate_args
from futurnal.console.protocol import decode_request, encode_line


def test_a_request_line_decodes_to_command_args_and_id() -> None:
    request = decode_request(b'{"id": 3, "command": "sync", "args": {"mailbox": "alice"}}')
    assert (request.command, request.args, request.id) == ("sync", {"mailbox": "alice"}, 3)


@pytest.mark.parametrize(("line", "code"), [
    (b"{oops", "bad-json"),
    (b"\xff\xfe", "bad-json"),
    (b"[]", "bad-request"),
    (b'{"args": {}}', "bad-request"),
    (b'{"command": "status", "args": []}', "bad-request"),
    (b'{"command": "status", "id": {"a": 1}}', "bad-request"),
    (b'{"command": "status", "verbose": true}', "bad-request"),
])
def test_malformed_request_lines_are_refused_with_a_code(line: bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        decode_request(line)
    assert refused.value.code == code


def test_unknown_commands_suggest_the_closest_one() -> None:
    with pytest.raises(ProtocolError, match="did you mean 'resume'") as refused:
        command_spec("resum")
    assert refused.value.code == "unknown-command"


def test_typed_words_become_args_positionals_first_then_options() -> None:
    assert args_from_words(COMMANDS["sync"], ["alice", "INBOX", "Archive", "--timeout", "30"]) == {
        "mailbox": "alice", "folders": ["INBOX", "Archive"], "timeout": 30.0}
    assert args_from_words(COMMANDS["consent"], ["grant", "alice", "metadata", "--granted-by", "me"]) == {
        "action": "grant", "mailbox": "alice", "scopes": ["metadata"], "granted_by": "me"}
    assert args_from_words(COMMANDS["remove"], ["--purge", "bob"]) == {"mailbox": "bob", "purge": True}


@pytest.mark.parametrize(("command", "words", "message"), [
    ("pause", ["alice", "bob"], "unexpected 'bob'"),
    ("sync", ["alice", "--timeout"], "needs a value"),
    ("sync", ["alice", "--timeout", "soon"], "must be a number"),
    ("status", ["--verbose"], r"unknown option --verbose; usage: status \[MAILBOX\]"),
    ("sync", ["alice", "--timout", "5"], r"unknown option --timout; did you mean --timeout\? usage: sync MAILBOX"),
])
def test_words_that_cannot_be_meant_are_refused(command: str, words: list[str], message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        args_from_words(COMMANDS[command], words)


@pytest.mark.parametrize(("command", "args", "message"), [
    ("sync", {}, "mailbox is required"),
    ("sync", {"mailbox": "alice", "folders": "INBOX"}, "list of strings"),
    ("sync", {"mailbox": "alice", "timeout": -1}, "positive number"),
    ("quarantine", {"action": "purge"}, "list or retry or drop"),
    ("remove", {"mailbox": "bob", "purge": "yes"}, "true or false"),
    ("pause", {"mailbox": ""}, "non-empty string"),
    ("status", {"mailbox": "alice", "colour": "red"}, "unknown argument"),
])
def test_args_are_checked_against_the_command(command: str, args: dict[str, object], message: str) -> None:
    with pytest.raises(ProtocolError, match=message) as refused:
        validate_args(COMMANDS[command], args)
    assert refused.value.code == "bad-argument"


def test_every_command_has_a_usage_line_naming_its_required_arguments() -> None:
    assert COMMANDS["sync"].usage() == "sync MAILBOX [FOLDERS ...] [--timeout TIMEOUT]"
    assert COMMANDS["quarantine"].usage().startswith("quarantine list|retry|drop [ID]")
    assert all(spec.summary for spec in COMMANDS.values())


def test_replies_are_single_lines_even_with_newlines_in_values() -> None:
    value = "a\nb\u2028c\u2029d\x85e"  # a folder name or subject from a server may hold any of them
    line = encode_line({"ok": True, "result": {"text": value}})
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    assert line.decode().splitlines() == [line.decode().rstrip("\n")]
    assert json.loads(line)["result"]["text"] == value


def test_a_socket_path_too_long_for_the_kernel_is_refused_with_advice(tmp_path: object) -> None:
    with pytest.raises(ProtocolError, match="shorter --data-dir"):
        console_socket_path(__import__("pathlib").Path("/tmp/" + "d" * 120))


def test_a_changes_cursor_is_a_whole_number_and_zero_means_from_the_start() -> None:
    spec = command_spec("changes")
    assert args_from_words(spec, ["0"]) == {"since": 0}
    assert args_from_words(spec, ["1200", "--mailbox", "alice"]) == {"since": 1200, "mailbox": "alice"}
    for bad in (["1.5"], ["-3"], ["soon"]):
        with pytest.raises(ProtocolError):
            args_from_words(spec, bad)
    for value in (-1, 2.5, True):
        with pytest.raises(ProtocolError):
            validate_args(spec, {"since": value})
