"""The package layout and the one-way dependency rule of DESIGN.md, held by tests."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIRS = {"futurnal.actors": ROOT / "actors", "futurnal.supervisors": ROOT / "supervisors",
        "futurnal.storage": ROOT / "storage", "futurnal.mail": ROOT / "futurnal" / "mail"}


def _imports(directory: Path) -> set[str]:
    found: set[str] = set()
    for path in directory.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
    return found


def test_installed_names_are_under_futurnal_only(tmp_path: Path) -> None:
    code = (
        "import importlib.util, futurnal.actors, futurnal.storage, futurnal.supervisors\n"
        "print([n for n in ('actors', 'storage', 'supervisors') if importlib.util.find_spec(n)])"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("futurnal.storage", ("pykka", "imapclient", "futurnal.mail", "futurnal.actors", "futurnal.supervisors")),
        ("futurnal.mail", ("pykka", "futurnal.actors", "futurnal.supervisors", "futurnal.system", "futurnal.cli")),
        ("futurnal.actors", ("futurnal.supervisors", "futurnal.system", "futurnal.cli")),
        ("futurnal.supervisors", ("futurnal.system", "futurnal.cli")),
    ],
)
def test_dependencies_point_one_way(package: str, forbidden: tuple[str, ...]) -> None:
    imports = _imports(DIRS[package])
    bad = sorted(name for name in imports if name.split(".")[0] in {"actors", "storage", "supervisors"}
                 or any(name == f or name.startswith(f + ".") for f in forbidden))
    assert bad == []


def test_importing_the_domain_does_not_load_the_actor_system(tmp_path: Path) -> None:
    code = "import sys, futurnal.mail.parser, futurnal.mail.session; print('pykka' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_the_cli_loads_the_actor_system_only_for_commands_that_start_one(tmp_path: Path) -> None:
    """Most commands (list, status, ctl, export) never start actors; their start-up must not pay for them."""
    code = ("import sys, futurnal.cli.main; "
            "print(sorted(m for m in ('pykka', 'futurnal.system', 'futurnal.mail.folder_sync') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def test_a_command_loads_only_its_own_module_and_still_parses_like_the_whole_parser(tmp_path: Path) -> None:
    """`elements export` in a pipeline starts in a fraction of the time importing every command took."""
    code = ("import sys; from futurnal.cli.main import _parse; "
            "args = _parse(['--data-dir', 'd', 'elements', 'export', '--folder', 'INBOX']); "
            "loaded = sorted(m for m in ('futurnal.cli.imap_commands', 'futurnal.cli.console_commands', "
            "'futurnal.mail.session', 'requests') if m in sys.modules); "
            "short = _parse(['--data', 'd', 'elements', 'export']); "  # abbreviated: parsed by the whole parser
            "assert (short.data_dir, short.handler) == (args.data_dir, args.handler); "
            "print(args.data_dir, args.folder, args.handler.__module__, loaded)")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stdout.split(" ", 3) == ["d", "INBOX", "futurnal.cli.elements_commands", "[]\n"], done.stderr
