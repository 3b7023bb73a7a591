"""The admin use cases' one error: what could not be done, in a line a user can act on."""

from __future__ import annotations

__all__ = ["AdminError"]


class AdminError(Exception):
    """An admin operation could not be done; ``code`` is the exit status a command gives for it
    (1: failed, 2: a request that cannot be meant)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code
