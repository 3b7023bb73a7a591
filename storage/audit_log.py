"""The audit log: append-only JSON Lines, each entry chained to the one before by its hash.

It records what the service did (mailboxes added and removed, consent, syncs with counts,
quarantine actions, re-authentication, purges), never message content or secrets; e-mail
addresses in any field are masked. Changing, removing or reordering an entry breaks the chain,
which ``verify`` reports.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from .atomic import make_private_dir
from .json_lines import one_line

__all__ = [
    "GENESIS", "AuditEvent", "AuditLog", "AuditTrail", "ChainCheck", "chain_hash", "digest", "masked", "new_entry",
    "verify_lines",
]

GENESIS = "0" * 64
_EMAIL = re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+")


class AuditEvent(StrEnum):
    """Every kind of entry the audit log holds. The values are the ``event`` strings written to the
    file: readers of the log depend on them, so a value never changes once written."""

    MAILBOX_ADDED = "mailbox-added"
    MAILBOX_REMOVED = "mailbox-removed"
    MAILBOX_PURGED = "mailbox-purged"  # removed with its data; carries the counts deleted
    MAILBOX_PARKED = "mailbox-parked"  # its actors kept failing; the others go on
    MAILBOX_THROTTLED = "mailbox-throttled"  # its provider limited it: nothing sent to its server until a time
    SECRETS_DELETED = "secrets-deleted"
    CONSENT_GRANTED = "consent-granted"
    CONSENT_REVOKED = "consent-revoked"
    SYNC = "sync"  # a folder sync that changed something (counts only)
    NEEDS_REAUTH = "needs-reauth"
    REAUTH = "reauth"
    POISON_QUARANTINED = "poison-quarantined"
    QUARANTINE_RETRIED = "quarantine-retried"
    QUARANTINE_DROPPED = "quarantine-dropped"


@dataclass(frozen=True, slots=True)
class ChainCheck:
    ok: bool
    entries: int
    problem: str | None = None  # which line, and what is wrong with it


def digest(entry: dict[str, Any]) -> str:
    """The hash of an entry: SHA-256 of its JSON (keys sorted) without its own ``hash``."""
    body = {key: value for key, value in entry.items() if key != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def masked(value: Any) -> Any:
    """``value`` with every e-mail address in it, at any depth, replaced by ``[email]``."""
    if isinstance(value, str):
        return _EMAIL.sub("[email]", value)
    if isinstance(value, dict):
        return {key: masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [masked(item) for item in value]
    return value


def new_entry(event: AuditEvent, fields: dict[str, Any], previous: str) -> tuple[dict[str, Any], str]:
    """The entry of ``event`` with ``fields`` (masked) chained to the hash ``previous``, and the
    one line of text it is stored as (without a line break)."""
    entry = {
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "event": str(event),
        **{key: masked(value) for key, value in fields.items()},
        "prev": previous,
    }
    entry["hash"] = digest(entry)
    return entry, one_line(json.dumps(entry, sort_keys=True, ensure_ascii=False))


def chain_hash(line: bytes | str) -> str:
    """What the next entry chains to after the stored ``line``: its ``hash``, or for a damaged line
    the SHA-256 of its text (the chain goes on, and ``verify`` says where it broke)."""
    try:
        return str(json.loads(line)["hash"])
    except (ValueError, KeyError, TypeError):
        return hashlib.sha256(line if isinstance(line, bytes) else line.encode()).hexdigest()


def verify_lines(lines: Iterable[tuple[int, str]], unit: str = "line") -> ChainCheck:
    """Check the chain of ``(number, text)`` stored entries, in order; ``unit`` names what the
    numbers count in the problem reported (a file's lines, a table's rows)."""
    previous, count = GENESIS, 0
    for number, line in lines:
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            return ChainCheck(False, count, f"{unit} {number} is not JSON")
        if not isinstance(entry, dict):
            return ChainCheck(False, count, f"{unit} {number} is not a JSON object")
        if entry.get("prev") != previous:
            return ChainCheck(False, count, f"{unit} {number} does not follow the entry before it")
        if entry.get("hash") != digest(entry):
            return ChainCheck(False, count, f"{unit} {number} was changed after it was written")
        previous, count = entry["hash"], count + 1
    return ChainCheck(True, count)


class AuditTrail(Protocol):
    """An audit log wherever it is kept: :class:`AuditLog`'s file, or a shared database's table."""

    @property
    def location(self) -> str:
        """Where it is, for messages: a file name, or a table and database."""

    def append(self, event: AuditEvent, **fields: Any) -> dict[str, Any]: ...

    def entries(self) -> Iterator[dict[str, Any]]: ...

    def verify(self) -> ChainCheck: ...


class AuditLog:
    """``<data dir>/audit.jsonl``. Appends take an exclusive ``flock``, so the running service and a
    CLI command can both write without forking the chain."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def location(self) -> str:
        return str(self.path)

    def append(self, event: AuditEvent, **fields: Any) -> dict[str, Any]:
        make_private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            entry, line = new_entry(event, fields, self._last_hash(fd))
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
            return entry
        finally:
            os.close(fd)  # releases the lock

    @staticmethod
    def _last_hash(fd: int) -> str:
        size = os.fstat(fd).st_size
        if size == 0:
            return GENESIS
        chunk = os.pread(fd, min(size, 65536), max(size - 65536, 0))
        return chain_hash(chunk.rstrip(b"\n").rsplit(b"\n", 1)[-1])

    def entries(self) -> Iterator[dict[str, Any]]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                for line in handle:
                    if line.strip():
                        yield json.loads(line)
        except FileNotFoundError:
            return

    def verify(self) -> ChainCheck:
        try:
            handle = open(self.path, encoding="utf-8")
        except FileNotFoundError:
            return ChainCheck(True, 0)
        with handle:
            return verify_lines(enumerate(handle, start=1))
