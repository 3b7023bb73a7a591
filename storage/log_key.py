"""The secret key behind log tokens, kept in the data directory so tokens stay stable across runs.

The same address must map to the same token in every log of one installation (so a reader can
follow one correspondent through the logs), yet nobody holding only the logs may test a guess
("is <addr:...> bob@example.org?"): hence a keyed hash, whose key never leaves the data directory.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from .atomic import create_file_once

__all__ = ["KEY_BYTES", "load_or_create_log_key"]

KEY_BYTES = 32


def load_or_create_log_key(path: Path) -> bytes:
    """The key in ``path``, created (0600, its directory 0700) on first use.

    Two processes creating it at once agree on one key: the file appears whole, by a hard link
    of a finished temp file, and whoever links second reads the winner's key.
    """
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    create_file_once(path, secrets.token_bytes(KEY_BYTES))
    return _read(path)


def _read(path: Path) -> bytes:
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise ValueError(f"{path} is not a log key ({len(key)} bytes, expected {KEY_BYTES}); delete it to start over")
    return key
