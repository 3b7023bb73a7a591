"""Which folders one sync run covers, and which folders vanished from the server since the last."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .folder_selection import FolderSpec, ServerFolder, missing_exact, select_folders

__all__ = ["FolderPlan", "plan_folders"]


@dataclass(frozen=True, slots=True)
class FolderPlan:
    """``folders`` to sync; ``missing``: exact names asked for that the server lacks;
    ``gone``: folders synced before that the server no longer lists (deleted or renamed)."""

    folders: tuple[str, ...]
    missing: tuple[str, ...]
    gone: tuple[str, ...]


def plan_folders(
    spec: FolderSpec, listing: Sequence[ServerFolder], synced_before: Iterable[str], *, gmail: bool = False
) -> FolderPlan:
    """Resolve the spec against LIST. A renamed folder shows up as one gone plus one new (when it
    still matches the spec), so its mail is tombstoned under the old name and fetched under the new."""
    listed = {folder.name for folder in listing if folder.selectable}
    return FolderPlan(
        folders=tuple(select_folders(spec, listing, gmail=gmail)),
        missing=tuple(missing_exact(spec, listing)),
        gone=tuple(sorted(name for name in synced_before if name not in listed)),
    )
