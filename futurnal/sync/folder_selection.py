"""Which server folders a mailbox syncs, from the server's LIST and the user's folder spec.

Pure code (no IMAP connection, no actors), so the rules can be tested against recorded LIST
responses. Spec entries are exact names, glob patterns written with ``/`` whatever the server's
delimiter, or RFC 6154 special-use tokens, so one spec reads the same on every server.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from futurnal.imap.folders import SPECIAL_USES, ServerFolder, canonical_special_use

__all__ = [
    "FolderSpec", "ServerFolder", "SPECIAL_USES", "gmail_default_spec",
    "is_pattern", "missing_exact", "refind_folder", "select_folders", "watch_outside", "watchable",
]  # fmt: skip

# Accounts whose LIST carries no special-use flags still name All Mail one of these ways.
_GMAIL_ALL_MAIL = frozenset({"[Gmail]/All Mail", "[Google Mail]/All Mail"})


def is_pattern(entry: str) -> bool:
    """True for glob entries; ``[`` is not a glob character, so ``[Gmail]/Spam`` stays exact."""
    return "*" in entry or "?" in entry


def _normalise_entry(entry: object) -> str:
    """Strip an entry and spell special-use tokens canonically, so documents compare equal."""
    if not isinstance(entry, str) or not entry.strip():
        raise ValueError(f"folder entries must be non-empty strings, not {entry!r}")
    entry = entry.strip()
    if entry.startswith("\\") or entry.lower().startswith("special:"):
        key = entry[1:] if entry.startswith("\\") else entry[len("special:") :]
        canonical = canonical_special_use(key)
        if canonical is None:
            known = ", ".join(SPECIAL_USES)
            raise ValueError(
                f"unknown special-use folder {entry!r}: use one of {known} "
                "(or special:all, special:sent, ... where the shell eats backslashes)"
            )
        return canonical
    return entry


@dataclass(frozen=True, slots=True)
class FolderSpec:
    """What the user asked for: folders to include, and folders to exclude (exclusion wins).

    Entries are exact server names (``INBOX``, ``[Gmail]/Spam``), glob patterns (``Archive/*``
    one level, ``Projects/**`` any depth, ``?`` one character; ``/`` stands for the server's
    delimiter) or special-use tokens (``\\Sent`` or ``special:sent``). Exact names may also be
    written with ``/`` on servers whose delimiter is ``.``.
    """

    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        include = tuple(_normalise_entry(entry) for entry in self.include)
        if not include:
            raise ValueError("no folders to include: name at least one, e.g. INBOX")
        object.__setattr__(self, "include", include)
        object.__setattr__(self, "exclude", tuple(_normalise_entry(e) for e in self.exclude))

    @classmethod
    def parse(cls, include: str, exclude: str = "") -> FolderSpec:
        """From comma-separated CLI strings such as ``"INBOX,Archive/*"`` and ``"Trash,Spam"``.

        Names containing commas cannot be written here; use ``from_document`` for those.
        """
        return cls(include=_split(include), exclude=_split(exclude))

    def to_document(self) -> dict[str, list[str]]:
        """The JSON-friendly form kept in the mailbox registry."""
        return {"include": list(self.include), "exclude": list(self.exclude)}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> FolderSpec:
        """Back from ``to_document``; a damaged document raises ValueError rather than syncing."""
        include, exclude = doc.get("include"), doc.get("exclude", [])
        for key, value in (("include", include), ("exclude", exclude)):
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"folder spec {key!r} must be a list of strings, not {value!r}")
        return cls(include=tuple(cast(list[str], include)), exclude=tuple(exclude))


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def gmail_default_spec() -> FolderSpec:
    """Just All Mail: on Gmail every label is also a folder, and All Mail holds each message once.

    Labels then come from X-GM-LABELS rather than from walking label folders. All Mail leaves out
    Spam and Trash. A user may still list label folders besides ``\\All``: they are kept, and
    the caller de-duplicates the overlap by X-GM-MSGID.
    """
    return FolderSpec(include=("\\All",))


def _canonical(name: str, delimiter: str | None) -> str:
    """Upper-case a leading INBOX level: RFC 3501 makes INBOX case-insensitive, nothing else."""
    head, sep, rest = name.partition(delimiter) if delimiter else (name, "", "")
    return "INBOX" + sep + rest if head.upper() == "INBOX" else name


@functools.lru_cache(maxsize=512)
def _glob_regex(pattern: str, delimiter: str | None) -> re.Pattern[str]:
    """Compile a ``/``-separated glob for one delimiter; ``**`` as a level spans zero or more."""
    delim = re.escape(delimiter) if delimiter else "/"
    one_char = f"[^{delim}]" if delimiter else "."
    parts: list[str] = []
    segments = _canonical(pattern, "/").split("/")
    after_globstar = False
    for index, segment in enumerate(segments):
        sep = "" if index == 0 or after_globstar else delim
        after_globstar = segment == "**" and index < len(segments) - 1
        if segment == "**":
            parts.append(sep + (f"(?:.*{delim})?" if after_globstar else ".*"))
            continue
        tokens = re.split(r"(\*\*|\*|\?)", segment)
        wild = {"**": ".*", "*": one_char + "*", "?": one_char}
        parts.append(sep + "".join(wild.get(token, re.escape(token)) for token in tokens))
    return re.compile("".join(parts), re.DOTALL)


def _glob_match(pattern: str, folder: ServerFolder) -> bool:
    regex = _glob_regex(pattern, folder.delimiter)
    return regex.fullmatch(_canonical(folder.name, folder.delimiter)) is not None


def _exact_match(entry: str, folder: ServerFolder) -> bool:
    """The server's own spelling, or the ``/`` spelling translated to the server's delimiter."""
    same = _canonical(entry, folder.delimiter) == _canonical(folder.name, folder.delimiter)
    return same or _glob_match(entry, folder)


def _folder_use(folder: ServerFolder, gmail: bool) -> str | None:
    if folder.special_use is None and gmail and folder.name in _GMAIL_ALL_MAIL:
        return "\\All"
    return folder.special_use


def _matches(entry: str, folder: ServerFolder, gmail: bool) -> bool:
    if entry in SPECIAL_USES:
        return _folder_use(folder, gmail) == entry
    if is_pattern(entry):
        return _glob_match(entry, folder)
    return _exact_match(entry, folder)


def select_folders(
    spec: FolderSpec, listing: Sequence[ServerFolder], *, gmail: bool = False
) -> list[str]:
    """Names of the selectable folders the spec picks: INBOX first, then in LIST order.

    Only folders the server listed come back; ``missing_exact`` says which exact names were not
    found, so the caller can report them. With ``gmail=True`` a LIST without special-use flags
    still resolves ``\\All`` to All Mail by its well-known names. Label folders listed besides
    ``\\All`` are kept: the caller de-duplicates messages by X-GM-MSGID.
    """
    inbox: list[str] = []
    rest: list[str] = []
    seen: set[str] = set()
    for folder in listing:
        if not folder.selectable or folder.name in seen:
            continue
        wanted = any(_matches(entry, folder, gmail) for entry in spec.include)
        if wanted and not any(_matches(entry, folder, gmail) for entry in spec.exclude):
            seen.add(folder.name)
            is_inbox = _canonical(folder.name, folder.delimiter) == "INBOX"
            (inbox if is_inbox else rest).append(folder.name)
    return inbox + rest


def missing_exact(spec: FolderSpec, listing: Sequence[ServerFolder]) -> list[str]:
    """Exact include names with no selectable folder on the server (patterns may match none)."""
    usable = [folder for folder in listing if folder.selectable]
    return [
        entry
        for entry in spec.include
        if entry not in SPECIAL_USES
        and not is_pattern(entry)
        and not any(_exact_match(entry, folder) for folder in usable)
    ]


def watch_outside(watch: Sequence[str], selected: Sequence[str], listing: Sequence[ServerFolder]) -> list[str]:
    """The entries of ``watch`` that name none of ``selected`` (the spec resolved against the
    server's ``listing``): excluded, not included, or not on the server. A watcher's changes are
    synced, so watching such a folder would ingest mail the selection leaves out."""
    chosen = [folder for folder in listing if folder.name in set(selected)]
    return [entry for entry in watch if is_pattern(entry) or not any(_exact_match(entry, f) for f in chosen)]


def watchable(include: Sequence[str], exclude: Sequence[str], watch: Sequence[str]) -> tuple[str, ...]:
    """The folders of ``watch`` that the selection may hold, judged by their names alone (no
    LIST at hand: a registered mailbox starting, a registry written by an older version).

    A folder that an exclusion names, or that no inclusion can match, is left out. Special-use
    roles are known only to the server: an inclusion by role may match any folder but INBOX,
    and an exclusion by role is checked by ``imap add``, which has the server's LIST
    (:func:`watch_outside`). A selection that cannot be read selects nothing.
    """
    try:
        spec = FolderSpec(tuple(include), tuple(exclude))
    except ValueError:
        return ()
    return tuple(name for name in dict.fromkeys(watch) if _may_select(spec, name))


def _may_select(spec: FolderSpec, name: str) -> bool:
    # The server's delimiter is unknown here: "/" and "." are the ones servers use.
    spellings = [ServerFolder(name, delimiter, frozenset()) for delimiter in ("/", ".")]
    inbox = _canonical(name, None) == "INBOX"

    def named(entry: str) -> bool:
        return entry not in SPECIAL_USES and any(_matches(entry, folder, False) for folder in spellings)

    included = any(named(entry) or (entry in SPECIAL_USES and not inbox) for entry in spec.include)
    folder_name = not is_pattern(name) and name not in SPECIAL_USES
    return folder_name and included and not any(named(entry) for entry in spec.exclude)


def refind_folder(
    old_name: str, old_special_use: str | None, listing: Sequence[ServerFolder]
) -> str | None:
    """The new name of a vanished folder, when its special-use role makes that unambiguous.

    A user renaming "Sent" to "Sent Items" keeps the ``\\Sent`` flag; following it keeps the
    folder's sync state. Two candidates (or none) mean guessing, so None.
    """
    use = canonical_special_use(old_special_use) if old_special_use else None
    if use is None:
        return None
    candidates = {f.name for f in listing if f.selectable and f.special_use == use}
    return candidates.pop() if len(candidates) == 1 else None
