"""Which folders one sync run covers, and which folders vanished from the server since the last."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from futurnal.suggestions import closest

from .folder_selection import FolderSpec, ServerFolder, missing_exact, select_folders

__all__ = ["FolderPlan", "excluded_folders", "missing_folders", "nearest_folder", "plan_folders"]


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


def excluded_folders(spec: FolderSpec, listing: Sequence[ServerFolder], *, gmail: bool = False) -> tuple[str, ...]:
    """The folders the spec's inclusions take and an exclusion leaves out."""
    if not spec.exclude:
        return ()
    synced = set(select_folders(spec, listing, gmail=gmail))
    included = select_folders(FolderSpec(spec.include), listing, gmail=gmail)
    return tuple(name for name in included if name not in synced)


def nearest_folder(name: str, listing: Sequence[ServerFolder]) -> str | None:
    """The selectable folder ``name`` most likely misspells, as a ``--folders`` entry could name it
    (the server's spelling, or with ``/`` for its delimiter), or None when none is close."""
    spellings: dict[str, None] = {}
    for folder in listing:
        if folder.selectable:
            spellings[folder.name] = None
            if folder.delimiter and folder.delimiter != "/":
                spellings[folder.name.replace(folder.delimiter, "/")] = None
    return closest(name, spellings)


def missing_folders(missing: Sequence[str], listing: Sequence[ServerFolder], where: str = "the server") -> str:
    """One line for exact names the server lacks, with the folder each most likely misspells:
    ``folder 'Archvie' does not exist on the server; did you mean 'Archive'?``."""
    names = ", ".join(map(repr, missing))
    one = len(missing) == 1
    text = f"folder {names} does not exist on {where}" if one else f"folders {names} do not exist on {where}"
    guesses = [(name, guess) for name in missing if (guess := nearest_folder(name, listing)) is not None]
    if one and guesses:
        return f"{text}; did you mean {guesses[0][1]!r}?"
    if guesses:
        return f"{text}; did you mean {', '.join(f'{guess!r} for {name!r}' for name, guess in guesses)}?"
    return text
