"""The server's folders as its LIST response names them: name, delimiter, flags, special use."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["SPECIAL_USES", "ServerFolder", "canonical_special_use", "from_imapclient"]

SPECIAL_USES = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
_BY_KEY = {use[1:].lower(): use for use in SPECIAL_USES}
# Gmail's older XLIST spells some of them differently; the meaning is the same.
_BY_KEY.update({"allmail": "\\All", "spam": "\\Junk", "starred": "\\Flagged"})
_NOT_SELECTABLE = frozenset({"\\noselect", "\\nonexistent"})


def canonical_special_use(key: str) -> str | None:
    """``all``, ``\\All`` or Gmail's ``AllMail`` spelled as in ``SPECIAL_USES``; None for anything else."""
    return _BY_KEY.get(key.removeprefix("\\").lower())


def _special_key(flag: str) -> str | None:
    """The canonical spelling of a special-use flag, or None for any other flag."""
    return _BY_KEY.get(flag[1:].lower()) if flag.startswith("\\") else None


@dataclass(frozen=True, slots=True)
class ServerFolder:
    """One entry of the server's LIST response."""

    name: str
    delimiter: str | None
    flags: frozenset[str]

    @property
    def selectable(self) -> bool:
        """False for placeholders such as Gmail's ``[Gmail]``: SELECT on them fails."""
        return not any(flag.lower() in _NOT_SELECTABLE for flag in self.flags)

    @property
    def special_use(self) -> str | None:
        """The RFC 6154 role of the folder, spelled as in ``SPECIAL_USES`` (flags vary in case)."""
        for flag in sorted(self.flags):
            if (use := _special_key(flag)) is not None:
                return use
        return None


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def from_imapclient(
    entries: Iterable[tuple[Sequence[bytes | str], bytes | str | None, bytes | str | int]],
) -> list[ServerFolder]:
    """Convert ``IMAPClient.list_folders()`` tuples ``(flags, delimiter, name)``.

    imapclient gives flags and delimiter as bytes (delimiter None for a flat namespace) and the
    name as str, decoded from modified UTF-7; numeric names may come back as int.
    """
    return [
        ServerFolder(
            name=str(name) if isinstance(name, int) else _text(name),
            delimiter=_text(delimiter) if delimiter else None,
            flags=frozenset(_text(flag) for flag in flags),
        )
        for flags, delimiter, name in entries
    ]
