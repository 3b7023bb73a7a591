"""Extractors on real files, and the child process that runs them under limits."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from futurnal.attachments.child import EXIT_OUT_OF_MEMORY, judged_exit
from futurnal.attachments.extract import ExtractionRefused, extract_text, kind_of
from futurnal.attachments.runner import OutOfProcessExtractor
from futurnal.attachments.settings import AttachmentSettings
from futurnal.demo.attachment_files import (
    docx_bytes,
    encrypted_pdf,
    flate_bomb_pdf,
    pdf_bytes,
    spinning_pdf,
    xlsx_bytes,
    zip_bomb_docx,
)


@pytest.mark.parametrize(("content_type", "filename", "kind"), [
    ("text/plain", None, "text"),
    ("text/csv", "a.csv", "text"),
    ("text/html", None, "html"),
    ("application/pdf", None, "pdf"),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", None, "docx"),
    ("application/octet-stream", "Report.PDF", "pdf"),
    ("application/octet-stream", "notes.docx", "docx"),
    ("application/octet-stream", "archive.zip", None),
    ("image/png", "photo.png", None),
    ("application/msword", "old.doc", None),
])
def test_the_extractor_is_chosen_by_type_or_for_generic_types_by_name(
    content_type: str, filename: str | None, kind: str | None
) -> None:
    assert kind_of(content_type, filename) == kind


def test_text_is_decoded_with_its_declared_charset_and_html_reduced() -> None:
    assert extract_text("Grüße\r\nzeile".encode("iso-8859-1"), "text", charset="iso-8859-1") == "Grüße\nzeile"
    assert extract_text("日本語".encode("shift_jis"), "text", charset="shift_jis") == "日本語"
    assert extract_text(b"\xff\xfe broken", "text", charset="no-such-charset").endswith("broken")
    assert extract_text(b"<p>Hi &amp; <b>bye</b></p><script>x()</script>", "html") == "Hi & bye"


def test_pdf_and_office_documents_give_their_text() -> None:
    assert extract_text(pdf_bytes("Quarterly report", "Page two"), "pdf") == "Quarterly report\n\nPage two"
    assert extract_text(docx_bytes("First paragraph", "Zweiter Absatz"), "docx") == "First paragraph\nZweiter Absatz"
    assert extract_text(xlsx_bytes("revenue", "costs"), "xlsx") == "revenue\ncosts"


def test_text_is_cut_at_the_limit() -> None:
    assert extract_text(b"x" * 100, "text", max_chars=10) == "x" * 10


def test_a_zip_bomb_docx_is_refused_without_inflating_it() -> None:
    with pytest.raises(ExtractionRefused, match="zip bomb"):
        extract_text(zip_bomb_docx(), "docx")


def test_office_xml_with_entity_declarations_is_refused() -> None:
    import io
    import zipfile

    laughs = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><d>&b;</d>'
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", laughs)
    with pytest.raises(ExtractionRefused, match="DTD"):
        extract_text(out.getvalue(), "docx")


def test_a_file_that_is_not_what_it_claims_fails_cleanly() -> None:
    with pytest.raises(ExtractionRefused):
        extract_text(b"not a zip", "docx")
    with pytest.raises(Exception):  # noqa: B017  whatever PDFium raises: the child reports it as failed
        extract_text(b"%PDF-1.4 garbage", "pdf")


# -- out of process -----------------------------------------------------------------------------


def _extract_in_child(tmp_path: Path, data: bytes, kind: str, **limits: object):  # type: ignore[no-untyped-def]
    path = tmp_path / "attachment.bin"
    path.write_bytes(data)
    return OutOfProcessExtractor(AttachmentSettings(**limits)).extract(path, kind)  # type: ignore[arg-type]


def test_a_pdf_locked_by_a_password_is_refused_and_one_with_only_an_owner_password_is_read() -> None:
    assert extract_text(encrypted_pdf("Open to all", "page two", user_password=""), "pdf") == "Open to all\n\npage two"
    with pytest.raises(ExtractionRefused, match="encrypted PDF"):
        extract_text(encrypted_pdf("Locked text"), "pdf")


@pytest.mark.parametrize(("code", "peak_mb", "judged"), [
    (-signal.SIGABRT, 110, EXIT_OUT_OF_MEMORY),  # PDFium's abort at a 128 MB cap
    (-signal.SIGSEGV, 97, EXIT_OUT_OF_MEMORY),
    (-signal.SIGSEGV, 15, -signal.SIGSEGV),  # a crash far under the cap is a crash
    (-signal.SIGKILL, 127, -signal.SIGKILL),  # killed past the clock, whatever its size
    (-signal.SIGXCPU, 127, -signal.SIGXCPU),
    (0, 127, 0),
    (2, 127, 2),
])
def test_a_crash_near_the_memory_cap_counts_as_out_of_memory_and_nothing_else_does(
    code: int, peak_mb: int, judged: int
) -> None:
    assert judged_exit(code, peak_mb * 1024 * 1024, memory_mb=128) == judged


def test_a_child_process_extracts_a_pdf(tmp_path: Path) -> None:
    outcome = _extract_in_child(tmp_path, pdf_bytes("Hello from a PDF"), "pdf")
    assert (outcome.status, outcome.text) == ("ok", "Hello from a PDF")


def test_an_extraction_past_the_time_limit_is_killed_and_recorded_as_timeout(tmp_path: Path) -> None:
    # Seconds of work for PDFium; the memory cap is high so that only the clock can stop it.
    outcome = _extract_in_child(tmp_path, spinning_pdf(), "pdf", timeout_seconds=1.0, memory_mb=4096)
    assert outcome.status == "timeout"
    assert outcome.text is None


def test_an_extraction_past_the_memory_cap_fails_instead_of_growing(tmp_path: Path) -> None:
    # PDFium needs about 350 MB for this file; at the cap it aborts (a C++ library cannot raise
    # MemoryError), which the fork server recognises by the child's peak size.
    outcome = _extract_in_child(tmp_path, spinning_pdf(1_000_000, pages=1), "pdf", timeout_seconds=120, memory_mb=128)
    assert (outcome.status, outcome.reason) == ("failed", "over the memory limit")


def test_a_compression_bomb_pdf_fails_within_the_limits(tmp_path: Path) -> None:
    outcome = _extract_in_child(tmp_path, flate_bomb_pdf(256), "pdf", timeout_seconds=60, memory_mb=256)
    assert outcome.status == "failed"


def test_kill_all_ends_a_running_child_and_refuses_new_ones(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "spin.pdf"
    path.write_bytes(spinning_pdf())
    extractor = OutOfProcessExtractor(AttachmentSettings(timeout_seconds=600, memory_mb=4096))
    outcomes = []
    worker = threading.Thread(target=lambda: outcomes.append(extractor.extract(path, "pdf")))
    worker.start()
    while not extractor._busy and worker.is_alive():  # wait for the extraction to be under way
        threading.Event().wait(0.01)
    extractor.kill_all()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert outcomes[0].status == "failed"
    assert extractor.extract(path, "pdf").status == "failed"


def test_the_fork_server_imports_what_children_would_import_on_first_use() -> None:
    """pypdfium2 loads PDFium on import, and reading a PDF's text loads the UTF-16 codec on first
    use: in every child, unless the server did it once before forking them."""
    import subprocess
    import sys

    probe = ("import gc, sys; from futurnal.attachments.child import warm_up; warm_up(); "
             "print('pypdfium2_raw' in sys.modules, 'encodings.utf_16_le' in sys.modules, gc.get_freeze_count() > 0)")
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert shown.stdout.split() == ["True", "True", "True"]
