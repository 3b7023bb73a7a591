"""The bad-input corpus: every message becomes a schema-valid element, hostile attachments stay contained."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from futurnal.attachments.plan import plan_attachments
from futurnal.attachments.processing import AttachmentProcessing
from futurnal.attachments.runner import OutOfProcessExtractor
from futurnal.attachments.settings import AttachmentSettings
from futurnal.demo.bad_input import CHARSETS, CorpusMessage, bad_input_corpus, hostile_attachment_messages
from futurnal.element.build import build_element
from futurnal.imap.fetched import FetchedMessage
from futurnal.parse.parser import parse_message
from futurnal.storage.attachment_queue import AttachmentJobQueue
from futurnal.storage.blob_store import BlobStore
from futurnal.storage.element_store import apply_attachment_results
from futurnal.storage.sqlite import SqliteElementStore

from ..element_schema import assert_valid_element

CORPUS = bad_input_corpus()
LIMITS = AttachmentSettings(max_bytes=2 * 1024 * 1024, timeout_seconds=2, memory_mb=256, keep_blobs=True)


def _element(message: CorpusMessage, uid: int = 1) -> tuple[dict, object]:  # type: ignore[type-arg]
    parsed = parse_message(message.raw)
    fetched = FetchedMessage(uid, message.raw, ("\\Seen",), datetime(2026, 3, 3, tzinfo=UTC), len(message.raw))
    element = build_element(parsed, fetched, mailbox="alice", folder="INBOX", uidvalidity=1)
    return element, plan_attachments(element, parsed.attachments, LIMITS)


@pytest.mark.parametrize("message", CORPUS, ids=[m.kind for m in CORPUS])
def test_every_corpus_message_becomes_a_schema_valid_element(message: CorpusMessage) -> None:
    element, _ = _element(message)
    assert_valid_element(element)


@pytest.mark.parametrize(("charset", "text"), CHARSETS, ids=[c for c, _ in CHARSETS])
def test_text_in_every_charset_and_transfer_encoding_is_decoded_faithfully(charset: str, text: str) -> None:
    for message in (m for m in CORPUS if m.kind.startswith(f"charset-{charset}-")):
        parsed = parse_message(message.raw)
        assert parsed.subject == text, message.kind
        assert parsed.text == text, message.kind
        assert [a.name for a in parsed.cc] == [text], message.kind
        assert not [d for d in parsed.defects if "charset" in d], message.kind


def test_malformed_messages_record_what_was_wrong() -> None:
    defects = {m.kind: parse_message(m.raw).defects for m in CORPUS}
    assert "missing-boundary" in defects["missing-boundary-param"]
    assert "missing-date" in defects["missing-from-date-id"]
    assert "nesting-too-deep" in defects["deep-nesting-300"]
    assert any(d.startswith("unknown-charset") for d in defects["unknown-charset"])
    assert any(d.startswith("charset-mismatch") for d in defects["wrong-charset-label"])


def test_hostile_attachments_end_contained_and_never_write_outside_the_store(tmp_path: Path) -> None:
    queue, blobs = AttachmentJobQueue(tmp_path / "queue"), BlobStore(tmp_path / "blobs")
    processing = AttachmentProcessing(queue, blobs, OutOfProcessExtractor(LIMITS))
    store = SqliteElementStore(tmp_path / "elements.sqlite", tmp_path / "feed-listeners")
    outcome: dict[str, list[str]] = {}
    for uid, message in enumerate(hostile_attachment_messages(), start=1):
        element, work = _element(message, uid)
        for job in processing.accept([work] if work is not None else []):
            assert apply_attachment_results(element, processing.extract(job)) or not job.items
            processing.retire(job)
        store.upsert_many([element])
        assert_valid_element(element)
        outcome[message.kind] = [a["status"] for a in element["attachments"]]
        names = [a["filename"] for a in element["attachments"]]
        assert all(n is None or ("/" not in n and "\\" not in n and ".." not in n and len(n) <= 200) for n in names)
    assert outcome["zip-bomb-docx"] == ["failed"]
    assert outcome["spinning-pdf"][0] in ("timeout", "failed")  # whichever limit it reaches first
    assert outcome["flate-bomb-pdf"] == ["failed"]
    assert outcome["path-traversal-name"] == ["ok"]
    assert outcome["huge-control-name"] == ["ok"]
    assert outcome["oversized"] == ["too-large"]
    assert list(queue.jobs()) == []
    written = [p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*") if p.is_file()]
    store.close()
    assert set(written) <= {"blobs", "elements.sqlite", "elements.sqlite-wal", "elements.sqlite-shm"}
    assert "blobs" in written and "elements.sqlite" in written  # the queue emptied; nothing anywhere else
    assert len(blobs.referenced_by("alice")) == len(hostile_attachment_messages())
