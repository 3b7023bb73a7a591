"""contrib/futurnal-actors.service as systemd reads it, for the tests that hold it to what it says:
its directives, and the environment and command line it gives `run`."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

__all__ = ["UNIT", "directives", "environment", "exec_start"]

UNIT = Path(__file__).resolve().parents[1] / "contrib" / "futurnal-actors.service"


def directives() -> dict[str, list[str]]:
    """Every ``Key=value`` of the unit (comments and section headers left out), values in order."""
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def _moved(text: str, paths: Mapping[str, str]) -> str:
    for old, new in paths.items():
        text = text.replace(old, new)
    return text


def environment(paths: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables the unit's ``Environment=`` lines set (a line may hold several, quoted as in
    a shell), with each path of ``paths`` replaced by its new place."""
    variables: dict[str, str] = {}
    for line in directives().get("Environment", []):
        for assignment in shlex.split(line):
            name, value = assignment.split("=", 1)
            variables[name] = _moved(value, paths or {})
    return variables


def exec_start(paths: Mapping[str, str] | None = None) -> list[str]:
    """The unit's ``ExecStart=`` command line, with each path of ``paths`` replaced by its new place."""
    (line,) = directives()["ExecStart"]
    return [_moved(word, paths or {}) for word in shlex.split(line)]
