"""The interactive console's keyboard: Tab completion by position, Ctrl+C that drops a line."""

from __future__ import annotations

import io
import sys

import pytest

from futurnal.cli.console_input import InterruptibleShell, completions
from futurnal.console import COMMANDS

MAILBOXES = ["alice", "alice-example.org", "bob"]


def complete(line: str) -> list[str]:
    """What Tab offers at the end of ``line``, as readline splits it (at spaces only)."""
    begidx = line.rfind(" ") + 1
    return completions(line, begidx, line[begidx:], MAILBOXES)


def test_the_first_word_completes_command_names_only() -> None:
    assert complete("") == [*COMMANDS, "quit", "exit"]
    assert complete("s") == ["status", "sync", "schedule", "shutdown", "subscribe"]
    assert complete("re") == ["resume", "remove", "reauthenticated", "reload"]
    assert complete("al") == []  # a mailbox is no command


def test_a_command_taking_a_mailbox_completes_mailbox_ids_at_its_position() -> None:
    assert complete("pause ") == MAILBOXES
    assert complete("sync al") == ["alice", "alice-example.org"]
    assert complete("sync alice ") == []  # folders: nothing to offer
    assert complete("status b") == ["bob"]
    assert complete("actors ") == []  # takes nothing


def test_choices_come_before_the_mailbox_where_a_command_takes_both() -> None:
    assert complete("consent ") == ["show", "grant", "revoke"]
    assert complete("consent grant ") == MAILBOXES
    assert complete("consent grant alice ") == []  # scopes are free words
    assert complete("quarantine ") == ["list", "retry", "drop"]
    assert complete("quarantine list ") == []  # a record id


def test_options_and_their_values() -> None:
    assert complete("schedule alice --") == ["--spec", "--priority"]
    assert complete("schedule alice --priority ") == ["low", "normal", "high"]
    assert complete("schedule alice --priority low --") == ["--spec"]  # not offered twice
    assert complete("quarantine list --mailbox ") == MAILBOXES
    assert complete("sync --timeout 30 ") == MAILBOXES  # an option's value is no positional word
    assert complete("remove alice --p") == ["--purge"]


def test_help_completes_command_names() -> None:
    assert complete("help sy") == ["sync"]
    assert complete("nosuch ") == []


class Shell(InterruptibleShell):
    """Types its lines from a script; a line ``^C`` is Ctrl+C at the prompt, ``wait`` one during a command."""

    interrupted = "interrupted; the process may still complete it"
    use_rawinput = False

    def __init__(self, lines: list[str]) -> None:
        super().__init__(stdin=io.StringIO(), stdout=sys.stdout)
        self.script, self.done = list(lines), []  # type: ignore[var-annotated]
        self.prompt = ""

    def precmd(self, line: str) -> str:
        return line

    def cmdloop(self, intro: object = None) -> None:
        self.stdin = io.StringIO("")
        while self.script:
            line = self.script.pop(0)
            if line == "^C":
                raise KeyboardInterrupt
            if self.onecmd(line):
                return

    def default(self, line: str) -> bool:
        if line == "wait":
            raise KeyboardInterrupt  # Ctrl+C while the reply is awaited
        if line == "EOF":
            return True
        self.done.append(line)
        return False


def test_ctrl_c_drops_the_line_or_the_wait_and_the_shell_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    shell = Shell(["status", "^C", "wait", "actors", "EOF", "never"])
    shell.run()
    assert shell.done == ["status", "actors"] and shell.script == ["never"]
    assert capsys.readouterr().out == "\n\ninterrupted; the process may still complete it\n"
