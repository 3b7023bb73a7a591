"""Consent per mailbox: nothing is fetched from a mailbox its owner has not agreed to."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from .atomic import atomic_write_bytes
from .clock import utc_iso, utc_now
from .errors import CorruptStateFile
from .lock import writers_take_turns
from .shared import SharedDocument

__all__ = ["SCOPES", "SCOPE_MEANINGS", "ConsentRecord", "ConsentRegistry", "NoConsent", "parse_expiry",
           "scopes_described"]

_T = TypeVar("_T")

#: What may be ingested, each scope with what it covers: headers and flags; body text; attachment
#: text. The one definition of the scopes, in the order a consent record lists them; everything
#: that names them (options, help, defaults) takes them from here.
SCOPE_MEANINGS: dict[str, str] = {
    "metadata": "headers, flags",
    "content": "body text",
    "attachments": "attachment text",
}
SCOPES: tuple[str, ...] = tuple(SCOPE_MEANINGS)


def scopes_described() -> str:
    """The scopes with what each covers, for help texts: ``metadata (headers, flags), ...``."""
    return ", ".join(f"{scope} ({meaning})" for scope, meaning in SCOPE_MEANINGS.items())


class NoConsent(PermissionError):
    """The mailbox has no valid consent; the message says how to give it."""

    def __init__(self, mailbox: str, why: str) -> None:
        super().__init__(f"{mailbox}: {why}; nothing is fetched until `futurnal-actors consent grant {mailbox}`")


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    mailbox: str
    granted_by: str
    scopes: tuple[str, ...]
    granted_at: str
    expires_at: str | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and datetime.fromisoformat(self.expires_at.replace("Z", "+00:00")) <= now


class ConsentRegistry:
    """``<data dir>/consent.json``, replaced atomically, or a shared database's document (see
    :meth:`~storage.data_dir.DataDir.consent`). Only CLI commands write it; the running service
    reads it at each sync, so a revocation takes effect at the mailbox's next sync."""

    def __init__(self, source: Path | SharedDocument) -> None:
        self._document = None if isinstance(source, str | Path) else source
        self.path = Path(source) if isinstance(source, str | Path) else None

    @property
    def location(self) -> str:
        return str(self.path) if self._document is None else self._document.location

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._document is not None:
            return self._checked(self._document.read() or {})
        assert self.path is not None
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise CorruptStateFile(str(self.path), f"not valid JSON: {exc}") from None
        return self._checked(data)

    def _checked(self, data: Any) -> dict[str, dict[str, Any]]:
        if not isinstance(data, dict):
            raise CorruptStateFile(self.location, "top level is not a JSON object")
        return data

    def _change(self, change: Callable[[dict[str, dict[str, Any]]], _T]) -> _T:
        """Apply ``change`` to the records in place, with no other writer in between."""
        if self._document is not None:
            return self._document.update(lambda data: change(self._checked(data)))
        assert self.path is not None
        with writers_take_turns(self.path.with_suffix(".lock")):
            data = self._load()
            before = json.dumps(data, sort_keys=True)
            result = change(data)
            if json.dumps(data, sort_keys=True) != before:
                atomic_write_bytes(self.path, json.dumps(data, indent=1, sort_keys=True).encode())
        return result

    def get(self, mailbox: str) -> ConsentRecord | None:
        doc = self._load().get(mailbox)
        if doc is None:
            return None
        return ConsentRecord(**{**doc, "scopes": tuple(doc.get("scopes", ()))})

    def grant(self, mailbox: str, granted_by: str, scopes: tuple[str, ...], expires_at: str | None = None) -> ConsentRecord:
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise ValueError(f"scopes must be some of {', '.join(SCOPES)}, not {', '.join(unknown) or 'none'}")
        record = ConsentRecord(
            mailbox=mailbox, granted_by=granted_by, scopes=tuple(s for s in SCOPES if s in scopes),
            granted_at=utc_now(), expires_at=expires_at,
        )

        def put(data: dict[str, dict[str, Any]]) -> None:
            data[mailbox] = {**asdict(record), "scopes": list(record.scopes)}

        self._change(put)
        return record

    def revoke(self, mailbox: str) -> bool:
        return self._change(lambda data: data.pop(mailbox, None) is not None)

    def require(self, mailbox: str, now: datetime | None = None) -> ConsentRecord:
        """The mailbox's valid consent, or :class:`NoConsent` saying what is missing."""
        record = self.get(mailbox)
        if record is None:
            raise NoConsent(mailbox, "no consent is recorded")
        if record.expired(now or datetime.now(UTC)):
            raise NoConsent(mailbox, f"consent expired at {record.expires_at}")
        return record


def parse_expiry(text: str) -> str:
    """A consent expiry typed by a user (ISO 8601, UTC when no offset) as stored; ValueError if
    it is not a date or time, or already past."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expiry {text!r} is not an ISO date or time (e.g. 2027-01-01)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment <= datetime.now(UTC):
        raise ValueError(f"expiry {text} is in the past")
    return utc_iso(moment)
