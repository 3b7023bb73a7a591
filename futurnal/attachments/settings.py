"""The limits attachment processing runs under (``[attachments]`` in config.toml)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AttachmentSettings"]


@dataclass(frozen=True, slots=True)
class AttachmentSettings:
    """Limits for one extraction, and how many run at once.

    ``max_bytes``: larger attachments are not extracted (status ``too-large``); ``timeout_seconds``
    and ``memory_mb``: the child is killed past either; ``workers``: children running at once;
    ``keep_blobs``: keep attachment bytes in the blob store; ``max_text_chars``: extracted text is
    cut at this length, so one huge file cannot make a huge element; ``files_per_child``: an
    extraction child serves at most this many files (of one mailbox) before it is replaced (see
    :mod:`futurnal.attachments.child`).
    """

    max_bytes: int = 25 * 1024 * 1024
    timeout_seconds: float = 30.0
    memory_mb: int = 512
    workers: int = 2
    keep_blobs: bool = False
    max_text_chars: int = 1_000_000
    files_per_child: int = 64
