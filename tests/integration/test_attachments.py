"""Attachments through the real pipeline against a real Dovecot: extraction out of process under
limits, schema-valid elements for the whole bad-input corpus, the blob store and its purge."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import imapclient.exceptions
import pytest

from futurnal.demo.attachment_files import docx_bytes, pdf_bytes
from futurnal.demo.bad_input import bad_input_corpus, hostile_attachment_messages
from futurnal.demo.dovecot import DovecotServer

from ..element_schema import assert_valid_element
from .cli import Cli
from .sync_harness import ServerClient

WORD = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PDF = pdf_bytes("Quarterly report", "Revenue went up")
DOCX = docx_bytes("Minutes of the meeting", "Action items follow")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path)
    cli.data_dir.mkdir(parents=True)
    (cli.data_dir / "config.toml").write_text(
        "[attachments]\nkeep_blobs = true\ntimeout_seconds = 3\nmemory_mb = 256\nmax_bytes = 2097152\n"
    )
    return cli


def _with_files(subject: str, *files: tuple[str, str, bytes]) -> bytes:
    parts = b"".join(
        f"--b\r\nContent-Type: {content_type}\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n".encode() + base64.encodebytes(data) for content_type, name, data in files
    )
    return (
        f"From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@example.net>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n".encode() + parts + b"--b--\r\n"
    )


def _append(server: DovecotServer, messages: list[bytes], user: str = "alice") -> None:
    """IMAP APPEND, as mail arrives for real; what the server refuses (NULs, an empty message) is
    written to the maildir instead, so the pipeline sees every message of the corpus."""
    client = ServerClient(server, user=user, password="secret-pw" if user == "alice" else "bob-pw")
    try:
        for raw in messages:
            try:
                client.client.append("INBOX", raw)
            except imapclient.exceptions.IMAPClientError:
                server.deliver(user, raw)
    finally:
        client.close()


def test_pdf_and_docx_text_is_extracted_and_blobs_are_kept_and_purged(cli: Cli, dovecot_factory: object) -> None:
    server = dovecot_factory()  # type: ignore[operator]
    server.add_user("bob", "bob-pw")
    server.start()
    _append(server, [_with_files("report", ("application/pdf", "report.pdf", PDF), (WORD, "minutes.docx", DOCX),
                                 ("image/png", "logo.png", b"\x89PNG\r\n\x1a\n"))])
    _append(server, [_with_files("same report", ("application/pdf", "copy.pdf", PDF),
                                 ("text/plain", "note.txt", b"only bob has this"))], user="bob")
    assert cli.add(server).code == 0
    assert cli.add(server, user="bob", mailbox_id="bob", password="bob-pw").code == 0
    assert cli("imap", "sync", "alice").code == 0
    assert cli("imap", "sync", "bob").code == 0

    elements = {e["mailbox"]: e for e in cli("elements", "export").lines()}
    for element in elements.values():
        assert_valid_element(element)
    pdf, docx, png = elements["alice"]["attachments"]
    assert (pdf["status"], pdf["text"]) == ("ok", "Quarterly report\n\nRevenue went up")
    assert (docx["status"], docx["text"]) == ("ok", "Minutes of the meeting\nAction items follow")
    assert (png["status"], png["text"]) == ("unsupported", None)

    objects = cli.data_dir / "blobs" / "objects"
    for attachment in (pdf, docx, png):
        assert attachment["blob"] == attachment["sha256"]
        blob = objects / attachment["sha256"][:2] / attachment["sha256"]
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == attachment["sha256"]
    assert len([p for p in objects.rglob("*") if p.is_file()]) == 4  # the shared PDF is stored once

    assert cli("imap", "remove", "alice", "--purge").code == 0
    left = {p.name for p in objects.rglob("*") if p.is_file()}
    assert left == {a["sha256"] for a in elements["bob"]["attachments"]}  # bob's PDF (shared) and note
    assert not any("alice" in p.name for p in cli.data_dir.rglob("*"))


def test_the_whole_bad_input_corpus_ends_as_valid_elements_or_quarantine(cli: Cli, dovecot: DovecotServer) -> None:
    corpus = bad_input_corpus() + hostile_attachment_messages()
    _append(dovecot, [m.raw for m in corpus])
    on_server = ServerClient(dovecot)
    try:
        expected = len(on_server.state())
    finally:
        on_server.close()
    assert expected == len(corpus)
    assert cli.add(dovecot).code == 0
    done = cli("imap", "sync", "alice", "--json", timeout=600)
    assert done.code == 0, done.err

    elements = cli("elements", "export").lines()
    quarantined = cli("quarantine", "list", "--json").json()
    assert len(elements) + len(quarantined) == expected
    for element in elements:
        assert_valid_element(element)
    statuses = {e["subject"]: [a["status"] for a in e["attachments"]] for e in elements
                if (e["subject"] or "").startswith("hostile ")}
    assert statuses["hostile zip-bomb-docx"] == ["failed"]
    assert statuses["hostile spinning-pdf"][0] in ("timeout", "failed")
    assert statuses["hostile flate-bomb-pdf"] == ["failed"]
    assert statuses["hostile oversized"] == ["too-large"]
    assert statuses["hostile path-traversal-name"] == ["ok"]
    assert not [a for e in elements for a in e["attachments"] if a["status"] == "pending"]
    outside = [p for p in cli.home.rglob("*") if p.is_file() and "cron.d" in str(p) or p.name == "evil"]
    assert outside == []
    pdfs = [a["text"] for e in elements for a in e["attachments"] if a["filename"] == "inner.pdf"]
    assert "Inside the forwarded mail" in pdfs


def test_extractions_pending_when_the_process_is_killed_finish_at_the_next_sync(
    cli: Cli, dovecot: DovecotServer
) -> None:
    import os
    import signal
    import subprocess
    import threading

    from futurnal.demo.attachment_files import spinning_pdf

    from .cli import COMMAND

    _append(dovecot, [_with_files("slow", ("application/pdf", "slow.pdf", spinning_pdf()),
                                  ("text/plain", "quick.txt", b"quick text"))])
    assert cli.add(dovecot).code == 0
    env = {**cli.env, "FUTURNAL_ATTACHMENTS_TIMEOUT_SECONDS": "600", "FUTURNAL_ATTACHMENTS_MEMORY_MB": "8192",
           "FUTURNAL_ATTACHMENTS_WORKERS": "1"}
    process = subprocess.Popen([COMMAND, "imap", "sync", "alice"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    queue = cli.data_dir / "attachment-queue" / "alice"
    children: list[int] = []
    found = threading.Event()

    def parent(pid: int) -> int:
        return int(Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[1])

    def extraction_child() -> bool:
        """The child extracting right now: forked by the service's fork server (its child)."""
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and b"futurnal.attachments.child" in (entry / "cmdline").read_bytes() \
                        and parent(parent(int(entry.name))) == process.pid:
                    children.append(int(entry.name))
                    return True
            except (OSError, ValueError, IndexError):
                continue
        return False

    while not (list(queue.glob("*/job.json")) and extraction_child()):
        assert process.poll() is None, "the sync ended before its extraction could be interrupted"
        found.wait(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    (element,) = cli("elements", "export").lines()
    assert [a["status"] for a in element["attachments"]] == ["pending", "pending"]

    # The orphaned child does not outlive its parent (PR_SET_PDEATHSIG), nor run on unpoliced.
    gone = threading.Event()
    for _ in range(200):
        try:
            state = Path(f"/proc/{children[0]}/stat").read_text().split(")")[1].split()[0]
        except OSError:
            state = "gone"
        if state in ("gone", "Z"):  # exited (a zombie until init reaps it)
            gone.set()
            break
        gone.wait(0.05)
    assert gone.is_set(), "the extraction child outlived the killed service"

    cli.data_dir.joinpath("config.toml").write_text("[attachments]\ntimeout_seconds = 1\nmemory_mb = 4096\n")
    assert cli("imap", "sync", "alice").code == 0  # nothing new on the server; the queue is worked off
    (element,) = cli("elements", "export").lines()
    assert [(a["status"], a["text"]) for a in element["attachments"]] == [("timeout", None), ("ok", "quick text")]
    assert not list(queue.glob("*/job.json"))
    assert_valid_element(element)


def test_a_relative_data_dir_still_gets_attachment_text(cli: Cli, dovecot: DovecotServer) -> None:
    """The extraction servers run from /: a relative data directory must reach them absolute."""
    _append(dovecot, [_with_files("relative", ("application/pdf", "report.pdf", PDF), (WORD, "minutes.docx", DOCX),
                                  ("text/plain", "note.txt", b"plain words"))])
    cli.cwd = cli.home
    cli.env["FUTURNAL_HOME"] = "data"  # relative, like `--data-dir data`
    assert cli.add(dovecot).code == 0
    done = cli("--data-dir", "./data", "imap", "sync", "alice")
    assert done.code == 0, done.err
    [element] = cli("elements", "export").lines()
    assert [(a["status"], a["text"]) for a in element["attachments"]] == [
        ("ok", "Quarterly report\n\nRevenue went up"), ("ok", "Minutes of the meeting\nAction items follow"),
        ("ok", "plain words")]
