"""contrib/futurnal-actors.service: restarts on failure, runs the installed command, is confined,
keeps its secrets where every command on its data directory finds them, and agrees with the README."""

from __future__ import annotations

import re
from pathlib import Path

from futurnal.cli.main import build_parser
from futurnal.storage.credentials import STORE_VARIABLE

from ..systemd_unit import UNIT, directives, environment, exec_start

README = Path(__file__).resolve().parents[2] / "README.md"


def _data_dir() -> str:
    program, *argv = exec_start()
    return str(build_parser().parse_args(argv).data_dir)


def test_the_unit_restarts_on_failure_and_reloads_with_sighup() -> None:
    unit = directives()
    assert unit["Restart"] == ["on-failure"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


def test_exec_start_runs_the_console_script_with_an_explicit_data_dir_and_parses() -> None:
    program, *argv = exec_start()
    assert program.endswith("/bin/futurnal-actors")
    args = build_parser().parse_args(argv)
    assert args.command == "run" and str(args.data_dir) in directives()["ReadWritePaths"]
    assert str(args.data_dir) == "/var/lib/" + directives()["StateDirectory"][0]


def test_the_unit_is_hardened() -> None:
    unit = directives()
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes"}.items():
        assert unit[key] == [value], key


def test_secrets_go_to_the_data_directory_s_encrypted_file_and_nothing_depends_on_home_or_xdg() -> None:
    """The store is chosen by the environment, then by the data directory itself; nothing that an
    operator's shell sets differently (XDG_*, keyring's own configuration) may choose another."""
    variables = environment()
    assert variables[STORE_VARIABLE] == "file"
    assert not [name for name in variables if name.startswith(("XDG_", "PYTHON_KEYRING", "KEYRING_"))]


def test_the_readme_and_the_unit_s_comments_name_the_unit_s_data_directory_and_command() -> None:
    service = README.read_text().split("## Running as a service", 1)[1].split("\n## ", 1)[0]
    for text in (service, UNIT.read_text()):
        named = re.findall(r"--data-dir\s+(\S+)", text)
        assert named and set(named) == {_data_dir()}
    program = exec_start()[0]
    assert program in service and program in UNIT.read_text().split("[Unit]")[0]
