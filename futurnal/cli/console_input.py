"""What the interactive ``console`` does with the keyboard: Tab completion by position, and Ctrl+C
that drops the line (or the reply waited for), not the console."""

from __future__ import annotations

import cmd
from collections.abc import Sequence

from futurnal.console import COMMANDS, CommandSpec, Param

__all__ = ["EXTRA_COMMANDS", "InterruptibleShell", "completions"]

#: Words of the console itself, beside the process's commands.
EXTRA_COMMANDS = ("quit", "exit")


def completions(line: str, begidx: int, text: str, mailboxes: Sequence[str]) -> list[str]:
    """What may complete ``text`` typed at ``begidx`` of ``line``: a command name first; after it,
    what the command takes at that position (``help``: a command; a mailbox: the mailbox ids; an
    argument with choices: its choices; after ``--name``: that option's values), and its options
    where a word starts with ``-``."""
    words = line[:begidx].split()
    if not words:
        return _starting([*COMMANDS, *EXTRA_COMMANDS], text)
    spec = COMMANDS.get(words[0])
    if spec is None:
        return []
    options = {f"--{param.name.replace('_', '-')}": param for param in spec.params if not param.positional}
    options.update({f"--{param.name.replace('_', '-')}": param for param in spec.params
                    if param.positional and param.kind != "flag"})
    after = options.get(words[-1]) if len(words) > 1 else None
    if after is not None and after.kind != "flag":
        return _starting(_values(spec, after, mailboxes), text)
    if text.startswith("-"):
        given = set(words[1:])
        every = [f"--{param.name.replace('_', '-')}" for param in spec.params  # those typed as options
                 if not param.positional or param.kind == "flag"]
        return _starting([option for option in every if option not in given], text)
    param = _positional(spec, words[1:], options)
    return _starting(_values(spec, param, mailboxes), text) if param is not None else []


class InterruptibleShell(cmd.Cmd):
    """A command loop in which Ctrl+C drops the line being typed, or stops waiting for the reply of
    the command it runs (saying :attr:`interrupted`), and prompts again; Ctrl+D and the commands
    that end it end it."""

    interrupted = "interrupted"

    def onecmd(self, line: str) -> bool:
        try:
            return bool(super().onecmd(line))
        except KeyboardInterrupt:
            print(f"\n{self.interrupted}", flush=True)
            return False

    def run(self) -> None:
        while True:
            try:
                self.cmdloop()
                return
            except KeyboardInterrupt:  # at the prompt: the line typed so far is dropped
                print(flush=True)
                self.intro = None  # said once


def _positional(spec: CommandSpec, typed: list[str], options: dict[str, Param]) -> Param | None:
    """The positional argument the next word fills, given the words typed after the command."""
    positional = [param for param in spec.params if param.positional and param.kind != "flag"]
    filled = 0
    skip = False
    for word in typed:
        if skip:
            skip = False
        elif word in options:
            skip = options[word].kind != "flag"
        elif not word.startswith("--"):
            filled += 1
    for param in positional:
        if param.kind == "texts" or filled == 0:
            return param
        filled -= 1
    return None


def _values(spec: CommandSpec, param: Param, mailboxes: Sequence[str]) -> list[str]:
    if spec.name == "help" and param.name == "command":
        return list(COMMANDS)
    if param.choices:
        return list(param.choices)
    if param.name == "mailbox":
        return list(mailboxes)
    return []


def _starting(words: Sequence[str], text: str) -> list[str]:
    return [word for word in words if word.startswith(text)]
