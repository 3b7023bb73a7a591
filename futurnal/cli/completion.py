"""Shell completion scripts (bash, zsh, fish) built from the command line's own parser.

The parser's tree is walked once into tables (each command's subcommands, options, the values an
option takes, its positional words) that a small function per shell reads at each Tab: which
command the words typed so far lead to, then what may come next there. So completion always
knows every command and option the program has, and needs nothing but the shell.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

from .command_line import subcommands, walk

__all__ = ["SHELLS", "completion_script"]

SHELLS = ("bash", "zsh", "fish")
PROGRAM = "futurnal-actors"
FILES, DIRS = "@files", "@dirs"


@dataclass(frozen=True, slots=True)
class _Option:
    names: tuple[str, ...]
    help: str
    #: What its value may be (choices separated by spaces, FILES, DIRS, "" for anything); None: it takes none.
    value: str | None


@dataclass(frozen=True, slots=True)
class _Command:
    #: The words that lead to it, the program's name first: "futurnal-actors imap sync".
    path: str
    commands: tuple[tuple[str, str], ...]
    options: tuple[_Option, ...]
    #: What its positional words may be, as an option's value; "" for anything.
    arguments: str


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script of ``shell`` for the whole command line ``parser`` parses."""
    commands = [_command(path, sub) for path, sub in walk(parser)]
    return {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell](commands)


def _command(path: tuple[str, ...], parser: argparse.ArgumentParser) -> _Command:
    formatter = parser._get_formatter()
    options, arguments = [], []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        if action.option_strings:
            help_text = formatter._expand_help(action) if action.help else ""
            options.append(_Option(tuple(action.option_strings), _summary(help_text),
                                   None if action.nargs == 0 else _value(action)))
        else:
            arguments.append(_value(action))
    return _Command(" ".join((PROGRAM, *path)),
                    tuple((name, _summary(text)) for name, (_sub, text) in subcommands(parser).items()),
                    tuple(options), next((value for value in arguments if value), ""))


def _value(action: argparse.Action) -> str:
    if action.choices:
        return " ".join(map(str, action.choices))
    name = str(action.metavar or action.dest).upper()
    if name.endswith("DIR"):
        return DIRS
    return FILES if action.type is Path or name.endswith("FILE") else ""


def _summary(text: str) -> str:
    """A help text's first clause, short enough for a completion menu, on one line."""
    text = re.sub(r"\s+", " ", text).strip()
    text = text.split("; ", 1)[0]
    return text if len(text) <= 70 else text[:67].rsplit(" ", 1)[0] + "..."


def _ansi(text: str) -> str:
    """``text`` quoted for bash and zsh: $'...', which keeps every character as it is."""
    return "$'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def _fish_quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _value_options(commands: list[_Command]) -> dict[str, str]:
    """Every option that takes a value, as ``PATH|OPTION``, with what its value may be."""
    return {f"{c.path}|{name}": o.value for c in commands for o in c.options if o.value is not None
            for name in o.names}


def _assoc(name: str, table: dict[str, str]) -> str:
    lines = [f"    [{_ansi(key)}]={_ansi(value)}" for key, value in table.items()]
    return f"{name}=(\n" + "\n".join(lines) + "\n)"


_HEADER = """\
# {shell} completion for futurnal-actors, made by `futurnal-actors completion {shell}` from its
# command line: make it again after an upgrade.
"""


def _bash(commands: list[_Command]) -> str:
    tables = {
        "_futurnal_actors_commands": {c.path: " ".join(name for name, _ in c.commands) for c in commands if c.commands},
        "_futurnal_actors_options": {c.path: " ".join(n for o in c.options for n in o.names) for c in commands},
        "_futurnal_actors_values": _value_options(commands),
        "_futurnal_actors_arguments": {c.path: c.arguments for c in commands if c.arguments},
    }
    declared = "\n".join(f"declare -gA {_assoc(name, table)}" for name, table in tables.items())
    return _HEADER.format(shell="bash") + """\
# Load it with `source <(futurnal-actors completion bash)` in ~/.bashrc, or save it as
# ~/.local/share/bash-completion/completions/futurnal-actors.

""" + declared + """

_futurnal_actors() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} path=futurnal-actors word i words
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if [[ -n ${_futurnal_actors_values["$path|$word"]+set} ]]; then
            ((i++))  # the option's value
        elif [[ $word != -* && " ${_futurnal_actors_commands[$path]-} " == *" $word "* ]]; then
            path="$path $word"
        fi
    done
    if [[ $prev == = && $COMP_CWORD -gt 1 ]]; then  # --option=value
        prev=${COMP_WORDS[COMP_CWORD-2]}
    fi
    if [[ $cur == = ]]; then
        cur=""
    fi
    if [[ -n ${_futurnal_actors_values["$path|$prev"]+set} ]]; then
        words=${_futurnal_actors_values["$path|$prev"]}
    elif [[ $cur == -* ]]; then
        words=${_futurnal_actors_options[$path]-}
    elif [[ -n ${_futurnal_actors_commands[$path]+set} ]]; then
        words=${_futurnal_actors_commands[$path]}
    else
        words=${_futurnal_actors_arguments[$path]-}
    fi
    case $words in
        @files) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
        @dirs) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
        *) mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur") ;;
    esac
}

complete -F _futurnal_actors futurnal-actors
"""


