"""README.md and docs/*.md held to what they describe, so that they cannot drift from it.

- Every command in a shell block parses with futurnal-actors' own argument parser (a ``ctl``
  command with the console's command table too); any other program must be on the allow-list
  below. How a block is checked is marked on the line before it (see ``tests/readme_blocks.py``);
  the README's quick start is also run, by ``tests/integration/test_readme_commands.py``.
- The README's table of contents links every ``##`` heading, every link to a heading finds it,
  and every relative link names a file that exists.
- The command tables (README's overview, docs/cli.md) name only commands and options that exist,
  and docs/cli.md names all of them; docs/configuration.md gives every setting, its default and
  its variable; docs/console.md's table has every console command.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import pytest

from futurnal.cli.command_line import subcommands, walk
from futurnal.cli.main import build_parser
from futurnal.config import _KEYS, ServiceSettings, environment_variable, load_settings
from futurnal.console import COMMANDS, ProtocolError, args_from_words, command_spec

from ..readme_blocks import (
    DOCS,
    README,
    ROOT,
    RUN_BLOCKS,
    Block,
    CommandLine,
    blocks,
    command_lines,
    commands,
    named_block,
)

DOCUMENTS = (README, *DOCS)

#: Scripts of this repository a block may run, and what runs them in the test suite.
PROJECT_SCRIPTS = {
    "bin/test": "CI: .ci/run runs bin/check, then exactly this",
    "bin/demo": "tests/integration/test_demo.py",
}
#: Programs other than futurnal-actors a block may run. They set up the service (Running as a
#: service: nothing a test may do to the machine it runs on) or take futurnal-actors' output.
OTHER_PROGRAMS = frozenset({
    "useradd", "python3", "pip", "cp", "systemctl", "journalctl", "install", "chown", "systemd-creds", "sh",
    "umask", "head", "jq", "printf", "socat",
})


# --------------------------------------------------------------------------
# Shell blocks: marked, and every command in them one that exists
# --------------------------------------------------------------------------


def _shell_blocks(paths: Iterable[Path] = DOCUMENTS) -> list[Block]:
    return [block for path in paths for block in blocks(path) if block.shell]


def _all_command_lines() -> list[CommandLine]:
    return [line for block in _shell_blocks() for line in command_lines(block)]


@cache
def _parser() -> argparse.ArgumentParser:
    return build_parser()


def problems(text: str) -> list[str]:
    """What is wrong with one command line of a block: nothing, for a command that would run."""
    found = []
    for command in commands(text):
        if command.name == "futurnal-actors":
            found += _futurnal_problems(command.words)
        elif command.program in PROJECT_SCRIPTS:
            if not os.access(ROOT / command.program, os.X_OK):
                found.append(f"{command.program} is not an executable of this repository")
        elif command.name not in OTHER_PROGRAMS:
            found.append(f"{command.program!r} is neither futurnal-actors nor on the allow-list of tests/unit/test_readme.py")
    if not commands(text):
        found.append("no command in this line")
    return found


def _futurnal_problems(words: tuple[str, ...]) -> list[str]:
    said = io.StringIO()
    with contextlib.redirect_stderr(said), contextlib.redirect_stdout(io.StringIO()):
        try:
            args = _parser().parse_args(list(words))
        except SystemExit as exited:
            return [f"futurnal-actors {' '.join(words)}: {said.getvalue().strip()}"] if exited.code else []
    if args.command == "ctl":
        console_words = [word for word in args.words if word != "--json"]
        if "--help" not in console_words and "-h" not in console_words:
            try:
                spec = command_spec(args.console_command)
                given = args_from_words(spec, console_words)
            except ProtocolError as exc:
                return [f"futurnal-actors {' '.join(words)}: {exc.message}"]
            missing = [param.name for param in spec.params if param.required and param.name not in given]
            if missing:  # the running process would refuse it
                return [f"futurnal-actors {' '.join(words)}: missing {', '.join(missing)}; usage: {spec.usage()}"]
    return []


@pytest.mark.parametrize("line", _all_command_lines(), ids=lambda line: line.where)
def test_every_command_in_a_shell_block_exists(line: CommandLine) -> None:
    assert problems(line.text) == [], line.text


@pytest.mark.parametrize("text", [
    "futurnal-actors imap sycn me@example.org",                            # no such command
    "futurnal-actors imap add --email me@example.org --host h --concent",  # no such option
    "futurnal-actors imap add --host imap.example.org --consent",          # --email is required
    "futurnal-actors imap add --email a@b.c --host h --security tsl",      # no such choice
    "futurnal-actors --data-dir /tmp/x ctl sync",                          # the console's sync needs a mailbox
    "futurnal-actors ctl pause alice bob",                                 # ... and pause takes one
    "futurnal-actors ctl snyc alice",                                      # no such console command
    "sudo -u futurnal /opt/venv/bin/futurnal-actors imap list --jsn",      # unwrapped, then refused
    "futurnal-actors elements export | grep x",                            # grep is not allowed
    "rm -rf /",                                                            # nor is rm
    "bin/no-such-script",
])
def test_the_check_refuses_what_would_not_run(text: str) -> None:
    assert problems(text)


def test_every_shell_block_of_the_readme_says_how_it_is_checked() -> None:
    unmarked = [block.where for block in _shell_blocks([README]) if block.marker is None]
    assert unmarked == [], "mark each with <!-- checked: parse --> or <!-- checked: run NAME --> on the line before"


def test_every_marker_is_one_the_tests_know() -> None:
    for block in _shell_blocks():
        if block.marker is None or block.marker == "parse":
            continue
        assert block.run_name in RUN_BLOCKS, f"{block.where}: unknown marker {block.marker!r}"
    assert {b.run_name for b in _shell_blocks([README]) if b.run_name} == set(RUN_BLOCKS)  # each is there


def test_every_fenced_block_of_the_readme_names_its_language() -> None:
    """A block without a language could hold commands that no test looks at."""
    assert [block.where for block in blocks(README) if not block.language] == []


def test_the_quick_start_registers_with_consent_and_the_password_from_a_file() -> None:
    """What issue 17 found: the quick start's first ``imap add`` exited 2, ``consent is required``."""
    first = next(command for line in command_lines(named_block("quick-start")) for command in commands(line.text)
                 if command.name == "futurnal-actors")
    args = _parser().parse_args(list(first.words))
    assert (args.command, args.imap_command) == ("imap", "add")
    assert args.consent and args.password_stdin


