"""The command line itself: --version, "did you mean" for what is mistyped, usage errors from the
command they concern, examples in every --help, shell completion made from the parser, ctl's help
without a process, and --json as one document or, for streams, JSON Lines."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from futurnal.cli.command_line import walk
from futurnal.cli.completion import SHELLS, completion_script
from futurnal.cli.examples import EXAMPLES
from futurnal.cli.main import build_parser, main
from futurnal.storage.data_dir import DataDir


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """What the command line says on stderr, refusing ``argv`` with exit status 2."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    return capsys.readouterr().err


# --------------------------------------------------------------------------
# --version, did you mean, usage errors
# --------------------------------------------------------------------------


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"futurnal-actors {version('futurnal-actors')}\n"


@pytest.mark.parametrize(("argv", "said"), [
    (["imap", "sycn"], "futurnal-actors imap: error: argument COMMAND: invalid choice: 'sycn'; did you mean 'sync'?"),
    (["imapp", "list"], "futurnal-actors: error: argument COMMAND: invalid choice: 'imapp'; did you mean 'imap'?"),
    (["elements", "serach", "x"], "did you mean 'search'?"),
    (["imap", "add", "--email", "a@b.c", "--security", "tsl"],
     "futurnal-actors imap add: error: argument --security: invalid choice: 'tsl'; did you mean 'tls'?"),
    (["--log-level", "DEBUGG", "imap", "list"], "invalid choice: 'DEBUGG'; did you mean 'DEBUG'?"),
    (["completion", "zhs"], "invalid choice: 'zhs'; did you mean 'zsh'?"),
])
def test_a_mistyped_command_or_choice_names_the_one_meant(argv: list[str], said: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert said in usage_error(argv, capsys)


def test_nothing_close_lists_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(["imap", "xyzzy"], capsys)
    assert "invalid choice: 'xyzzy'; choose from add, import, list, status, sync," in err


def test_an_option_typo_is_reported_by_its_subcommand_with_the_option_meant(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(["imap", "sync", "alice", "--jsn"], capsys)
    assert err.startswith("usage: futurnal-actors imap sync [-h]")  # the subcommand's usage, not the top level's
    assert err.endswith("futurnal-actors imap sync: error: unrecognized arguments: --jsn; did you mean --json?\n")
    err = usage_error(["audit", "tail", "--jsonn"], capsys)
    assert err.endswith("futurnal-actors audit tail: error: unrecognized arguments: --jsonn; did you mean --json?\n")
    err = usage_error(["imap", "status", "alice", "bob"], capsys)
    assert err.endswith("futurnal-actors imap status: error: unrecognized arguments: bob\n")


def test_a_global_option_after_the_command_says_where_it_goes(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(["imap", "list", "--data-dir", "/tmp/x"], capsys)
    assert "futurnal-actors imap list: error: unrecognized arguments: --data-dir /tmp/x; --data-dir is an option " \
           "of futurnal-actors itself: put it before the command (futurnal-actors --data-dir ... imap list ...)" in err


def test_a_timeout_of_zero_or_less_is_refused_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("0", "-5", "nan", "inf"):
        err = usage_error(["imap", "sync", "alice", "--timeout", bad], capsys)
        assert f"argument --timeout: {bad} seconds would give up before anything is done: give more than 0 " \
               "seconds, or leave the option out to wait until it is done" in err
    assert "argument --timeout: 'soon' is not a number of seconds" in usage_error(
        ["imap", "sync", "alice", "--timeout", "soon"], capsys)
    assert build_parser().parse_args(["imap", "sync", "alice", "--timeout", "0.5"]).timeout == 0.5


# --------------------------------------------------------------------------
# --help and its examples
# --------------------------------------------------------------------------


def test_every_command_has_examples_and_every_example_parses() -> None:
    parser = build_parser()
    paths = {" ".join(path) for path, _sub in walk(parser)}
    assert sorted(paths - set(EXAMPLES)) == []  # a command without examples
    assert sorted(set(EXAMPLES) - paths) == []  # examples of a command that is gone
    for path, lines in EXAMPLES.items():
        assert lines, path
        for line in lines:
            words = [w for w in _words(line)]
            assert " ".join(words).startswith(path) or words[0].startswith("--"), line
            build_parser().parse_args(words)  # exits 2 on an example that does not parse


def test_every_imap_add_example_records_consent() -> None:
    """imap add refuses a mailbox without --consent (exit 2): an example without it fails as shown."""
    lines = [line for examples in EXAMPLES.values() for line in examples if line.startswith("imap add ")]
    assert lines
    for line in lines:
        assert build_parser().parse_args(_words(line)).consent, line


def _words(line: str) -> list[str]:
    """An example's words as the shell would pass them, up to a redirection or a pipe."""
    import shlex

    words = shlex.split(line)
    for stop in ("<", ">", "|"):
        if stop in words:
            words = words[:words.index(stop)]
    return words


def test_help_ends_with_the_commands_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["imap", "sync", "--help"])
    out = capsys.readouterr().out
    assert out.endswith("examples:\n  futurnal-actors imap sync me@example.org\n"
                        "  futurnal-actors imap sync me@example.org --folder INBOX --folder Archive --timeout 600\n"
                        "  futurnal-actors imap sync --all --json\n")
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "\nexamples:\n  futurnal-actors imap add --email" in capsys.readouterr().out


# --------------------------------------------------------------------------
# Shell completion
# --------------------------------------------------------------------------


def _bash_complete(script: str, line: str) -> list[str]:
    """What bash offers at the end of ``line`` (the completion function run as on Tab)."""
    program = (f"{script}\nCOMP_LINE={_quoted(line)}\nread -ra COMP_WORDS <<< \"$COMP_LINE\"\n"
               "[[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')\n"
               "COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n_futurnal_actors\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return [word for word in done.stdout.splitlines() if word]


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


@pytest.fixture(scope="module")
def scripts() -> dict[str, str]:
    return {shell: completion_script(build_parser(), shell) for shell in SHELLS}


def test_bash_completes_commands_options_and_their_values(scripts: dict[str, str], tmp_path: Path) -> None:
    script = scripts["bash"]
    assert _bash_complete(script, "futurnal-actors ") == [
        "imap", "elements", "quarantine", "consent", "audit", "run", "ctl", "console", "top", "demo", "completion"]
    assert _bash_complete(script, "futurnal-actors imap sy") == ["sync"]
    assert _bash_complete(script, "futurnal-actors --data-dir /tmp im") == ["imap"]  # past a global option's value
    assert _bash_complete(script, "futurnal-actors imap sync alice --j") == ["--json"]
    assert set(_bash_complete(script, "futurnal-actors imap sync --")) == {"--help", "--all", "--folder", "--json",
                                                                          "--timeout"}
    assert "-n" in _bash_complete(script, "futurnal-actors audit tail -")
    assert _bash_complete(script, "futurnal-actors imap add --security ") == ["tls", "starttls", "plain"]
    assert _bash_complete(script, "futurnal-actors --log-level W") == ["WARNING"]
    assert _bash_complete(script, "futurnal-actors quarantine l") == ["list"]  # the same word under another command
    assert _bash_complete(script, "futurnal-actors completion ") == ["bash", "zsh", "fish"]
    (tmp_path / "mailboxes.toml").write_text("")
    assert _bash_complete(script, f"futurnal-actors imap import {tmp_path}/mail") == [f"{tmp_path}/mailboxes.toml"]
    assert _bash_complete(script, f"futurnal-actors run --config {tmp_path}/m") == [f"{tmp_path}/mailboxes.toml"]


def test_the_completion_command_prints_the_script(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                 scripts: dict[str, str]) -> None:
    for shell in SHELLS:
        assert main(["--data-dir", str(tmp_path / "data"), "completion", shell]) == 0
        assert capsys.readouterr().out == scripts[shell]
    assert not (tmp_path / "data").exists()  # a shell's start-up files run it: it touches no data directory


def test_completion_works_whatever_the_data_directorys_configuration(capsys: pytest.CaptureFixture[str],
                                                                      tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[sync]\nbatch_mesages = 5\n")
    assert main(["--data-dir", str(tmp_path), "completion", "bash"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("# bash completion for futurnal-actors") and captured.err == ""


def test_the_installed_command_completes_in_a_real_bash(tmp_path: Path) -> None:
    """`source <(futurnal-actors completion bash)` as the script's first lines say."""
    command = Path(sys.executable).parent / "futurnal-actors"
    program = (f"source <({command} --data-dir {tmp_path / 'data'} completion bash)\n"
               "COMP_WORDS=(futurnal-actors imap li); COMP_CWORD=2\n_futurnal_actors\necho \"${COMPREPLY[@]}\"\n")
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "list\n"), done.stderr


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_completes_commands_options_and_their_values(scripts: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "_futurnal-actors"
    path.write_text(scripts["zsh"])

    def offered(*words: str) -> list[str]:
        # compdef, _describe, compadd and _files stand in for the completion system: each prints
        # what it is given, and the function runs as it would on Tab after ``words``.
        program = ("compdef() { :; }\n"
                   "_describe() { print -rl -- ${${(P)${@[-1]}}%%:*} }\n"
                   "compadd() { shift; print -rl -- $@ }\n"
                   "_files() { print -r -- '<files>' $@ }\n"
                   f"source {path}\n"
                   f"words=(futurnal-actors {' '.join(_quoted(w) for w in words)}); CURRENT=${{#words}}\n"
                   "_futurnal_actors\n")
        done = subprocess.run(["zsh", "-f", "-c", program], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert "sync" in offered("imap", "") and "imap" in offered("")
    assert "--json" in offered("imap", "sync", "alice", "--")
    assert offered("imap", "add", "--security", "") == ["tls", "starttls", "plain"]
    assert offered("--data-dir", "/tmp", "imap", "sync", "--timeout", "") == []
    assert offered("imap", "import", "") == ["<files>"]
    assert offered("--data-dir", "") == ["<files>", "-/"]
    assert subprocess.run(["zsh", "-n", str(path)], capture_output=True, timeout=30).returncode == 0


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completes_commands_options_and_their_values(scripts: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "futurnal-actors.fish"
    path.write_text(scripts["fish"])

    def offered(line: str) -> list[str]:
        done = subprocess.run(["fish", "--no-config", "-c", f"source {path}; complete -C {_quoted(line)}"],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return [entry.split("\t")[0] for entry in done.stdout.splitlines()]

    assert offered("futurnal-actors imap sy") == ["sync"]
    assert "imap" in offered("futurnal-actors ")
    assert offered("futurnal-actors imap sync alice --js") == ["--json"]
    assert offered("futurnal-actors imap add --security ") == ["plain", "starttls", "tls"]
    assert offered("futurnal-actors quarantine l") == ["list"]
    assert offered("futurnal-actors --log-level DEBUG elements sea") == ["search"]


# --------------------------------------------------------------------------
# ctl: help without a process, streams as JSON Lines
# --------------------------------------------------------------------------


def test_ctl_command_help_is_printed_without_a_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(tmp_path / "data"), "ctl", "status", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: futurnal-actors ctl status [MAILBOX] [--json]\n"
                                              "  mailboxes and their folders")
    assert main(["--data-dir", str(tmp_path / "data"), "ctl", "sync", "-h"]) == 0
    assert "timeout: seconds to wait for the report" in capsys.readouterr().out
    assert main(["--data-dir", str(tmp_path / "data"), "ctl", "stauts", "--help"]) == 2
    assert "unknown command 'stauts'; did you mean 'status'?" in capsys.readouterr().err


def test_ctl_streams_print_one_json_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    from futurnal.cli import console_commands

    class Client:
        def stream(self, command: str, **args: object) -> Iterator[dict[str, object]]:
            yield {"event": "sync-started", "mailbox": "bob", "folders": ["INBOX"], "time": "t"}
            yield {"event": "sync-progress", "mailbox": "bob", "folder": "INBOX", "done": 2, "total": 2, "time": "t"}

    console_commands._print_stream(Client(), "subscribe", {}, as_json=True)  # type: ignore[arg-type]
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["sync-started", "sync-progress"]


# --------------------------------------------------------------------------
# --json elsewhere: one document
# --------------------------------------------------------------------------


def test_audit_tail_json_is_one_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from futurnal.storage.audit_log import AuditEvent, AuditLog

    layout = DataDir(tmp_path / "data").ensure()
    log = AuditLog(layout.audit_path)
    for mailbox in ("alice", "bob", "carol"):
        log.append(AuditEvent.CONSENT_GRANTED, mailbox=mailbox)
    assert main(["--data-dir", str(layout.root), "audit", "tail", "-n", "2", "--json"]) == 0
    out = capsys.readouterr().out
    checked = subprocess.run([sys.executable, "-m", "json.tool"], input=out, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert [entry["mailbox"] for entry in json.loads(out)] == ["bob", "carol"]
