"""``ctl`` (one command, for scripts) and ``console`` (interactive): clients of a running process."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from typing import Any

from futurnal.console import (
    COMMANDS,
    STREAMS,
    CommandSpec,
    ConsoleClient,
    ConsoleError,
    ConsoleUnavailable,
    ProtocolError,
    args_from_words,
    command_spec,
)

from .console_input import InterruptibleShell, completions
from .console_render import render_event, render_reply
from .context import CommandContext
from .output import UserError, json_line, print_json, visible

__all__ = ["register"]

_COMMAND_LIST = ", ".join(COMMANDS)


def register(subparsers: Any) -> None:
    ctl = subparsers.add_parser(
        "ctl",
        help="send one command to the running process (status, actors, sync, pause, resume, ...)",
        description="Send one admin console command to the `run` process of this data directory and print "
        f"its reply. Commands: {_COMMAND_LIST}. `ctl COMMAND --help` describes one. Exit status: 0 done, "
        "1 the process answered with an error or is not running, 2 bad usage.",
    )
    ctl.add_argument("--json", action="store_true",
                     help="print the reply as one JSON document (a stream: one JSON object per line)")
    ctl.add_argument("console_command", metavar="COMMAND", help="one of: " + _COMMAND_LIST)
    ctl.add_argument("words", nargs=argparse.REMAINDER, metavar="ARGS",
                     help="the command's arguments (`ctl COMMAND --help` lists them)")
    ctl.set_defaults(handler=_ctl)
    console = subparsers.add_parser(
        "console",
        help="interactive admin console of the running process (history, completion, help)",
        description="An interactive shell on the running process's admin console socket. `help` lists "
        "the commands, `help COMMAND` describes one, Tab completes, Ctrl+D leaves.",
    )
    console.set_defaults(handler=_console)


def _client(ctx: CommandContext) -> ConsoleClient:
    try:
        return ConsoleClient(ctx.data_dir.root)
    except (ConsoleUnavailable, ProtocolError) as exc:
        raise UserError(f"{exc}; start it with `futurnal-actors run`") from None


def _request(command: str, words: list[str]) -> dict[str, Any]:
    """What the user typed, checked here first so usage mistakes exit 2 without a round trip."""
    try:
        return args_from_words(command_spec(command), words)
    except ProtocolError as exc:
        raise UserError(exc.message, code=2) from None


def _ctl(args: argparse.Namespace, ctx: CommandContext) -> int:
    words = [word for word in args.words if word != "--json"]
    as_json = args.json or len(words) != len(args.words)
    if "--help" in words or "-h" in words:  # answered here: no process needed
        try:
            spec = command_spec(args.console_command)
        except ProtocolError as exc:
            raise UserError(exc.message, code=2) from None
        print(_help(spec, f"futurnal-actors ctl {spec.usage()} [--json]"))
        return 0
    request = _request(args.console_command, words)
    client = _client(ctx)
    if args.console_command in STREAMS:
        try:
            _print_stream(client, args.console_command, request, as_json)
        except ConsoleError as exc:
            raise UserError(exc.message, code=3 if exc.code == "cursor-expired" else 1) from None
        return 0
    try:
        result = client.call(args.console_command, **request)
    except ConsoleError as exc:
        if as_json:
            print_json({"ok": False, "error": {"code": exc.code, "message": exc.message}})
        raise UserError(exc.message) from None
    if as_json:
        print_json(result)
    else:
        print(render_reply(args.console_command, result))
    return 0


def _print_stream(client: ConsoleClient, command: str, request: dict[str, Any], as_json: bool) -> None:
    """A stream's lines until Ctrl+C or the process closes it: events rendered for people, or with
    ``as_json`` as JSON Lines, one object a line; changes always as JSON Lines, as ``elements
    changes`` prints them."""
    with contextlib.suppress(KeyboardInterrupt):
        for doc in client.stream(command, **request):
            if command == "changes" or as_json:  # a stream: JSON Lines, one object a line
                print(json_line(doc), flush=True)
            else:
                print(render_event(doc), flush=True)


def _help(spec: CommandSpec, usage: str) -> str:
    """A console command's usage, summary and arguments, as ``help COMMAND`` shows them."""
    return render_reply("help", {"usage": usage, "summary": spec.summary,
                                 "params": [{"name": p.name, "help": p.help} for p in spec.params]})


