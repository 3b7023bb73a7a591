"""Extraction children serve several files of one mailbox in turn, each file under its own limits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from futurnal.attachments.runner import OutOfProcessExtractor
from futurnal.attachments.settings import AttachmentSettings
from futurnal.demo.attachment_files import pdf_bytes, spinning_pdf


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _gone(pid: int) -> bool:
    """The process ended (a zombie nobody reaped yet counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


@pytest.fixture
def text_files(tmp_path: Path) -> list[Path]:
    return [_file(tmp_path, f"note{n}.txt", f"note number {n}".encode()) for n in range(7)]


def test_a_child_serves_several_files_of_one_mailbox(text_files: list[Path]) -> None:
    extractor = OutOfProcessExtractor(AttachmentSettings())
    try:
        outcomes = [extractor.extract(path, "text", group="alice") for path in text_files[:5]]
    finally:
        extractor.kill_all()
    assert [o.text for o in outcomes] == [f"note number {n}" for n in range(5)]
    assert len({o.child for o in outcomes}) == 1 and outcomes[0].child is not None


def test_a_child_is_replaced_after_files_per_child_files(text_files: list[Path]) -> None:
    extractor = OutOfProcessExtractor(AttachmentSettings(files_per_child=3))
    try:
        children = [extractor.extract(path, "text", group="alice").child for path in text_files]
    finally:
        extractor.kill_all()
    assert children[0] == children[1] == children[2] != children[3] == children[4] == children[5] != children[6]
    assert children[0] != children[6]
    assert _gone(children[0]) and _gone(children[3])  # an ended child is waited for, not left running


def test_a_child_never_serves_two_mailboxes(text_files: list[Path]) -> None:
    extractor = OutOfProcessExtractor(AttachmentSettings())
    try:
        alice = extractor.extract(text_files[0], "text", group="alice").child
        bob = extractor.extract(text_files[1], "text", group="bob").child
        bob_again = extractor.extract(text_files[2], "text", group="bob").child
        assert alice is not None and _gone(alice)
    finally:
        extractor.kill_all()
    assert alice != bob == bob_again


def test_a_child_is_replaced_after_a_timeout(tmp_path: Path, text_files: list[Path]) -> None:
    extractor = OutOfProcessExtractor(AttachmentSettings(timeout_seconds=1.0, memory_mb=4096))
    try:
        before = extractor.extract(text_files[0], "text", group="alice")
        spun = extractor.extract(_file(tmp_path, "spin.pdf", spinning_pdf()), "pdf", group="alice")
        after = extractor.extract(text_files[1], "text", group="alice")
    finally:
        extractor.kill_all()
    assert (before.status, spun.status, after.status) == ("ok", "timeout", "ok")
    assert before.child == spun.child != after.child  # the served child took the file, and was killed for it


def test_a_child_is_replaced_after_a_failed_file(tmp_path: Path, text_files: list[Path]) -> None:
    extractor = OutOfProcessExtractor(AttachmentSettings())
    try:
        before = extractor.extract(text_files[0], "text", group="alice")
        bad = extractor.extract(_file(tmp_path, "bad.docx", b"not a zip"), "docx", group="alice")
        after = extractor.extract(text_files[1], "text", group="alice")
    finally:
        extractor.kill_all()
    assert (before.status, bad.status, after.status) == ("ok", "failed", "ok")
    assert before.child == bad.child != after.child


def test_a_child_that_died_between_files_is_replaced(text_files: list[Path]) -> None:
    extractor = OutOfProcessExtractor(AttachmentSettings())
    try:
        before = extractor.extract(text_files[0], "text", group="alice")
        assert before.child is not None
        os.kill(before.child, signal.SIGKILL)  # a crash while idle, say
        deadline = time.monotonic() + 10
        while not _gone(before.child) and time.monotonic() < deadline:
            time.sleep(0.01)
        after = extractor.extract(text_files[1], "text", group="alice")
    finally:
        extractor.kill_all()
    assert (after.status, after.text) == ("ok", "note number 1")
    assert after.child != before.child


def test_a_file_past_the_memory_cap_fails_in_a_served_child_and_the_next_gets_a_new_one(
    tmp_path: Path, text_files: list[Path]
) -> None:
    extractor = OutOfProcessExtractor(AttachmentSettings(timeout_seconds=120, memory_mb=128))
    try:
        first = [extractor.extract(path, "text", group="alice") for path in text_files[:2]]
        hog = extractor.extract(_file(tmp_path, "hog.pdf", spinning_pdf(1_000_000, pages=1)), "pdf", group="alice")
        after = extractor.extract(_file(tmp_path, "ok.pdf", pdf_bytes("still fine")), "pdf", group="alice")
    finally:
        extractor.kill_all()
    assert [o.status for o in first] == ["ok", "ok"]
    assert (hog.status, hog.reason) == ("failed", "over the memory limit")
    assert first[0].child == first[1].child == hog.child != after.child
    assert (after.status, after.text) == ("ok", "still fine")


class _Server:
    """The fork server driven by hand: no wall clock in front of the CPU limit."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "futurnal.attachments.child"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd="/")

    def extract(self, path: Path, kind: str, **fields: Any) -> tuple[int, int, dict[str, Any] | None]:
        """(child pid, status, answer)."""
        request = {"path": str(path), "kind": kind, "memory_mb": 4096, "group": "alice", **fields}
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        self.process.stdin.flush()
        pid = json.loads(self.process.stdout.readline())["pid"]
        reply = json.loads(self.process.stdout.readline())
        return pid, reply["status"], json.loads(reply["answer"]) if reply["answer"] else None

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def test_each_file_gets_its_own_cpu_limit_however_much_earlier_files_used(tmp_path: Path) -> None:
    # timeout_seconds 0: a CPU limit of 2 s per file. Each busy file takes about 0.55 s of CPU
    # (PDFium), so twelve of them are three times one file's limit together (on a machine up to three
    # times faster, still more than it), and all pass in one child.
    busy = _file(tmp_path, "busy.pdf", spinning_pdf(20_000, pages=50))
    hog = _file(tmp_path, "hog.pdf", spinning_pdf())
    server = _Server()
    try:
        served = [server.extract(busy, "pdf", timeout_seconds=0) for _ in range(12)]
        started = time.monotonic()
        pid, status, _ = server.extract(hog, "pdf", timeout_seconds=0)
        took = time.monotonic() - started
    finally:
        server.close()
    assert [status for _, status, _ in served] == [0] * 12
    assert len({child for child, _, _ in served}) == 1
    assert pid == served[0][0]
    assert status == -signal.SIGXCPU
    assert took >= 1.5  # it had its own 2 s, not what the earlier files left of one budget


def test_the_server_waits_for_its_child_when_the_service_closes_its_input(tmp_path: Path) -> None:
    server = _Server()
    pid, status, answer = server.extract(_file(tmp_path, "a.txt", b"hello"), "text")
    server.close()
    assert (status, answer) == (0, {"text": "hello"})
    assert server.process.returncode == 0
    assert _gone(pid)
