"""A store's URL as messages and logs show it: without its password."""

from __future__ import annotations

import re

__all__ = ["display_store"]


def display_store(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)
