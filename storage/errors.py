"""Errors raised by the storage layer, each carrying a message fit to show a user as is."""

from __future__ import annotations

__all__ = ["CorruptStateFile", "DataDirLocked", "KeyringUnavailable", "StorageError"]


class StorageError(Exception):
    """Base class: something about the data directory or the secret store is wrong."""


class DataDirLocked(StorageError):
    """Another process owns the data directory."""

    def __init__(self, path: str, owner: str) -> None:
        super().__init__(
            f"data directory {path} is in use by another futurnal-actors process ({owner}); "
            "stop it first, or use another --data-dir"
        )


class CorruptStateFile(StorageError):
    """A state file exists but cannot be read; it is left untouched for the user to inspect."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(
            f"state file {path} is corrupt ({detail}); it was left untouched: "
            "restore it from a backup or move it aside to start that state afresh"
        )


class KeyringUnavailable(StorageError):
    """No usable keyring backend, or the backend refused an operation."""
