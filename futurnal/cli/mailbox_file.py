"""The file ``imap import`` reads: one record per mailbox, with the options of ``imap add`` as fields.

TOML (an array of ``[[mailbox]]`` tables) or JSON Lines (one object a line); a field is an option
of ``imap add`` spelled without its dashes, ``-`` as ``_`` (``--consent-scopes`` is
``consent_scopes``, ``--id`` is ``id``), taken from that command's own parser so the two never
differ. A secret is never in the file: ``password_file`` / ``client_secret_file`` name a file that
only its owner can read, ``password_command`` / ``client_secret_command`` a command (a list of
words, run without a shell) that prints it. Relative paths are taken from the file's directory,
where the commands run too.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import stat
import subprocess
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from futurnal.logs.configure import redactor
from futurnal.suggestions import closest

from .output import UserError

__all__ = [
    "FORMATS",
    "Field",
    "FileRecord",
    "RecordOptions",
    "SecretSource",
    "add_fields",
    "file_format",
    "in_file_terms",
    "read_records",
    "record_options",
]

FORMATS = ("toml", "jsonl")
_EXTENSIONS = {".toml": "toml", ".jsonl": "jsonl", ".json": "jsonl"}
_TABLE = "mailbox"  # TOML: [[mailbox]]

#: Options of ``imap add`` that are no field: how the command reads a secret or prints its result.
_NOT_FIELDS = ("help", "password_stdin", "client_secret_stdin", "json")
#: Where each secret comes from, instead of ``--password-stdin`` and ``--client-secret-stdin``.
_SECRETS = {"password": ("password_file", "password_command"),
            "client_secret": ("client_secret_file", "client_secret_command")}
#: Fields that would put a secret in the file, or read it from stdin: refused, naming the sources.
_REFUSED = {"password": "password", "client_secret": "client_secret", "password_stdin": "password",
            "client_secret_stdin": "client_secret"}
#: Comma-separated options, also written as a list of names.
_NAME_LISTS = ("folders", "exclude", "watch", "consent_scopes")
#: Options naming a file, taken from the import file's directory.
_PATHS = ("cafile",)


@dataclass(frozen=True, slots=True)
class Field:
    """One option of ``imap add`` as a field: its ``dest`` in the parsed options, the JSON type it
    takes (``bool``, ``int``, ``float``, ``str`` or ``list``), its choices and default."""

    name: str
    dest: str
    kind: type
    choices: tuple[Any, ...] | None
    default: Any
    required: bool


def add_fields(parser: argparse.ArgumentParser) -> dict[str, Field]:
    """The fields of a record: the options of ``parser`` (``imap add``'s), by field name. Read from
    the parser's actions (argparse has no public way to list them), so a new option of ``imap add``
    is a field at once."""
    fields = {}
    for action in parser._actions:
        long = [option for option in action.option_strings if option.startswith("--")]
        name = long[0][2:].replace("-", "_") if long else action.dest
        if name in _NOT_FIELDS:
            continue
        if action.nargs == 0:
            kind: type = bool
        elif isinstance(action, argparse._AppendAction):
            kind = list
        elif action.type in (int, float):
            kind = action.type
        else:
            kind = str
        fields[name] = Field(name, action.dest, kind, tuple(action.choices) if action.choices else None,
                             action.default, action.required)
    return fields


def in_file_terms(message: str, fields: Iterable[Field]) -> str:
    """A message of ``imap add`` about its options, with each option named as its field is
    (``--port 0 ...`` -> ``port 0 ...``, ``--password-stdin`` -> ``password_file/password_command``)."""
    names = {f"--{field.name.replace('_', '-')}": field.name for field in fields}
    names.update({f"--{secret.replace('_', '-')}-stdin": "/".join(pair) for secret, pair in _SECRETS.items()})
    return _OPTION.sub(lambda match: names.get(match.group(), match.group()), message)


_OPTION = re.compile(r"--[a-z][a-z0-9-]*")


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One record of the file: its place (1-based, and its first line where known) and its fields as written."""

    number: int
    line: int | None
    fields: dict[str, Any]

    def label(self) -> str:
        """``record 3 (line 5, carol@example.org)``: how errors name it."""
        email = self.fields.get("email")
        where = [f"line {self.line}"] if self.line is not None else []
        where += [email] if isinstance(email, str) and email else []
        return f"record {self.number}" + (f" ({', '.join(where)})" if where else "")


def file_format(path: Path, given: str | None) -> str:
    """``given``, else the format the file's extension names (.toml; .jsonl or .json: JSON Lines)."""
    if given is not None:
        return given
    found = _EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise UserError(f"{path}: cannot tell the format from the extension {path.suffix or '(none)'!r}; "
                        f"name it .toml or .jsonl, or pass --format {'|'.join(FORMATS)}", code=2)
    return found


def read_records(path: Path, fmt: str) -> list[FileRecord]:
    """The records of the file; a file that cannot be read, or is not valid TOML or JSON Lines, is
    refused whole (:class:`UserError`, exit status 2) with the place of the error."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: {exc.strerror}", code=2) from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text", code=2) from None
    records = _toml_records(path, text) if fmt == "toml" else _json_lines_records(path, text)
    if not records:
        example = "[[mailbox]] tables" if fmt == "toml" else "JSON objects, one a line"
        raise UserError(f"{path}: no mailbox records (expected {example})", code=2)
    return records


def _toml_records(path: Path, text: str) -> list[FileRecord]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}", code=2) from None
    for key in document:
        if key != _TABLE:
            raise UserError(f"{path}: unknown table {key!r}{_hint(key, [_TABLE])}; each mailbox is a "
                            f"[[{_TABLE}]] table", code=2)
    tables = document.get(_TABLE, [])
    if not isinstance(tables, list) or not all(isinstance(table, dict) for table in tables):
        raise UserError(f"{path}: write each mailbox as a [[{_TABLE}]] table (two brackets)", code=2)
    # tomllib gives no positions: each [[mailbox]] header's line, when the headers are plain to see
    lines = [number for number, line in enumerate(text.splitlines(), 1) if _TABLE_HEADER.match(line)]
    places: list[int | None] = list(lines) if len(lines) == len(tables) else [None] * len(tables)
    return [FileRecord(number, line, table) for number, (line, table) in enumerate(zip(places, tables), 1)]


_TABLE_HEADER = re.compile(rf"\s*\[\[\s*{_TABLE}\s*\]\]\s*(#.*)?$")


def _json_lines_records(path: Path, text: str) -> list[FileRecord]:
    records: list[FileRecord] = []
    for line_number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: line {line_number}: not valid JSON: {exc.msg} (column {exc.colno})",
                            code=2) from None
        if not isinstance(value, dict):
            raise UserError(f"{path}: line {line_number}: a record is a JSON object, not {_json_type(value)}",
                            code=2)
        records.append(FileRecord(len(records) + 1, line_number, value))
    return records


@dataclass(frozen=True, slots=True)
class SecretSource:
    """Where one secret comes from: a file only its owner can read, or a command that prints it."""

    field: str
    path: Path | None = None
    command: tuple[str, ...] | None = None
    cwd: Path | None = None

    @property
    def where(self) -> str:
        """The field and the file or the command: how errors name the source."""
        return f"{self.field} {self.path if self.path is not None else (self.command or ('?',))[0]}"

    def read(self, timeout: float) -> str:
        """The secret, without its line ending; :class:`UserError` naming the source when it cannot be had."""
        text = self._from_file() if self.path is not None else self._from_command(timeout)
        secret = text.rstrip("\r\n")
        if not secret:
            raise UserError(f"{self.where}: the secret is empty", code=2)
        if "\n" in secret or "\r" in secret:
            raise UserError(f"{self.where}: more than one line; the secret alone is expected", code=2)
        redactor.add_secret(secret)
        return secret

    def _from_file(self) -> str:
        assert self.path is not None
        try:
            with open(self.path, "rb") as file:
                mode = os.fstat(file.fileno()).st_mode
                if not stat.S_ISREG(mode):
                    raise UserError(f"{self.where}: not a regular file", code=2)
                if mode & 0o044:
                    raise UserError(f"{self.where}: readable by others (mode {stat.S_IMODE(mode):04o}); keep a secret "
                                    f"where only you can read it: chmod 600 {self.path}", code=2)
                raw = file.read()
        except OSError as exc:
            raise UserError(f"{self.where}: {exc.strerror}", code=2) from None
        return _decoded(raw, self.where)

    def _from_command(self, timeout: float) -> str:
        assert self.command is not None
        try:  # no shell; its stderr goes to the user (a password manager may say why it failed)
            done = subprocess.run(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, cwd=self.cwd,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise UserError(f"{self.where}: gave no answer within {timeout:g} s (--command-timeout)") from None
        except OSError as exc:
            raise UserError(f"{self.where}: {exc.strerror}", code=2) from None
        if done.returncode != 0:
            raise UserError(f"{self.where}: failed with exit status {done.returncode}")
        return _decoded(done.stdout, self.where)


def _decoded(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{where}: the secret is not UTF-8 text", code=2) from None


@dataclass(frozen=True, slots=True)
class RecordOptions:
    """A record as ``imap add``'s parsed options, and where its secrets come from."""

    args: argparse.Namespace
    password: SecretSource | None
    client_secret: SecretSource | None


def record_options(record: FileRecord, fields: dict[str, Field], parser: argparse.ArgumentParser,
                   base: Path) -> RecordOptions:
    """``record``'s fields checked (known, of their type, among their choices) and made the options
    ``imap add`` would have parsed; :class:`UserError` (exit status 2) naming the first bad field."""
    values = record.fields
    secret_fields = [name for pair in _SECRETS.values() for name in pair]
    for name in values:
        if name in _REFUSED:
            file_field, command_field = _SECRETS[_REFUSED[name]]
            raise UserError(f"{name!r} cannot be given: a secret is never read from the import file or stdin; "
                            f"name where it is kept: {file_field} = PATH or {command_field} = [COMMAND, ARG...]",
                            code=2)
        if name not in fields and name not in secret_fields:
            raise UserError(f"unknown field {name!r}{_hint(name, [*fields, *secret_fields])}", code=2)
    args = argparse.Namespace(**{field.dest: copy.copy(field.default) for field in fields.values()})
    for name, value in values.items():
        if name in fields:
            setattr(args, fields[name].dest, _checked(fields[name], value, base))
    for field in fields.values():
        if field.required and field.name not in values:
            raise UserError(f"{field.name} is required", code=2)
    for group in parser._mutually_exclusive_groups:
        given = [field.name for field in fields.values()
                 if field.name in values and any(action.dest == field.dest for action in group._group_actions)]
        if len(given) > 1:
            raise UserError(f"{' and '.join(given)} do not go together: give one", code=2)
    sources = {secret: _source(values, pair, base) for secret, pair in _SECRETS.items()}
    args.password_stdin = False  # the secrets come from their sources, never from stdin
    args.client_secret_stdin = sources["client_secret"] is not None
    args.json = False
    return RecordOptions(args, sources["password"], sources["client_secret"])


def _checked(field: Field, value: Any, base: Path) -> Any:
    if field.name in _NAME_LISTS and isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = ",".join(value)
    elif field.kind is list and isinstance(value, str):
        value = [value]
    if not _is(value, field.kind):
        expected = "a comma-separated string or a list of names" if field.name in _NAME_LISTS else _KIND_TEXT[field.kind]
        raise UserError(f"{field.name} must be {expected}, not {value!r}", code=2)
    if field.choices is not None and value not in field.choices:
        raise UserError(f"{field.name} must be one of {', '.join(map(str, field.choices))}, not {value!r}", code=2)
    if field.name in _PATHS:
        value = str(_path(value, base))
    return value


_KIND_TEXT = {bool: "true or false", int: "a whole number", float: "a number", str: "a string",
              list: "a list of strings"}


def _is(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is list:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, str)


def _source(values: dict[str, Any], pair: tuple[str, str], base: Path) -> SecretSource | None:
    file_field, command_field = pair
    if file_field in values and command_field in values:
        raise UserError(f"{file_field} and {command_field} do not go together: give one", code=2)
    if file_field in values:
        path = values[file_field]
        if not isinstance(path, str) or not path:
            raise UserError(f"{file_field} must be a file name, not {path!r}", code=2)
        return SecretSource(file_field, path=_path(path, base))
    if command_field in values:
        command = values[command_field]
        if not (isinstance(command, list) and command and all(isinstance(word, str) and word for word in command)):
            raise UserError(f"{command_field} must be a list of words, the command and its arguments (run without "
                            f"a shell), not {command!r}", code=2)
        return SecretSource(command_field, command=tuple(command), cwd=base)
    return None


def _path(name: str, base: Path) -> Path:
    return base / Path(name).expanduser()  # an absolute name stays as it is


def _hint(name: str, known: list[str]) -> str:
    close = closest(name, known)
    return f"; did you mean {close!r}?" if close else f" (known: {', '.join(sorted(known))})"


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "true or false", type(None): "null"}.get(type(value), "a number")
