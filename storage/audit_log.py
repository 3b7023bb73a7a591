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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from .atomic import make_private_dir
from .json_lines import one_line

__all__ = ["AuditEvent", "AuditLog", "ChainCheck"]

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


def _digest(entry: dict[str, Any]) -> str:
    body = {key: value for key, value in entry.items() if key != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return _EMAIL.sub("[email]", value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    return value


class AuditLog:
    """``<data dir>/audit.jsonl``. Appends take an exclusive ``flock``, so the running service and a
    CLI command can both write without forking the chain."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, event: AuditEvent, **fields: Any) -> dict[str, Any]:
        make_private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            previous = self._last_hash(fd)
            entry = {
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "event": str(event),
                **{key: _masked(value) for key, value in fields.items()},
                "prev": previous,
            }
            entry["hash"] = _digest(entry)
            os.write(fd, (one_line(json.dumps(entry, sort_keys=True, ensure_ascii=False)) + "\n").encode())
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
        last = chunk.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        try:
            return str(json.loads(last)["hash"])
        except (ValueError, KeyError):
            return hashlib.sha256(last).hexdigest()  # a damaged tail: chain on, verify will say so

    def entries(self) -> Iterator[dict[str, Any]]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                for line in handle:
                    if line.strip():
                        yield json.loads(line)
        except FileNotFoundError:
            return

    def verify(self) -> ChainCheck:
        previous, count = GENESIS, 0
        try:
            handle = open(self.path, encoding="utf-8")
        except FileNotFoundError:
            return ChainCheck(True, 0)
        with handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    return ChainCheck(False, count, f"line {number} is not JSON")
                if entry.get("prev") != previous:
                    return ChainCheck(False, count, f"line {number} does not follow the entry before it")
                if entry.get("hash") != _digest(entry):
                    return ChainCheck(False, count, f"line {number} was changed after it was written")
                previous, count = entry["hash"], count + 1
        return ChainCheck(True, count)
