"""Validate elements against schema/element.schema.json, plus what JSON Schema cannot say."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schema" / "element.schema.json"


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def assert_valid_element(element: dict[str, Any]) -> None:
    """Raises with every violation listed, so a failing test says what is wrong where."""
    errors = sorted(_validator().iter_errors(element), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
    for attachment in element["attachments"]:
        assert attachment["blob"] in (None, attachment["sha256"]), "a blob is named by its content's sha256"
    json.dumps(element, ensure_ascii=False).encode("utf-8")  # storable as UTF-8 JSON
