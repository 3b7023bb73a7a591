"""AttachmentProcessor: extracts attachment text beside the fetchers, never inside them.

Fetchers ask it to take an element's attachments (:class:`SubmitAttachments`); it keeps the
blobs and queues the extractions on disk before answering, so the folder's watermark only moves
past a message once its attachments are safe. Up to ``workers`` threads then each drive one
extraction child at a time (see :mod:`futurnal.attachments.runner`: timeout, memory cap, kill),
and hand the results to the sink (:class:`UpdateAttachments`). A job leaves the disk queue only
once the sink has stored its results; jobs left by a stop or a crash run again at the next start.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from loguru import logger

from futurnal.attachments.processing import AttachmentProcessing
from futurnal.attachments.runner import OutOfProcessExtractor
from futurnal.attachments.settings import AttachmentSettings
from futurnal.process import stage_cpu
from futurnal.storage.attachment_queue import AttachmentJob, AttachmentJobQueue
from futurnal.storage.blob_store import BlobStore
from futurnal.storage.data_dir import DataDir
from futurnal.storage.errors import local_fault
from futurnal.supervisors.directory import ActorDirectory

from . import actor_names
from .messages import (
    CountPendingAttachments,
    ExtractionFinished,
    ForgetMailbox,
    SubmitAttachments,
    UpdateAttachments,
)
from .service_actor import ServiceActor

__all__ = ["AttachmentProcessorActor"]


class AttachmentProcessorActor(ServiceActor):
    """Owns the attachment job queue and the blob store; one per actor system."""

    def __init__(
        self,
        *,
        settings: AttachmentSettings,
        data_dir: DataDir,
        directory: ActorDirectory,
        write_timeout: float = 120.0,
        child_id: str = actor_names.ATTACHMENTS,
        supervisor: Any = None,
    ) -> None:
        super().__init__(child_id=child_id, supervisor=supervisor)
        self._settings = settings
        self._data_dir = data_dir
        self._directory = directory
        self._write_timeout = write_timeout
        self._extractor = OutOfProcessExtractor(settings)
        self._closing = threading.Event()
        self._running: dict[str, AttachmentJob] = {}  # element id -> job being extracted
        self._pool: ThreadPoolExecutor | None = None
        self._processing: AttachmentProcessing | None = None

    def on_start(self) -> None:
        self._processing = AttachmentProcessing(
            AttachmentJobQueue(self._data_dir.attachment_queue_root), BlobStore(self._data_dir.blobs_root),
            self._extractor,
        )
        self._pool = ThreadPoolExecutor(max_workers=max(1, self._settings.workers),
                                        thread_name_prefix="attachment-extractor")
        resumed = 0
        for job in self._processing.resume():
            self._dispatch(job)
            resumed += 1
        if resumed:
            logger.info("{n} attachment job(s) left by an earlier run queued again", n=resumed)

    def handle(self, message: Any) -> Any:
        if isinstance(message, SubmitAttachments):
            assert self._processing is not None
            with stage_cpu.timed("attachments.queue"):
                for job in self._processing.accept(message.work):
                    self._dispatch(job)
            return len(message.work)
        if isinstance(message, ExtractionFinished):
            return self._finished(message)
        if isinstance(message, CountPendingAttachments):
            return len(self._running)
        if isinstance(message, ForgetMailbox):
            assert self._processing is not None
            return self._processing.forget(message.mailbox)
        return super().handle(message)

    def _dispatch(self, job: AttachmentJob) -> None:
        if job.element_id in self._running:
            return  # the running job is checked against the newest one when it finishes
        assert self._pool is not None
        self._running[job.element_id] = job
        self._pool.submit(self._work, job)

    def _work(self, job: AttachmentJob) -> None:
        """On a worker thread: extract, hand the results to the sink, wait until they are stored."""
        stored = False
        try:
            assert self._processing is not None
            with stage_cpu.timed("attachments.drive"):
                results = self._processing.extract(job)
            if self._closing.is_set():
                return
            sink = self._directory.get(actor_names.SINK)
            if sink is not None:
                sink.ask(UpdateAttachments(((job.key, tuple(results)),)), timeout=self._write_timeout)
                stored = True
        except Exception as exc:  # the job stays on disk and runs again at the next start
            logger.bind(mailbox=job.key.mailbox).warning(
                "attachment results could not be stored ({kind}); they will be retried", kind=exc.__class__.__name__
            )
        finally:
            if not self._closing.is_set():
                self.actor_ref.tell(ExtractionFinished(job, stored))

    def _finished(self, message: ExtractionFinished) -> None:
        assert self._processing is not None
        job = message.job
        self._running.pop(job.element_id, None)
        try:
            if message.stored and self._processing.retire(job):
                return
            newer = self._processing.current(job)
        except Exception as exc:
            if (fault := local_fault(exc, path=self._data_dir.attachment_queue_root)) is None:
                raise
            # The job stays on disk and runs again at the next start; harmless, as results are idempotent.
            logger.bind(mailbox=job.key.mailbox).warning("an attachment job could not be retired: {fault}",
                                                         fault=str(fault))
            return
        if newer is not None and newer.generation != job.generation:
            self._dispatch(newer)  # the element was stored again meanwhile: its attachments are pending again

    def _shut_down(self) -> None:
        self._closing.set()
        self._extractor.kill_all()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def on_stop(self) -> None:
        self._shut_down()

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self._shut_down()  # Pykka skips on_stop after a failure
        super().on_failure(exception_type, exception_value, traceback)
