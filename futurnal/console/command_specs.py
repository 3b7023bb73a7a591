"""The admin console's commands: names, parameters and help, shared by the server and its clients.

The server validates each request's ``args`` against these; ``ctl`` and the interactive console
turn typed words into ``args`` with :func:`args_from_words`, so both spell commands the same way.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from futurnal.storage.consent import SCOPES
from futurnal.suggestions import closest

from .protocol import ProtocolError

__all__ = ["COMMANDS", "STREAMS", "CommandSpec", "Param", "args_from_words", "command_spec", "validate_args"]

ParamKind = Literal["text", "texts", "number", "count", "flag", "object"]


@dataclass(frozen=True, slots=True)
class Param:
    """One argument. ``positional`` ones may be typed in order; every one also as ``--name value``."""

    name: str
    kind: ParamKind = "text"
    required: bool = False
    positional: bool = True
    choices: tuple[str, ...] = ()
    help: str = ""


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    summary: str
    params: tuple[Param, ...] = ()

    def usage(self) -> str:
        words = [self.name]
        for param in self.params:
            if param.kind == "flag":
                words.append(f"[--{param.name}]")
                continue
            shown = "|".join(param.choices) if param.choices else param.name.upper()
            if param.kind == "texts":
                shown += " ..."
            if not param.positional:
                shown = f"--{param.name} {shown}"
            words.append(shown if param.required else f"[{shown}]")
        return " ".join(words)


_MAILBOX = Param("mailbox", required=True, help="a mailbox id or address")

COMMANDS: dict[str, CommandSpec] = {spec.name: spec for spec in (
    CommandSpec("help", "list the commands, or describe one", (Param("command"),)),
    CommandSpec("status", "mailboxes and their folders: state, sync watermarks, freshness, queue depths",
                (Param("mailbox", help="only this mailbox"),)),
    CommandSpec("actors", "the supervision tree: every actor's state, restart count and inbox depth"),
    CommandSpec("sync", "sync a mailbox now and answer with its report", (
        _MAILBOX,
        Param("folders", "texts", help="only these folders (default: the mailbox's selection)"),
        Param("timeout", "number", positional=False, help="seconds to wait for the report (default 3600)"),
    )),
    CommandSpec("pause", "start no syncs of a mailbox until resumed (a sync in flight finishes)", (_MAILBOX,)),
    CommandSpec("resume", "sync a paused mailbox again, catching up on what it missed", (_MAILBOX,)),
    CommandSpec("quarantine", "messages set aside: list them, retry parsing them, or drop them", (
        Param("action", required=True, choices=("list", "retry", "drop")),
        Param("id", help="a quarantine record id (retry without one retries every record)"),
        Param("mailbox", positional=False, help="list only this mailbox's records"),
    )),
    CommandSpec("consent", "show, grant or revoke a mailbox's consent; revoking stops its actors", (
        Param("action", required=True, choices=("show", "grant", "revoke")),
        _MAILBOX,
        Param("scopes", "texts", help=f"grant: {', '.join(SCOPES[:-1])} and/or {SCOPES[-1]} (default: all)"),
        Param("expires", positional=False, help="grant: expiry, ISO 8601 (UTC if no offset)"),
        Param("granted_by", positional=False, help="grant: who is granting (default: console user)"),
    )),
    CommandSpec("add", "register a mailbox whose secret is already in the keyring, and start its actors "
                "(what `imap add` sends while a process runs)", (
        Param("record", "object", required=True, positional=False, help="the mailbox record, as `imap list --json`"),
        Param("scopes", "texts", help="consent scopes granted with it (none: registered but not fetched)"),
        Param("granted_by", positional=False, help="who granted the consent"),
    )),
    CommandSpec("remove", "stop a mailbox's actors and unregister it; --purge deletes its data too", (
        _MAILBOX, Param("purge", "flag", help="also delete its elements, quarantine and sync state"),
    )),
    CommandSpec("schedule", "set a mailbox's schedule and/or priority; the scheduler takes them at once", (
        _MAILBOX,
        Param("spec", positional=False, help="@interval SECONDS, @manual, or a cron expression"),
        Param("priority", positional=False, choices=("low", "normal", "high")),
    )),
    CommandSpec("budget", "show or set a mailbox's daily download budget; setting it restarts the mailbox's "
                "actors, so it counts at once", (
        _MAILBOX,
        Param("mb", "count", help="megabytes in a rolling 24 hours; 0: no budget (omitted: only show it)"),
    )),
    CommandSpec("reauthenticated", "the mailbox's secret in the keyring was renewed (what `imap reauth` sends): "
                "audit it, restart the mailbox's actors with it and sync", (
        _MAILBOX, Param("auth", positional=False, choices=("password", "oauth2"), help="how it signs in now"),
    )),
    CommandSpec("reload", "re-read the mailbox registry and schedules, like SIGHUP"),
    CommandSpec("shutdown", "stop the process cleanly, like SIGTERM"),
    CommandSpec("changes", "stream the element store's change feed from a cursor, one change per line (as "
                "`elements changes --follow` prints them), until the connection closes", (
        Param("since", "count", help="only changes after this seq (default: from the beginning)"),
        Param("mailbox", positional=False, help="only this mailbox's changes (its id)"),
    )),
    CommandSpec("subscribe", "stream events (syncs started and finished, progress, restarts, quarantines, "
                "watcher changes) until the connection closes"),
)}


#: Commands answered by a stream of lines until the connection closes, rather than one reply.
STREAMS = frozenset({"subscribe", "changes"})


def command_spec(name: str) -> CommandSpec:
    spec = COMMANDS.get(name)
    if spec is None:
        close = closest(name, COMMANDS)
        hint = f"; did you mean {close!r}?" if close else f"; commands: {', '.join(COMMANDS)}"
        raise ProtocolError("unknown-command", f"unknown command {name!r}{hint}")
    return spec


def validate_args(spec: CommandSpec, args: dict[str, Any]) -> dict[str, Any]:
    """``args`` checked against ``spec``: known names, right types, required ones present."""
    params = {param.name: param for param in spec.params}
    unknown = sorted(set(args) - set(params))
    if unknown:
        raise ProtocolError("bad-argument", f"{spec.name}: unknown argument(s) {', '.join(unknown)}; "
                            f"usage: {spec.usage()}")
    checked: dict[str, Any] = {}
    for param in spec.params:
        value = args.get(param.name)
        if value is None:
            if param.required:
                raise ProtocolError("bad-argument", f"{spec.name}: {param.name} is required; usage: {spec.usage()}")
            continue
        checked[param.name] = _checked(spec, param, value)
    return checked


def _checked(spec: CommandSpec, param: Param, value: Any) -> Any:
    def bad(expected: str) -> ProtocolError:
        return ProtocolError("bad-argument", f"{spec.name}: {param.name} must be {expected}, not {value!r}")

    if param.kind == "texts":
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise bad("a list of strings")
        return value
    if param.kind == "number":
        if not _positive_number(value):
            raise bad("a positive number")
        return value
    if param.kind == "count":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad("a whole number, 0 or more")
        return value
    if param.kind == "flag":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if param.kind == "object":
        if not isinstance(value, dict):
            raise bad("a JSON object")
        return value
    if not isinstance(value, str) or not value:
        raise bad("a non-empty string")
    if param.choices and value not in param.choices:
        raise bad(" or ".join(param.choices))
    return value


def _positive_number(value: Any) -> bool:
    """A JSON number above 0 that a timeout can use: not a bool, not NaN (which no comparison
    refuses), not infinite, not an integer too big for a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value) and value > 0
    except OverflowError:
        return False


