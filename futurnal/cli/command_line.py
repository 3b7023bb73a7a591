"""The command line's parser: argparse, with a "did you mean" for a mistyped command, choice or
option, usage errors reported by the (sub)command they concern, and examples in every ``--help``.

:func:`walk` goes through the tree of commands, for what is built from it (shell completion,
the check that every command has examples).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator, Sequence
from typing import Any

from futurnal.suggestions import closest

__all__ = ["Parser", "subcommands", "timeout_seconds", "walk"]


class Parser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` (its subcommands' parsers are of this class too).

    Words it cannot place are reported by the parser that last had them, the subcommand's own
    (``futurnal-actors imap sync: error: unrecognized arguments: --jsn; did you mean --json?``,
    under its usage), not by the top-level one: argparse hands them up to the top unread.
    ``examples`` are command lines (without the program's name) shown at the end of ``--help``.
    """

    def __init__(self, *args: Any, examples: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.examples = tuple(examples)
        #: The top-level options, which a subcommand names when they come after it.
        self.global_options: frozenset[str] = frozenset()

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(self._unrecognized(extras))
        return parsed, extras

    def _unrecognized(self, extras: list[str]) -> str:
        message = f"unrecognized arguments: {' '.join(extras)}"
        for word in extras:
            option = word.partition("=")[0]
            if not option.startswith("--"):
                continue
            if option in self.global_options:
                return (f"{message}; {option} is an option of futurnal-actors itself: "
                        f"put it before the command ({self.prog.split(' ')[0]} {option} ... "
                        f"{' '.join(self.prog.split(' ')[1:])} ...)")
            close = closest(option, [name for name in self._option_string_actions if name.startswith("--")])
            if close:
                return f"{message}; did you mean {close}?"
        return message

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """An invalid choice (a command, a --security, ...) names the one it most likely misspells."""
        if action.choices is None or value in action.choices:
            return
        close = closest(str(value), [str(choice) for choice in action.choices])
        hint = f"did you mean {close!r}?" if close else f"choose from {', '.join(map(str, action.choices))}"
        raise argparse.ArgumentError(action, f"invalid choice: {value!r}; {hint}")

    def format_help(self) -> str:
        text = super().format_help()
        if not self.examples:
            return text
        program = self.prog.split(" ")[0]
        return text + "\nexamples:\n" + "".join(f"  {program} {line}\n" for line in self.examples)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser, str]]:
    """The parser's subcommands by name, each with its parser and its one-line help (empty when
    it has none; a hidden one is left out)."""
    found: dict[str, tuple[argparse.ArgumentParser, str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                found[name] = (sub, helps.get(name, ""))
    return found


def walk(parser: argparse.ArgumentParser,
         path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """``parser`` and every parser below it, each with the words that lead to it (``("imap", "sync")``)."""
    yield path, parser
    for name, (sub, _help) in subcommands(parser).items():
        yield from walk(sub, (*path, name))


def timeout_seconds(text: str) -> float:
    """A ``--timeout``: a number of seconds above 0 (0 would give up before anything is done)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"{text} seconds would give up before anything is done: give more than 0 seconds, "
            "or leave the option out to wait until it is done")
    return value
