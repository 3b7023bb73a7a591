"""Consent per mailbox: nothing is fetched from a mailbox its owner has not agreed to."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes
from .clock import utc_iso, utc_now
from .errors import CorruptStateFile
from .lock import writers_take_turns

__all__ = ["SCOPES", "SCOPE_MEANINGS", "ConsentRecord", "ConsentRegistry", "NoConsent", "parse_expiry",
           "scopes_described"]

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
    """``<data dir>/consent.json``, replaced atomically. Only CLI commands write it; the running
    service reads it at each sync, so a revocation takes effect at the mailbox's next sync."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise CorruptStateFile(str(self.path), f"not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise CorruptStateFile(str(self.path), "top level is not a JSON object")
        return data

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
        with writers_take_turns(self.path.with_suffix(".lock")):
            data = self._load()
            data[mailbox] = {**asdict(record), "scopes": list(record.scopes)}
            atomic_write_bytes(self.path, json.dumps(data, indent=1, sort_keys=True).encode())
        return record

    def revoke(self, mailbox: str) -> bool:
        with writers_take_turns(self.path.with_suffix(".lock")):
            data = self._load()
            if data.pop(mailbox, None) is None:
                return False
            atomic_write_bytes(self.path, json.dumps(data, indent=1, sort_keys=True).encode())
        return True

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