def args_from_words(spec: CommandSpec, words: list[str]) -> dict[str, Any]:
    """Typed words to ``args``: positionals in order (a ``texts`` one takes the rest), ``--name value``
    anywhere, ``--flag`` for flags. Raises :class:`ProtocolError` on what cannot be meant."""
    params = {param.name.replace("_", "-"): param for param in spec.params}
    positional = [param for param in spec.params if param.positional and param.kind != "flag"]
    args: dict[str, Any] = {}
    rest = list(words)
    while rest:
        word = rest.pop(0)
        if word.startswith("--") and len(word) > 2:
            param = params.get(word[2:])
            if param is None:
                close = closest(word[2:], params)
                hint = f"; did you mean --{close}?" if close else ";"
                raise ProtocolError("bad-argument", f"{spec.name}: unknown option {word}{hint} usage: {spec.usage()}")
            if param.kind == "flag":
                args[param.name] = True
                continue
            if not rest:
                raise ProtocolError("bad-argument", f"{spec.name}: {word} needs a value")
            _put(spec, args, param, rest.pop(0))
            continue
        free = [param for param in positional if param.name not in args or param.kind == "texts"]
        if not free:
            raise ProtocolError("bad-argument", f"{spec.name}: unexpected {word!r}; usage: {spec.usage()}")
        _put(spec, args, free[0], word)
    return args


def _put(spec: CommandSpec, args: dict[str, Any], param: Param, word: str) -> None:
    if param.kind == "texts":
        args.setdefault(param.name, []).append(word)
    elif param.kind == "object":
        try:
            args[param.name] = json.loads(word)
        except json.JSONDecodeError:
            raise ProtocolError("bad-argument", f"{spec.name}: {param.name} must be a JSON object") from None
    elif param.kind == "count":
        if not (word.isascii() and word.isdigit()):  # "²" is a digit to isdigit, not to int
            raise ProtocolError("bad-argument", f"{spec.name}: {param.name} must be a whole number, not {word!r}")
        args[param.name] = int(word)
    elif param.kind == "number":
        try:
            args[param.name] = float(word)
        except ValueError:
            raise ProtocolError("bad-argument", f"{spec.name}: {param.name} must be a number, not {word!r}") from None
    else:
        args[param.name] = word