class _ConsoleShell(InterruptibleShell):
    """Every console command is a line; ``help`` and completion come from the same table."""

    prompt = "futurnal> "
    interrupted = "interrupted: no longer waiting for the reply (the process may still do it; `status` tells)"

    def __init__(self, client: ConsoleClient, mailboxes: list[str]) -> None:
        super().__init__()
        self._client = client
        self._mailboxes = mailboxes
        self.intro = (f"connected to pid {client.server_pid} ({client.path}); `help` lists the commands, "
                      "Ctrl+D leaves")

    def default(self, line: str) -> bool:  # type: ignore[override]  # True ends cmdloop, as onecmd passes it on
        if line == "EOF":
            print()
            return True
        try:
            words = shlex.split(line)
        except ValueError as exc:
            print(f"error: {visible(exc)}")
            return False
        command, rest = words[0], words[1:]
        if command in ("quit", "exit"):
            return True
        try:
            request = args_from_words(command_spec(command), rest)
            if command in STREAMS:
                print(f"streaming {'events' if command == 'subscribe' else 'changes'}; Ctrl+C stops")
                _print_stream(self._client, command, request, as_json=False)
                print()  # the prompt on a line of its own, after the ^C the terminal echoed
                return False
            result = self._client.call(command, **request)
        except (ProtocolError, ConsoleError) as exc:
            print(f"error: {visible(exc.message)}")
            return False
        except (ConsoleUnavailable, ConnectionError) as exc:
            print(f"error: {visible(exc)}")
            return True
        print(render_reply(command, result))
        return command == "shutdown"

    def do_help(self, arg: str) -> None:
        name = arg.strip()
        if not name:
            for spec in COMMANDS.values():
                print(f"{spec.usage()}\n    {spec.summary}")
            print("quit\n    leave the console (so does Ctrl+D)")
            return
        try:
            spec = command_spec(name)
        except ProtocolError as exc:
            print(f"error: {exc.message}")
            return
        print(_help(spec, spec.usage()))

    def completenames(self, text: str, *ignored: Any) -> list[str]:
        return self.completedefault(text, text, 0, len(text))

    def completedefault(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        # Each with its space: Python's readline adds none, and a completed word is a whole one.
        return [f"{word} " for word in completions(line, begidx, text, self._mailboxes)]

    def emptyline(self) -> bool:
        return False


def _console(args: argparse.Namespace, ctx: CommandContext) -> int:
    client = _client(ctx)
    try:
        mailboxes = [report["mailbox"]["id"] for report in client.call("status")["mailboxes"]]
    except ConsoleError:
        mailboxes = []
    history = ctx.data_dir.root / "console_history"
    readline = _readline()
    if readline is not None:
        readline.set_completer_delims(" \t\n")  # ids and options hold '-', '.' and '@': words end at spaces
        with contextlib.suppress(OSError):
            readline.read_history_file(history)
    shell = _ConsoleShell(client, mailboxes)
    if not sys.stdin.isatty():
        shell.prompt = ""
        shell.intro = None
    try:
        shell.run()  # until Ctrl+D or quit; Ctrl+C drops the line, not the console
    finally:
        if readline is not None:
            with contextlib.suppress(OSError):
                readline.set_history_length(1000)
                readline.write_history_file(history)
                history.chmod(0o600)  # commands name mailboxes: private like the rest of the data dir
    return 0


def _readline() -> Any:
    try:
        import readline
    except ImportError:  # not on every platform; the console works without history then
        return None
    return readline