def test_ci_runs_the_readme_s_test_command() -> None:
    setup = section(README, "Set-up: two commands")
    block = next(block for block in blocks(README) if block.shell and block.text in setup)
    first = commands(command_lines(block)[0].text)[0]
    assert first.program == "bin/test" and not first.words
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert ci[-1] == "exec bin/test"


# --------------------------------------------------------------------------
# Headings, the table of contents, links
# --------------------------------------------------------------------------


def _outside_code(path: Path) -> Iterator[tuple[int, str]]:
    """The file's lines that are not inside a fenced block, with their numbers."""
    fence = ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        opening = re.match(r"^(`{3,}|~{3,})", line)
        if fence:
            if line.startswith(fence) and not line.strip(fence[0]).strip():
                fence = ""
        elif opening:
            fence = opening[1]
        else:
            yield number, line


def headings(path: Path) -> list[tuple[int, str]]:
    """Each heading's level and text, in order."""
    found = []
    for _number, line in _outside_code(path):
        match = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if match:
            found.append((len(match[1]), match[2]))
    return found


def anchor(text: str) -> str:
    """The id GitHub gives a heading: its text without markup, lower case, punctuation dropped, a
    hyphen for each space."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text).replace("`", "")
    return "".join(c for c in text.lower() if c.isalnum() or c in " -_").replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for _level, text in headings(path):
        base = anchor(text)
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def section(path: Path, title: str) -> str:
    """The text under the ``##`` heading ``title``, up to the next ``##`` heading."""
    text = path.read_text(encoding="utf-8")
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def links(path: Path) -> Iterator[tuple[int, str]]:
    """Each Markdown link's target, with its line; inline code left out."""
    for number, line in _outside_code(path):
        for target in re.findall(r"\]\(([^)\s]+)\)", re.sub(r"`[^`]*`", "", line)):
            yield number, target


def test_the_table_of_contents_links_every_section_and_only_sections() -> None:
    contents = section(README, "Contents")
    linked = re.findall(r"\]\(#([^)]+)\)", contents)
    sections = [anchor(text) for level, text in headings(README) if level == 2 and text != "Contents"]
    assert [a for a in sections if a not in linked] == []
    assert [a for a in linked if a not in anchors(README)] == []
    in_order = [a for a in linked if a in sections]
    assert in_order == sections, "the contents list the sections in their order"


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_finds_its_file_and_heading(path: Path) -> None:
    broken = []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        name, _, fragment = target.partition("#")
        linked = (path.parent / name).resolve() if name else path
        if not linked.exists():
            broken.append(f"{path.name}:{number}: {target} (no such file)")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            broken.append(f"{path.name}:{number}: {target} (no such heading)")
    assert broken == []


@pytest.mark.parametrize(("heading", "expected"), [
    ("Set-up: two commands", "set-up-two-commands"),
    ("A message's way", "a-messages-way"),
    ("`imap add` and [OAuth2](#oauth2)", "imap-add-and-oauth2"),
    ("Many mailboxes: starting gently", "many-mailboxes-starting-gently"),
])
def test_anchors_are_made_as_github_makes_them(heading: str, expected: str) -> None:
    assert anchor(heading) == expected


# --------------------------------------------------------------------------
# The command tables: README's overview and docs/cli.md
# --------------------------------------------------------------------------


def command_rows(path: Path) -> list[tuple[int, list[str]]]:
    """The first cells of every table headed ``| command | what it does |``: each as its code spans."""
    rows, inside = [], False
    for number, line in _outside_code(path):
        if line.startswith("| command | what it does |"):
            inside = True
        elif not line.startswith("|"):
            inside = False
        elif inside and not line.startswith("| ---"):
            first = re.split(r"(?<!\\)\|", line)[1]
            rows.append((number, [span.replace("\\|", "|") for span in re.findall(r"`([^`]+)`", first)]))
    return rows


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {option: action for action in parser._actions for option in action.option_strings
            if action.help != argparse.SUPPRESS and option not in ("-h", "--help")}


