"""The documentation's fenced blocks and the commands in them, for the tests that hold README.md and
docs/*.md to the real command line (``tests/unit/test_readme.py``) and run the README's quick start
(``tests/integration/test_readme_commands.py``).

A shell block is a fenced block in ``sh``, ``bash``, ``shell`` or ``console`` (where only the lines
after a ``$ `` prompt are commands). The line just before its opening fence says how it is checked:

- ``<!-- checked: parse -->``: every command in it is parsed by futurnal-actors' own argument
  parser (and a ``ctl`` command by the console's), so a command, option or choice that does not
  exist fails the test; a program other than futurnal-actors must be on the test's allow-list.
- ``<!-- checked: run NAME -->``: parsed as above, and run, line by line, by the integration test
  that knows NAME (:data:`RUN_BLOCKS`).

Every shell block of README.md carries one; a block of docs/*.md without one is parsed all the same.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DOCS",
    "README",
    "ROOT",
    "RUN_BLOCKS",
    "SHELL_LANGUAGES",
    "Block",
    "Command",
    "CommandLine",
    "blocks",
    "command_lines",
    "commands",
    "named_block",
]

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = tuple(sorted((ROOT / "docs").glob("*.md")))
SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "console"})
#: The blocks an integration test runs, by the name their marker gives them.
RUN_BLOCKS = {"quick-start": "tests/integration/test_readme_commands.py"}

_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<language>[^`\s]*)")
_MARKER = re.compile(r"^<!--\s*checked:\s*(?P<how>.*?)\s*-->\s*$")
# Operators that end one simple command and start the next.
_SEPARATORS = frozenset({";", "&&", "||", "|", "&", "(", ")", ";;"})
_REDIRECTIONS = frozenset({"<", ">", ">>", "<<", "<<<", ">&", "<&", ">|", "&>"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Block:
    """A fenced block: its file, the line of its opening fence (1-based), language, marker, text."""

    path: Path
    line: int
    language: str
    marker: str | None
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def shell(self) -> bool:
        return self.language in SHELL_LANGUAGES

    @property
    def run_name(self) -> str | None:
        """NAME of a ``run NAME`` marker, else None."""
        if self.marker is None or not self.marker.startswith("run"):
            return None
        return self.marker.removeprefix("run").strip() or None


@dataclass(frozen=True)
class CommandLine:
    """One logical command line of a block (continuation lines joined), and the line it starts on."""

    block: Block
    line: int
    text: str

    @property
    def where(self) -> str:
        return f"{self.block.path.relative_to(ROOT)}:{self.line}"


@dataclass(frozen=True)
class Command:
    """One simple command of a command line: the program as written (wrappers such as ``sudo``
    and ``env`` and variable assignments taken off) and its words, redirections left out."""

    program: str
    words: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.program.rsplit("/", 1)[-1]


def blocks(path: Path) -> list[Block]:
    """Every fenced block of the Markdown file ``path``, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found, number = [], 0
    while number < len(lines):
        opening = _FENCE.match(lines[number])
        if opening is None:
            number += 1
            continue
        fence = opening["fence"]
        end = number + 1
        while end < len(lines) and not (lines[end].startswith(fence[0] * len(fence))
                                        and not lines[end].strip(fence[0]).strip()):
            end += 1
        marker = _MARKER.match(lines[number - 1]) if number else None
        found.append(Block(path, number + 1, opening["language"].lower(), marker["how"] if marker else None,
                           "\n".join(lines[number + 1:end])))
        number = end + 1
    return found


def named_block(name: str, path: Path = README) -> Block:
    """The block whose marker is ``run NAME``."""
    (block,) = [b for b in blocks(path) if b.run_name == name]
    return block


def command_lines(block: Block) -> list[CommandLine]:
    """The block's command lines: continuation lines (ending in a backslash) joined, blank and
    comment-only lines left out; in a ``console`` block only the lines after a ``$ `` prompt."""
    result: list[CommandLine] = []
    pending: list[str] = []
    start = 0
    for offset, raw in enumerate(block.text.splitlines()):
        number = block.line + 1 + offset
        line = raw
        if not pending:
            if block.language == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            start = number
        if line.rstrip().endswith("\\"):
            pending.append(line.rstrip()[:-1])
            continue
        pending.append(line)
        result.append(CommandLine(block, start, " ".join(part.strip() for part in pending)))
        pending = []
    if pending:
        result.append(CommandLine(block, start, " ".join(part.strip() for part in pending)))
    return result


def commands(text: str) -> list[Command]:
    """The simple commands of a shell command line, each unwrapped (see :class:`Command`); the
    script of ``sh -c '...'`` / ``bash -c '...'`` is looked into as well."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    simple: list[list[str]] = [[]]
    for token in lexer:
        if token in _SEPARATORS:
            simple.append([])
        else:
            simple[-1].append(token)
    found: list[Command] = []
    for words in simple:
        command = _unwrap(_without_redirections(words))
        if command is None:
            continue
        if command.name in ("sh", "bash") and command.words[:1] == ("-c",) and len(command.words) > 1:
            found.append(Command(command.program, ()))
            found.extend(commands(command.words[1]))
        else:
            found.append(command)
    return found


def _without_redirections(words: list[str]) -> list[str]:
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in _REDIRECTIONS:
            skip = True
        else:
            kept.append(word)
    return kept


# Programs that run another command, and their options that take a value.
_WRAPPERS = {
    "sudo": frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"}),
    "env": frozenset({"-u", "-C", "-S"}),
    "systemd-run": frozenset({"-p", "--property", "-u", "--unit", "-E", "--setenv", "-M", "--machine",
                              "--uid", "--gid", "--nice", "-H", "--host"}),
    "exec": frozenset(),
    "nohup": frozenset(),
    "time": frozenset(),
}


def _unwrap(words: list[str]) -> Command | None:
    while words and _ASSIGNMENT.match(words[0]):
        words = words[1:]
    if not words:
        return None
    program, rest = words[0], words[1:]
    takes_value = _WRAPPERS.get(program.rsplit("/", 1)[-1])
    if takes_value is None:
        return Command(program, tuple(rest))
    while rest and rest[0].startswith("-") and rest[0] != "-":
        option = rest.pop(0)
        if option in takes_value:
            rest = rest[1:]
    return _unwrap(rest)
