"""The package layout and the one-way dependency rules of docs/ARCHITECTURE.md ("Dependencies"), held by tests."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIRS = {"futurnal.actors": ROOT / "actors", "futurnal.supervisors": ROOT / "supervisors",
        "futurnal.storage": ROOT / "storage"}
#: The domain packages under futurnal/, each one part of the pipeline.
DOMAIN = ("imap", "auth", "sync", "parse", "element", "attachments")
DIRS.update({f"futurnal.{name}": ROOT / "futurnal" / name for name in DOMAIN})
#: The service's own packages under futurnal/: its faces and its process-wide parts.
SERVICE = ("admin", "cli", "console", "demo", "logs", "mailboxes", "process", "scheduling")
#: The application's wiring: which actors the tree holds, built on both of the packages above.
WIRING = "futurnal.supervision_tree"
_ACTOR_SYSTEM = ("pykka", "futurnal.actors", "futurnal.supervisors", WIRING, "futurnal.system", "futurnal.cli")
#: The process-wide logging set-up: the mail code is handed what it needs of it (the secret
#: registry of futurnal.auth.secret_registry) by the wiring and the CLI, and never imports it.
_LOGS = "futurnal.logs"
#: All the supervision toolkit imports besides the standard library and itself.
_SUPERVISORS_USE = ("pykka", "loguru")


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
        ("futurnal.storage", ("imapclient", *(f"futurnal.{d}" for d in DOMAIN), *_ACTOR_SYSTEM)),
        # Parsing works on bytes alone: no IMAP, no storage, no attachments, no element shape.
        ("futurnal.parse", ("imapclient", "futurnal.imap", "futurnal.auth", "futurnal.sync", "futurnal.element",
                            "futurnal.attachments", "futurnal.storage", _LOGS, *_ACTOR_SYSTEM)),
        # Attachments depend on parsing (and storage) only.
        ("futurnal.attachments", ("imapclient", "futurnal.imap", "futurnal.auth", "futurnal.sync", "futurnal.element",
                                  *_ACTOR_SYSTEM)),
        ("futurnal.element", ("futurnal.sync", "futurnal.auth", *_ACTOR_SYSTEM)),
        # OAuth2 registers every secret it holds with the registry it is given, not the logs' own.
        ("futurnal.auth", ("imapclient", "futurnal.imap", "futurnal.sync", "futurnal.parse", "futurnal.element",
                           "futurnal.attachments", _LOGS, *_ACTOR_SYSTEM)),
        # The protocol knows no sync policy and no message content.
        ("futurnal.imap", ("futurnal.sync", "futurnal.parse", "futurnal.element", "futurnal.attachments",
                           _LOGS, *_ACTOR_SYSTEM)),
        ("futurnal.sync", (_LOGS, *_ACTOR_SYSTEM)),
        # The actors build on the supervision toolkit; the wiring builds on them.
        ("futurnal.actors", (WIRING, "futurnal.system", "futurnal.cli")),
    ],
)
def test_dependencies_point_one_way(package: str, forbidden: tuple[str, ...]) -> None:
    imports = _imports(DIRS[package])
    bad = sorted(name for name in imports if name.split(".")[0] in {"actors", "storage", "supervisors"}
                 or any(name == f or name.startswith(f + ".") for f in forbidden))
    assert bad == []


def test_the_supervision_toolkit_imports_nothing_of_the_project() -> None:
    """supervisors/ is the lowest layer of the actor system and knows no mail: it imports Pykka,
    loguru, the standard library and itself only (the tree the service builds is the wiring's)."""
    directory = DIRS["futurnal.supervisors"]
    bad = sorted(name for name in _imports(directory)
                 if name.split(".")[0] not in {*sys.stdlib_module_names, *_SUPERVISORS_USE}
                 and name != "futurnal.supervisors" and not name.startswith("futurnal.supervisors."))
    leaving = sorted(f"{path.name}: {'.' * node.level}{node.module or ''}" for path in directory.rglob("*.py")
                     for node in ast.walk(ast.parse(path.read_text()))
                     if isinstance(node, ast.ImportFrom) and node.level > 1)  # `from .. import` leaves it
    assert (bad, leaving) == ([], [])


def test_the_supervision_toolkit_reads_no_setting_of_the_project() -> None:
    """Its policies are parameters: the application decides them (e.g. from its environment)."""
    reading = sorted(f"{path.name}: {marker}" for path in DIRS["futurnal.supervisors"].rglob("*.py")
                     for marker in ("FUTURNAL_", "os.environ", "getenv") if marker in path.read_text())
    assert reading == []


def test_importing_the_supervisor_loads_nothing_else_of_the_project(tmp_path: Path) -> None:
    code = ("import sys, futurnal.supervisors.supervisor; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('imapclient', 'tinydb') or "
            "m.startswith('futurnal.') and m != 'futurnal.supervisors' and not m.startswith('futurnal.supervisors.')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _package_graph() -> dict[str, set[str]]:
    """Which of the project's packages each one imports (absolute imports, lazy ones included)."""
    packages = set(DIRS) | {f"futurnal.{name}" for name in SERVICE}
    graph: dict[str, set[str]] = {}
    for package in packages:
        directory = DIRS.get(package, ROOT / "futurnal" / package.split(".")[1])
        graph[package] = {p for name in _imports(directory) for p in packages
                          if p != package and (name == p or name.startswith(p + "."))}
    return graph


def _assert_acyclic(graph: dict[str, set[str]]) -> None:
    """Fails with the first cycle found, spelled ``a -> b -> a``."""
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, " -> ".join((*path[path.index(node):], node))
        if node not in done:
            for used in sorted(graph[node]):
                visit(used, (*path, node))
            done.add(node)

    for node in sorted(graph):
        visit(node, ())


def test_no_import_cycle_between_packages() -> None:
    _assert_acyclic(_package_graph())


def _modules() -> dict[str, Path]:
    """Every module of the package by its dotted name; the three folders at the top under theirs."""
    mapped = ("futurnal.actors", "futurnal.storage", "futurnal.supervisors")
    modules: dict[str, Path] = {}
    for package, directory in [("futurnal", ROOT / "futurnal"), *((name, DIRS[name]) for name in mapped)]:
        for path in directory.rglob("*.py"):
            parts = path.relative_to(directory).with_suffix("").parts
            name = ".".join((package, *(parts[:-1] if parts[-1] == "__init__" else parts)))
            if package != "futurnal" or not any(name == m or name.startswith(m + ".") for m in mapped):
                modules[name] = path
    return modules


def _module_graph() -> dict[str, set[str]]:
    """Which of the project's modules each one imports: at the top or inside a function (a lazy
    import), absolute or relative, ``from package import module`` taken as the module."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        used: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                used.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _from(package, node)
                used.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names)
        graph[name] = {module for module in used if module in modules and module != name}
    return graph


def _from(package: str, node: ast.ImportFrom) -> str:
    """The absolute name a ``from ... import`` in ``package`` imports from."""
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    return ".".join([*parts[:len(parts) - node.level + 1], *([node.module] if node.module else [])])


def test_no_import_cycle_between_modules_lazy_imports_included() -> None:
    """An import inside a function hides a cycle from the interpreter, not from the design: two
    modules that need each other are one module in two files (futurnal.system and the local admin
    once were). The actor system depends on the admin, which is handed what it starts."""
    graph = _module_graph()
    assert "futurnal.admin.local" in graph["futurnal.system"]  # the graph sees through the package links
    _assert_acyclic(graph)


def test_importing_the_domain_does_not_load_the_actor_system(tmp_path: Path) -> None:
    code = "import sys, futurnal.parse.parser, futurnal.imap.session; print('pykka' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_the_cli_loads_the_actor_system_only_for_commands_that_start_one(tmp_path: Path) -> None:
    """Most commands (list, status, ctl, export) never start actors; their start-up must not pay for them."""
    code = ("import sys, futurnal.cli.main; "
            "print(sorted(m for m in ('pykka', 'futurnal.system', 'futurnal.sync.folder_sync') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def test_a_command_loads_only_its_own_module_and_still_parses_like_the_whole_parser(tmp_path: Path) -> None:
    """`elements export` in a pipeline starts in a fraction of the time importing every command took."""
    code = ("import sys; from futurnal.cli.main import _parse; "
            "args = _parse(['--data-dir', 'd', 'elements', 'export', '--folder', 'INBOX']); "
            "loaded = sorted(m for m in ('futurnal.cli.imap_commands', 'futurnal.cli.console_commands', "
            "'futurnal.imap.session', 'requests') if m in sys.modules); "
            "short = _parse(['--data', 'd', 'elements', 'export']); "  # abbreviated: parsed by the whole parser
            "assert (short.data_dir, short.handler) == (args.data_dir, args.handler); "
            "print(args.data_dir, args.folder, args.handler.__module__, loaded)")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stdout.split(" ", 3) == ["d", "INBOX", "futurnal.cli.elements_commands", "[]\n"], done.stderr
