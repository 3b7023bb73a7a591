"""The sample mailbox must be reproducible and as messy as real mail, or the demo and the
ingestion tests built on it prove little."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from futurnal.demo.sample_mailbox import BASE_DATE, SampleMessage, generate_mailbox


def _parse(message: SampleMessage) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(message.raw)
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.fixture(scope="module")
def mailbox() -> list[SampleMessage]:
    return generate_mailbox()


@pytest.fixture(scope="module")
def parsed(mailbox: list[SampleMessage]) -> list[EmailMessage]:
    return [_parse(m) for m in mailbox if not m.malformed]


def test_same_seed_gives_identical_bytes(mailbox: list[SampleMessage]) -> None:
    assert generate_mailbox() == mailbox
    assert generate_mailbox(50, seed=3) == generate_mailbox(50, seed=3)


def test_output_does_not_depend_on_process_or_hash_seed(mailbox: list[SampleMessage]) -> None:
    code = ("import hashlib; from futurnal.demo.sample_mailbox import generate_mailbox; "
            "print(hashlib.sha256(b''.join(m.raw + m.folder.encode() + m.flags.encode() "
            "for m in generate_mailbox())).hexdigest())")
    here = hashlib.sha256(b"".join(m.raw + m.folder.encode() + m.flags.encode()
                                   for m in mailbox)).hexdigest()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=60, check=True)
        assert out.stdout.strip() == here


def test_different_seeds_give_different_mailboxes(mailbox: list[SampleMessage]) -> None:
    assert [m.raw for m in generate_mailbox(seed=8)] != [m.raw for m in mailbox]


def test_count_is_respected(mailbox: list[SampleMessage]) -> None:
    assert len(mailbox) == 300
    small = generate_mailbox(10)
    assert len(small) == 10
    assert sum(m.malformed for m in small) == 3
    with pytest.raises(ValueError):
        generate_mailbox(2)


def test_generation_is_fast() -> None:
    started = time.perf_counter()
    generate_mailbox(300, seed=11)
    assert time.perf_counter() - started < 1.0


def test_exactly_three_malformed_and_they_really_are_broken(mailbox: list[SampleMessage]) -> None:
    broken = [m for m in mailbox if m.malformed]
    assert len(broken) == 3
    # Every broken one trips the parser or cannot be decoded.
    for message in broken:
        parsed = _parse(message)
        defects = [d for part in parsed.walk() for d in part.defects]
        charsets = [c for c in parsed.get_charsets() if c]
        raw_header = message.raw.split(b"\r\n\r\n", 1)[0]
        assert defects or any(c.startswith("x-no-such") for c in charsets) or \
            not raw_header.isascii(), message.raw[:300]


def test_well_formed_messages_parse_without_defects(parsed: list[EmailMessage]) -> None:
    for message in parsed:
        for part in message.walk():
            assert not part.defects, (message["Message-ID"], part.defects)
            if not part.is_multipart():
                part.get_content()  # decodes with the declared charset and transfer encoding


def test_crlf_line_endings_and_ascii_headers(mailbox: list[SampleMessage]) -> None:
    for message in mailbox:
        assert not re.search(rb"(?<!\r)\n", message.raw), message.raw[:200]
        if not message.malformed:
            assert message.raw.split(b"\r\n\r\n", 1)[0].isascii()


def test_message_ids_are_unique_and_on_the_fake_domain(parsed: list[EmailMessage]) -> None:
    ids = [str(m["Message-ID"]) for m in parsed]
    assert len(set(ids)) == len(ids) == 297
    assert all(i.endswith("@mail.futurnal.test>") for i in ids)


def test_threads_reference_generated_messages(
    mailbox: list[SampleMessage], parsed: list[EmailMessage]
) -> None:
    well_formed = [m for m in mailbox if not m.malformed]
    folder_of = {str(p["Message-ID"]): m.folder for p, m in zip(parsed, well_formed)}
    replies = [p for p in parsed if p["References"]]
    assert len(replies) >= 20
    roots: dict[str, list[EmailMessage]] = {}
    for reply in replies:
        refs = str(reply["References"]).split()
        assert all(ref in folder_of for ref in refs), refs
        assert str(reply["In-Reply-To"]) == refs[-1]
        assert str(reply["Subject"]).startswith("Re: ")
        roots.setdefault(refs[0], []).append(reply)
    sizes = [len(r) + 1 for r in roots.values()]
    assert len(sizes) >= 5 and min(sizes) >= 3 and max(sizes) <= 6
    spanning = [root for root, rs in roots.items()
                if {folder_of[root], *(folder_of[str(r["Message-ID"])] for r in rs)}
                == {"INBOX", "Archive"}]
    assert spanning, "some threads must span INBOX and Archive"


def test_non_ascii_names_and_subjects_are_encoded(parsed: list[EmailMessage]) -> None:
    subjects = {str(m["Subject"]) for m in parsed}
    senders = {str(m["From"]) for m in parsed}
    for expected in ("Änderungen", "Réunion", "打ち合わせ", "🚀"):
        assert any(expected in s for s in subjects), expected
    assert any("Jürgen Weiß" in s for s in senders)
    assert any("山田" in s for s in senders)
    assert sum(1 for m in parsed if any(ord(c) > 127 for c in str(m["Subject"]))) >= 10


def test_bodies_html_and_attachments(parsed: list[EmailMessage]) -> None:
    attachments = [a for m in parsed for a in m.iter_attachments()]
    types = {a.get_content_type() for a in attachments}
    assert {"text/plain", "text/csv", "application/pdf", "image/png"} <= types
    names = {a.get_filename() for a in attachments}
    assert any(n and not n.isascii() for n in names), names
    assert any(m.get_content_type() == "multipart/alternative" for m in parsed)
    body = parsed[0].get_body(preferencelist=("plain",))
    assert body is not None
    assert body.get_content().replace("\r\n", "\n").count("\n\n") >= 2  # multi-paragraph


def test_dates_span_the_year_before_the_fixed_base_in_order(parsed: list[EmailMessage]) -> None:
    dates = [m["Date"].datetime for m in parsed]
    assert dates == sorted(dates)
    assert min(dates) >= BASE_DATE - timedelta(days=366)
    assert max(dates) <= BASE_DATE
    assert max(dates) - min(dates) > timedelta(days=300)


def test_folders_and_flags(mailbox: list[SampleMessage]) -> None:
    folders = [m.folder for m in mailbox]
    assert set(folders) == {"INBOX", "Archive"}
    assert folders.count("INBOX") > folders.count("Archive") * 2
    flags = {m.flags for m in mailbox}
    assert "" in flags and "S" in flags
    assert all(set(f) <= set("DFPRST") for f in flags)
