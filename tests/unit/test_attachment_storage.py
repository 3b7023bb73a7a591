"""The blob store, the durable job queue, and recording extraction results in elements."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from futurnal.attachments.plan import plan_attachments
from futurnal.attachments.settings import AttachmentSettings
from futurnal.demo.attachment_files import pdf_bytes
from futurnal.element.build import build_element
from futurnal.imap.fetched import FetchedMessage
from futurnal.parse.parser import parse_message
from futurnal.storage.attachment_queue import AttachmentJob, AttachmentJobQueue, ExtractionItem
from futurnal.storage.blob_store import BlobStore
from futurnal.storage.element_store import ElementKey
from futurnal.storage.sqlite import SqliteElementStore

from ..element_schema import assert_valid_element


def _message(*parts: tuple[str, str, bytes]) -> bytes:
    """multipart/mixed with a text body and (content type, file name, bytes) attachments, base64."""
    import base64

    body = [b"--B\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"]
    for content_type, name, data in parts:
        body.append(
            f"--B\r\nContent-Type: {content_type}\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n".encode() + base64.encodebytes(data) + b"\r\n"
        )
    head = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: files\r\nMessage-ID: <f@example.org>\r\n" \
        b"Date: Tue, 3 Mar 2026 10:00:00 +0000\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
    return head + b"".join(body) + b"--B--\r\n"


def _build(raw: bytes, settings: AttachmentSettings, scopes: tuple[str, ...] = ("metadata", "content", "attachments")
           ) -> tuple[dict[str, Any], Any]:
    parsed = parse_message(raw)
    fetched = FetchedMessage(7, raw, ("\\Seen",), datetime(2026, 3, 3, tzinfo=UTC), len(raw))
    element = build_element(parsed, fetched, mailbox="alice", folder="INBOX", uidvalidity=3, scopes=scopes)
    return element, plan_attachments(element, parsed.attachments, settings)


def test_extractable_attachments_wait_as_pending_and_the_rest_are_settled_at_once() -> None:
    raw = _message(("application/pdf", "r.pdf", pdf_bytes("x")), ("image/png", "p.png", b"\x89PNG"),
                   ("text/plain", "big.txt", b"y" * 5000))
    element, work = _build(raw, AttachmentSettings(max_bytes=4096))
    assert [a["status"] for a in element["attachments"]] == ["pending", "unsupported", "too-large"]
    assert [(i.index, i.kind) for i in work.job.items] == [(0, "pdf")]
    assert work.payloads == (pdf_bytes("x"),) and work.blobs == ()
    assert_valid_element(element)


def test_kept_blobs_are_referenced_by_hash_and_need_consent() -> None:
    raw = _message(("image/png", "p.png", b"\x89PNG"))
    element, work = _build(raw, AttachmentSettings(keep_blobs=True))
    (attachment,) = element["attachments"]
    assert attachment["blob"] == hashlib.sha256(b"\x89PNG").hexdigest() == attachment["sha256"]
    assert work.blobs == (b"\x89PNG",) and work.job.items == ()
    assert_valid_element(element)

    element, work = _build(raw, AttachmentSettings(keep_blobs=True), scopes=("metadata", "content"))
    assert element["attachments"][0]["status"] == "not-consented"
    assert element["attachments"][0]["blob"] is None and work is None
    assert_valid_element(element)


def test_blob_store_keeps_one_copy_and_purging_one_mailbox_keeps_what_another_references(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    shared = blobs.put("alice", b"same bytes")
    assert blobs.put("bob", b"same bytes") == shared
    only_alice = blobs.put("alice", b"alice only")
    assert len(list((tmp_path / "blobs" / "objects").rglob("*"))) == 4  # two fan-out dirs, two objects
    assert blobs.remove_mailbox("alice") == 1
    assert not blobs.has(only_alice) and blobs.get(shared) == b"same bytes"
    assert blobs.remove_mailbox("bob") == 1 and not blobs.has(shared)


@pytest.mark.parametrize("name", ["../../evil", "a/../../b", "..", "x\x00y", "/etc/passwd", "A" * 300])
def test_nothing_named_by_a_message_can_point_outside_the_store(tmp_path: Path, name: str) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    with pytest.raises(ValueError):
        blobs.path_for(name)
    with pytest.raises(ValueError):
        blobs.put(name, b"data")  # a mailbox id is checked too
    assert not (tmp_path / "evil").exists()


def test_a_hostile_attachment_name_is_sanitised_and_never_used_as_a_path(tmp_path: Path) -> None:
    raw = _message(("text/plain", "../../../etc/passwd\x07", b"root:x:0:0"))
    element, work = _build(raw, AttachmentSettings(keep_blobs=True))
    (attachment,) = element["attachments"]
    assert "/" not in attachment["filename"] and ".." not in attachment["filename"]
    blobs = BlobStore(tmp_path / "blobs")
    for data in work.blobs:
        blobs.put("alice", data)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(p.is_relative_to(tmp_path / "blobs") for p in written)
    assert_valid_element(element)


def test_job_queue_survives_a_reopen_and_a_new_generation_replaces_the_old(tmp_path: Path) -> None:
    key = ElementKey("alice", "INBOX", 3, 7)
    job = AttachmentJob(key, "ab" * 16, (ExtractionItem(0, "0" * 64, "pdf", None),))
    first = AttachmentJobQueue(tmp_path).put(job, [b"%PDF"])
    queue = AttachmentJobQueue(tmp_path)
    assert list(queue.jobs()) == [first]
    assert queue.payload_path(first, 0).read_bytes() == b"%PDF"
    second = queue.put(job, [b"%PDF"])
    assert second.generation != first.generation and list(queue.jobs()) == [second]
    (tmp_path / "alice" / ("cd" * 16)).mkdir()  # a job whose job.json was never written
    assert queue.count("alice") == 1 and (tmp_path / "alice" / ("cd" * 16)).exists()  # counting only reads
    assert list(queue.jobs()) == [second] and not (tmp_path / "alice" / ("cd" * 16)).exists()
    assert queue.count("bob") == 0
    assert queue.remove_mailbox("alice") == 1 and list(queue.jobs()) == []


def test_results_fill_only_pending_attachments_with_the_same_hash_and_repeat_harmlessly(tmp_path: Path) -> None:
    store = SqliteElementStore(tmp_path / "elements.sqlite", tmp_path / "feed-listeners")
    element, _ = _build(_message(("application/pdf", "r.pdf", pdf_bytes("x"))), AttachmentSettings())
    store.upsert_many([element])
    key, sha = ElementKey.of(element), element["attachments"][0]["sha256"]
    assert store.update_attachments([(key, [{"index": 0, "sha256": "f" * 64, "status": "ok", "text": "no"}])]) == 0
    ok = {"index": 0, "sha256": sha, "status": "ok", "text": "x"}
    assert store.update_attachments([(key, [ok])]) == 1
    assert store.update_attachments([(key, [{**ok, "status": "failed", "text": None}])]) == 0  # not pending any more
    assert store.update_attachments([(ElementKey("alice", "INBOX", 3, 99), [ok])]) == 0  # unknown element
    (stored,) = store.iter_elements()
    assert (stored["attachments"][0]["status"], stored["attachments"][0]["text"]) == ("ok", "x")
    assert_valid_element(stored)
