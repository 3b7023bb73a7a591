"""What happens to each attachment of a new element: extracted later, kept, or neither.

Runs in the fetcher, on the element just built: attachments too large for extraction become
``too-large`` at once; extractable ones stay ``pending`` and go into an :class:`AttachmentWork`
for the attachment processor, with their bytes; with ``keep_blobs``, every consented attachment's
bytes go too and the attachment gets its ``blob`` reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from futurnal.parse.mime_walk import ParsedAttachment
from futurnal.storage.attachment_queue import AttachmentJob, ExtractionItem
from futurnal.storage.element_store import ElementKey

from .extract import kind_of
from .settings import AttachmentSettings

__all__ = ["AttachmentWork", "initial_status", "plan_attachments"]


@dataclass(frozen=True, slots=True)
class AttachmentWork:
    """One element's share of work for the processor: a job with one payload per item, and
    the bytes to keep in the blob store."""

    job: AttachmentJob
    payloads: tuple[bytes, ...]
    blobs: tuple[bytes, ...] = ()


def initial_status(attachment: ParsedAttachment, consented: bool) -> str:
    """``not-consented``, ``unsupported`` (no extractor for its type) or ``pending``."""
    if not consented:
        return "not-consented"
    return "pending" if kind_of(attachment.content_type, attachment.filename) else "unsupported"


def plan_attachments(
    element: dict[str, Any], parsed: Sequence[ParsedAttachment], settings: AttachmentSettings
) -> AttachmentWork | None:
    """Finish ``element['attachments']`` (parallel to ``parsed``) and return the processor's work."""
    items: list[ExtractionItem] = []
    payloads: list[bytes] = []
    blobs: list[bytes] = []
    for index, (stored, attachment) in enumerate(zip(element["attachments"], parsed)):
        if stored["status"] == "not-consented":
            continue
        if settings.keep_blobs:
            blobs.append(attachment.data)
            stored["blob"] = attachment.sha256
        if stored["status"] != "pending":
            continue
        if attachment.size > settings.max_bytes:
            stored["status"] = "too-large"
            continue
        kind = kind_of(attachment.content_type, attachment.filename)
        assert kind is not None  # "pending" means there is an extractor
        items.append(ExtractionItem(index, attachment.sha256, kind, attachment.charset))
        payloads.append(attachment.data)
    if not items and not blobs:
        return None
    job = AttachmentJob(ElementKey.of(element), element["id"], tuple(items))
    return AttachmentWork(job, tuple(payloads), tuple(blobs))
