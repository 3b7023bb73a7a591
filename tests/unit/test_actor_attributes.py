"""Our actors must not shadow Pykka's own attributes (a ``self._stop`` event broke stopping once)."""

from __future__ import annotations

import ast
from pathlib import Path

import pykka

ROOT = Path(__file__).resolve().parents[2]


def test_no_actor_assigns_an_attribute_pykka_uses() -> None:
    reserved = {name for name in dir(pykka.ThreadingActor) if not name.startswith("__")}
    clashes = []
    for path in [*(ROOT / "actors").glob("*.py"), *(ROOT / "supervisors").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                if isinstance(node.value, ast.Name) and node.value.id == "self" and node.attr in reserved:
                    clashes.append(f"{path.name}: self.{node.attr}")
    assert clashes == []