def _resolve(synopsis: str) -> tuple[list[tuple[str, ...]], list[str]]:
    """The commands a synopsis names (``consent show|grant|revoke MAILBOX`` names three), and its
    problems: an option none of them has, a choice its option does not offer."""
    words = synopsis.split()
    paths: list[tuple[str, ...]] = [()]
    parsers = {(): _parser()}
    taken = 0
    for word in words:
        alternatives = word.split("|")
        if not all(alternative in subcommands(parsers[path]) for path in paths for alternative in alternatives):
            break
        paths = [(*path, alternative) for path in paths for alternative in alternatives]
        for path in paths:
            parsers[path] = subcommands(parsers[path[:-1]])[path[-1]][0]
        taken += 1
    found = []
    if taken == 0 or any(subcommands(parsers[path]) for path in paths):
        return paths, [f"{synopsis!r} names no command"]
    known = {**_options(_parser())}
    for path in paths:
        known.update(_options(parsers[path]))
    rest = words[taken:]
    for index, word in enumerate(rest):
        for option in re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", word):
            action = known.get(option)
            if action is None:
                found.append(f"{synopsis!r}: no option {option}")
            elif action.choices and index + 1 < len(rest) and "|" in rest[index + 1]:
                offered = rest[index + 1].strip("[]().")
                found += [f"{synopsis!r}: {option} has no choice {choice!r}" for choice in offered.split("|")
                          if choice not in action.choices]
    return paths, found


@pytest.mark.parametrize("path", [README, ROOT / "docs" / "cli.md"], ids=lambda path: path.name)
def test_the_command_tables_name_only_commands_and_options_that_exist(path: Path) -> None:
    rows = command_rows(path)
    assert rows
    found = [f"{path.name}:{number}: {problem}" for number, spans in rows for span in spans
             for problem in _resolve(span)[1]]
    assert found == []


def test_the_command_reference_names_every_command_and_every_option() -> None:
    mentioned: dict[tuple[str, ...], set[str]] = {}
    for _number, spans in command_rows(ROOT / "docs" / "cli.md"):
        for span in spans:
            for path in _resolve(span)[0]:
                mentioned.setdefault(path, set()).update(re.findall(r"(?<![\w-])--?[a-zA-Z][\w-]*", span))
    missing = []
    for path, parser in walk(_parser()):
        if not path or subcommands(parser):
            continue
        if path not in mentioned:
            missing.append(" ".join(path))
            continue
        for action in {id(a): a for a in _options(parser).values()}.values():
            if not set(action.option_strings) & mentioned[path]:
                missing.append(f"{' '.join(path)} {action.option_strings[0]}")
    assert missing == []


@pytest.mark.parametrize("synopsis", [
    "imap sycn MAILBOX",
    "imap sync MAILBOX --jsn",
    "imap add --security tls|starttls|ssl",
    "imap",
])
def test_the_table_check_refuses_what_does_not_exist(synopsis: str) -> None:
    assert _resolve(synopsis)[1]


# --------------------------------------------------------------------------
# docs/configuration.md and docs/console.md
# --------------------------------------------------------------------------

CONFIGURATION = ROOT / "docs" / "configuration.md"


def test_the_configuration_reference_is_a_file_that_gives_every_default(tmp_path: Path) -> None:
    (toml,) = [block for block in blocks(CONFIGURATION) if block.language == "toml"]
    path = tmp_path / "config.toml"
    path.write_text(toml.text)
    assert load_settings(path, environ={}) == ServiceSettings()
    documented, table = set(), ""
    for line in toml.text.splitlines():
        if match := re.match(r"^\[(\w+)\]", line):
            table = match[1]
        elif match := re.match(r"^(\w+) =", line):
            documented.add(f"{table}.{match[1]}")
    assert sorted(set(_KEYS) - documented) == [] and sorted(documented - set(_KEYS)) == []


def test_the_configuration_reference_names_every_setting_s_variable() -> None:
    kinds = {int: "whole number", float: "number", bool: "true or false", str: "a `postgresql://` URL, or empty"}
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)` \| `(\w+)` \| ([^|]+?) \| ([^|]*?) \|$",
                      CONFIGURATION.read_text(encoding="utf-8"), re.M)
    documented = {f"{section}.{key}": (variable, kind, least) for section, key, variable, kind, least in rows}
    expected = {dotted: (environment_variable(dotted), kinds[kind], "" if kind in (bool, str) else f"{least:g}")
                for dotted, (_attribute, kind, least) in _KEYS.items()}
    assert documented == expected


def test_the_console_reference_has_every_console_command() -> None:
    table = section(ROOT / "docs" / "console.md", "Commands")
    named = {name for cell in re.findall(r"^\| ([^|]+) \|", table, re.M) for name in re.findall(r"`([\w-]+)`", cell)}
    assert named == set(COMMANDS)