def _zsh(commands: list[_Command]) -> str:
    def described(pairs: list[tuple[str, str]]) -> str:
        return "\n".join(f"{name.replace(':', chr(92) + ':')}:{text}" if text else name for name, text in pairs)

    tables = {
        "_futurnal_actors_commands": {c.path: described(list(c.commands)) for c in commands if c.commands},
        "_futurnal_actors_options": {c.path: described([(n, o.help) for o in c.options for n in o.names])
                                     for c in commands},
        "_futurnal_actors_values": _value_options(commands),
        "_futurnal_actors_arguments": {c.path: c.arguments for c in commands if c.arguments},
    }
    declared = "\n".join(f"typeset -gA {name}\n{_assoc(name, table)}" for name, table in tables.items())
    declared = re.sub(r"^    \[(\$'[^\n]*?')\]=", r"    \1 ", declared, flags=re.MULTILINE)  # zsh: key value pairs
    return "#compdef futurnal-actors\n" + _HEADER.format(shell="zsh") + """\
# Save it as _futurnal-actors in a folder of your $fpath (before compinit runs), or load it with
# `source <(futurnal-actors completion zsh)` in ~/.zshrc after compinit.

""" + declared + """

_futurnal_actors_complete() {  # $1: choices separated by spaces, @files, @dirs, or nothing
    case $1 in
        @files) _files ;;
        @dirs) _files -/ ;;
        ?*) compadd -- ${=1} ;;
    esac
}

_futurnal_actors() {
    local cmdpath=futurnal-actors word key i
    local -a names described
    for ((i = 2; i < CURRENT; i++)); do
        word=${words[i]}
        key="$cmdpath|$word"
        if (( ${+_futurnal_actors_values[$key]} )); then
            ((i++))  # the option's value
        elif [[ $word != -* ]] && (( ${+_futurnal_actors_commands[$cmdpath]} )); then
            names=(${${(f)_futurnal_actors_commands[$cmdpath]}%%:*})
            (( ${names[(Ie)$word]} )) && cmdpath="$cmdpath $word"
        fi
    done
    key="$cmdpath|${words[CURRENT-1]}"
    if (( ${+_futurnal_actors_values[$key]} )); then
        _futurnal_actors_complete "${_futurnal_actors_values[$key]}"
    elif [[ ${words[CURRENT]} == -* ]]; then
        described=(${(f)_futurnal_actors_options[$cmdpath]})
        _describe -t options option described
    elif (( ${+_futurnal_actors_commands[$cmdpath]} )); then
        described=(${(f)_futurnal_actors_commands[$cmdpath]})
        _describe -t commands command described
    else
        _futurnal_actors_complete "${_futurnal_actors_arguments[$cmdpath]-}"
    fi
}

if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
    _futurnal_actors "$@"
else
    compdef _futurnal_actors futurnal-actors
fi
"""


def _fish(commands: list[_Command]) -> str:
    values = _value_options(commands)
    steps = [f"            case {' '.join(_fish_quoted(key) for key in values)}",
             "                set skip 1  # the option's value"]
    entered = [_fish_quoted(f"{c.path}|{name}") for c in commands for name, _ in c.commands]
    steps += [f"            case {' '.join(entered)}", '                set cmdpath "$cmdpath $word"']
    lines = [_HEADER.format(shell="fish").rstrip("\n"),
             "# Save it as ~/.config/fish/completions/futurnal-actors.fish, or load it with",
             "# `futurnal-actors completion fish | source`.", "",
             "function __futurnal_actors_path --description 'the command the words typed so far lead to'",
             "    set -l cmdpath futurnal-actors",
             "    set -l skip 0",
             "    set -l words (commandline -opc)",
             "    set -e words[1]  # the program",
             "    for word in $words",
             "        if test $skip = 1",
             "            set skip 0",
             "            continue",
             "        end",
             '        switch "$cmdpath|$word"',
             *steps,
             "        end",
             "    end",
             "    echo $cmdpath",
             "end", "",
             "function __futurnal_actors_at",
             '    test (__futurnal_actors_path) = "$argv[1]"',
             "end", "",
             "complete -c futurnal-actors -f"]
    for c in commands:
        at = f"-n {_fish_quoted('__futurnal_actors_at ' + _fish_quoted(c.path))}"
        for name, text in c.commands:
            lines.append(f"complete -c futurnal-actors {at} -a {_fish_quoted(name)} -d {_fish_quoted(text)}")
        for option in c.options:
            names = " ".join(f"-l {n[2:]}" if n.startswith("--") else f"-s {n[1:]}" for n in option.names)
            lines.append(f"complete -c futurnal-actors {at} {names}{_fish_value(option.value)}"
                         + (f" -d {_fish_quoted(option.help)}" if option.help else ""))
        if c.arguments:
            lines.append(f"complete -c futurnal-actors {at}{_fish_value(c.arguments)}")
    return "\n".join(lines) + "\n"


def _fish_value(value: str | None) -> str:
    if value is None:
        return ""
    if value == FILES:
        return " -r -F"
    if value == DIRS:
        return " -r -a '(__fish_complete_directories)'"
    return f" -x -a {_fish_quoted(value)}" if value else " -x"
