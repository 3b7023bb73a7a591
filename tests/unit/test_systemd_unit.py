"""contrib/futurnal-actors.service: restarts on failure, runs the installed command, is confined."""

from __future__ import annotations

import shlex
from pathlib import Path

from futurnal.cli.main import build_parser

UNIT = Path(__file__).resolve().parents[2] / "contrib" / "futurnal-actors.service"


def _directives() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_unit_restarts_on_failure_and_reloads_with_sighup() -> None:
    unit = _directives()
    assert unit["Restart"] == ["on-failure"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


def test_exec_start_runs_the_console_script_with_an_explicit_data_dir_and_parses() -> None:
    (exec_start,) = _directives()["ExecStart"]
    program, *argv = shlex.split(exec_start)
    assert program.endswith("/bin/futurnal-actors")
    args = build_parser().parse_args(argv)
    assert args.command == "run" and str(args.data_dir) in _directives()["ReadWritePaths"]


def test_the_unit_is_hardened() -> None:
    unit = _directives()
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes"}.items():
        assert unit[key] == [value], key
