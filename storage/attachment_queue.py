"""The durable list of attachment extractions still to do, so a stop loses none of them.

One job per element: ``root/<mailbox>/<element id>/`` holds ``<n>.bin`` (the bytes of the n-th
attachment to extract) and ``job.json`` (written last, atomically: a job without it does not
exist yet). A job is removed only after the sink has durably written its results, so a process
that stops, crashes or is killed with jobs pending finds them here at its next start.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes, fsync_directory
from .element_store import ElementKey
from .registry import validate_mailbox_id

__all__ = ["AttachmentJob", "AttachmentJobQueue", "ExtractionItem"]


@dataclass(frozen=True, slots=True)
class ExtractionItem:
    """One attachment of an element to extract: its position in ``attachments`` and how to read it."""

    index: int
    sha256: str
    kind: str
    charset: str | None = None


@dataclass(frozen=True, slots=True)
class AttachmentJob:
    """Every extraction one element is waiting for. ``generation`` changes when the element is
    stored again (a re-fetch), so a finished older run does not remove the newer job."""

    key: ElementKey
    element_id: str
    items: tuple[ExtractionItem, ...]
    generation: str = ""

    def to_json(self) -> bytes:
        return json.dumps({**asdict(self), "key": asdict(self.key)}, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> AttachmentJob:
        raw: dict[str, Any] = json.loads(data)
        return cls(ElementKey(**raw["key"]), raw["element_id"],
                   tuple(ExtractionItem(**item) for item in raw["items"]), raw["generation"])


class AttachmentJobQueue:
    """Jobs on disk; one writer (the attachment processor, or a command holding the lock)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, job: AttachmentJob, payloads: Sequence[bytes]) -> AttachmentJob:
        """Store ``job`` durably with one payload per item; returns it with a fresh generation."""
        job = AttachmentJob(job.key, job.element_id, job.items, uuid.uuid4().hex)
        directory = self._dir(job.key.mailbox, job.element_id)
        for position, data in enumerate(payloads):
            atomic_write_bytes(directory / f"{position}.bin", data, sync_dir=False)
        atomic_write_bytes(directory / "job.json", job.to_json())
        fsync_directory(directory.parent)
        return job

    def payload_path(self, job: AttachmentJob, position: int) -> Path:
        return self._dir(job.key.mailbox, job.element_id) / f"{position}.bin"

    def get(self, mailbox: str, element_id: str) -> AttachmentJob | None:
        try:
            return AttachmentJob.from_json((self._dir(mailbox, element_id) / "job.json").read_bytes())
        except FileNotFoundError:
            return None

    def jobs(self) -> Iterator[AttachmentJob]:
        """Every complete job, oldest mailbox name first (order does not matter for correctness)."""
        if not self.root.is_dir():
            return
        for mailbox_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for job_dir in sorted(p for p in mailbox_dir.iterdir() if p.is_dir()):
                try:
                    yield AttachmentJob.from_json((job_dir / "job.json").read_bytes())
                except FileNotFoundError:
                    shutil.rmtree(job_dir, ignore_errors=True)  # half-written: its element was never acked
                except (ValueError, KeyError, TypeError):
                    shutil.rmtree(job_dir, ignore_errors=True)

    def count(self, mailbox: str) -> int:
        """How many of the mailbox's elements wait for extractions; reads only (safe for status)."""
        directory = self.root / validate_mailbox_id(mailbox)
        return sum(1 for _ in directory.glob("*/job.json")) if directory.is_dir() else 0

    def remove(self, mailbox: str, element_id: str) -> None:
        shutil.rmtree(self._dir(mailbox, element_id), ignore_errors=True)

    def remove_mailbox(self, mailbox: str) -> int:
        """Forget every job of a mailbox (``imap remove --purge``); returns how many there were."""
        count = self.count(mailbox)
        shutil.rmtree(self.root / validate_mailbox_id(mailbox), ignore_errors=True)
        return count

    def _dir(self, mailbox: str, element_id: str) -> Path:
        if not (element_id.isascii() and element_id.isalnum()):
            raise ValueError("not an element id")
        return self.root / validate_mailbox_id(mailbox) / element_id
