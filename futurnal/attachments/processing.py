"""The attachment processor's logic, without actors or threads: accept work durably, extract a
job's attachments (in child processes, never in this one), retire a job once its results are stored."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from loguru import logger

from futurnal.storage.attachment_queue import AttachmentJob, AttachmentJobQueue
from futurnal.storage.blob_store import BlobStore

from .plan import AttachmentWork
from .runner import ExtractionOutcome

__all__ = ["AttachmentProcessing", "Extractor"]


class Extractor(Protocol):
    def extract(self, path: Any, kind: str, charset: str | None = None, group: str | None = None
                ) -> ExtractionOutcome: ...


class AttachmentProcessing:
    """Owns the job queue and the blob store (their only writer while the service runs)."""

    def __init__(self, queue: AttachmentJobQueue, blobs: BlobStore, extractor: Extractor | None) -> None:
        """``extractor`` None: only accept work (a command queueing it for the service to extract)."""
        self._queue = queue
        self._blobs = blobs
        self._extractor = extractor
        self._current: dict[str, str] = {}  # element id -> generation of its latest job

    def accept(self, work: Iterable[AttachmentWork]) -> list[AttachmentJob]:
        """Keep the blobs and queue the extractions, durably; returns the jobs to run."""
        jobs = []
        for item in work:
            for data in item.blobs:
                self._blobs.put(item.job.key.mailbox, data)
            if item.job.items:
                job = self._queue.put(item.job, item.payloads)
                self._current[job.element_id] = job.generation
                jobs.append(job)
        return jobs

    def resume(self) -> Iterator[AttachmentJob]:
        """Jobs left on disk by an earlier run (stopped, crashed or killed before finishing them)."""
        for job in self._queue.jobs():
            self._current[job.element_id] = job.generation
            yield job

    def extract(self, job: AttachmentJob) -> list[dict[str, Any]]:
        """One result per item: ``index``, ``sha256``, ``status``, ``text``. Never raises for a bad file."""
        results = []
        assert self._extractor is not None
        for position, item in enumerate(job.items):
            outcome = self._extractor.extract(self._queue.payload_path(job, position), item.kind, item.charset,
                                              group=job.key.mailbox)
            if outcome.status != "ok":
                logger.bind(mailbox=job.key.mailbox).info(
                    "attachment extraction {status} ({kind}): {reason}",
                    status=outcome.status, kind=item.kind, reason=outcome.reason,
                )
            results.append({"index": item.index, "sha256": item.sha256, "status": outcome.status,
                            "text": outcome.text})
        return results

    def is_current(self, job: AttachmentJob) -> bool:
        return self._current.get(job.element_id) == job.generation

    def current(self, job: AttachmentJob) -> AttachmentJob | None:
        """The latest job for the same element, if ``job`` was superseded by a re-fetch."""
        if self.is_current(job):
            return job
        return self._queue.get(job.key.mailbox, job.element_id)

    def forget(self, mailbox: str) -> int:
        """A purge: drop the mailbox's queued jobs and its blob references (blobs no other mailbox
        shares go); a job still running finds itself forgotten and its results find no element.
        Returns how many blobs were deleted."""
        for job in self._queue.jobs():
            if job.key.mailbox == mailbox:
                self._current.pop(job.element_id, None)
        self._queue.remove_mailbox(mailbox)
        return self._blobs.remove_mailbox(mailbox)

    def retire(self, job: AttachmentJob) -> bool:
        """Its results are stored: remove it, unless a newer job for the element replaced it."""
        if not self.is_current(job):
            return False
        self._queue.remove(job.key.mailbox, job.element_id)
        del self._current[job.element_id]
        return True
