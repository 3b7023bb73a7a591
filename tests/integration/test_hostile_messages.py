"""A corpus of hostile messages, synced from a real Dovecot one message at a time.

Each message is built here in code (nothing to keep in the repository) and delivered alone; then
``imap sync`` runs as its own process, and the test takes its peak memory and its wall time.
Parsing happens in worker processes with their own memory cap (``parse_memory_mb``) and timeout
(``parse_timeout_seconds``), so whatever a message does to the parser, the service's own process
has to stay small, every sync has to end, and every message has to end stored or quarantined with
a reason: never silently missing.

Dovecot gets the messages straight into its maildir (no LMTP, so no size limit applies on the
way in) and serves them whole with ``BODY.PEEK[]`` without parsing them; the service's own
defaults take the largest (30 MB) message too (``max_message_bytes`` is 100 MB).

Run with ``pytest -s`` to see the table of message, seconds, peak memory and outcome.
"""

from __future__ import annotations

import base64
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from futurnal.demo.dovecot import DovecotServer
from futurnal.storage.data_dir import DataDir
from futurnal.storage.sqlite import SqliteElementReader

from .cli import COMMAND, Cli
from .peak_memory import run_measured

pytestmark = pytest.mark.integration

USER = "alice"
MB = 1 << 20
SERVICE_CEILING_MB = 400  # the service's own process (parsing happens elsewhere)
SYNC_DEADLINE = 120.0  # seconds, per `imap sync`
PARSE_ENV = {"FUTURNAL_SYNC_PARSE_TIMEOUT_SECONDS": "10", "FUTURNAL_SYNC_PARSE_MEMORY_MB": "512"}


# -- the corpus -------------------------------------------------------------------------------

def _headers(n: int, subject: str = "", extra: bytes = b"") -> bytes:
    """Ordinary headers for message ``n`` (no blank line after them), plus ``extra`` lines."""
    subject_line = f"Subject: hostile {n} {subject}\r\n".encode() if subject else b""
    return (
        f"From: Sender {n} <s{n}@example.net>\r\nTo: alice@example.org\r\n"
        f"Message-ID: <hostile-corpus-{n}@example.net>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n"
    ).encode() + subject_line + extra


def header_flood_10mb(n: int) -> bytes:
    """10 MB of ``From: x`` lines: a header section with about 1.2 million fields."""
    return _headers(n, "header flood") + b"From: x\r\n" * (10 * MB // 9) + b"\r\nbody\r\n"


def nested_comments_500(n: int) -> bytes:
    to = b"To: " + b"(" * 500 + b"x" + b")" * 500 + b" <a@b.c>\r\n"
    return _headers(n, "nested comments").replace(b"To: alice@example.org\r\n", to) + b"\r\nbody\r\n"


def date_of_5000_ones(n: int) -> bytes:
    date = b"Date: " + b"1" * 5000 + b"\r\n"
    return _headers(n, "long date").replace(b"Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n", date) + b"\r\nbody\r\n"


def multipart_nested_2000(n: int) -> bytes:
    """2,000 levels of multipart/mixed, each holding the next, a text part at the bottom."""
    depth = 2000
    opening = [b"MIME-Version: 1.0\r\n"]
    closing: list[bytes] = []
    for level in range(depth):
        if level:
            opening.append(b"\r\n")  # the part's (empty) header ends; its content type follows
        opening.append(f'Content-Type: multipart/mixed; boundary="lvl{level}"\r\n\r\n--lvl{level}\r\n'.encode())
        closing.append(f"\r\n--lvl{level}--\r\n".encode())
    leaf = b"Content-Type: text/plain\r\n\r\nthe bottom\r\n"
    return _headers(n, "deep multipart") + b"".join(opening) + leaf + b"".join(reversed(closing))


def base64_30mb_one_line(n: int) -> bytes:
    """A 30 MB base64 attachment without a single line break."""
    data = random.Random(n).randbytes(30 * MB * 3 // 4)
    return (
        _headers(n, "huge base64 line")
        + b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        + b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        + b'--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="blob.bin"\r\n'
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(data)
        + b"\r\n--b--\r\n"
    )


def header_line_2mb(n: int) -> bytes:
    return _headers(n, "long header line") + b"X-Long: " + b"a" * (2 * MB) + b"\r\n\r\nbody\r\n"


def headers_only_no_blank_line(n: int) -> bytes:
    return _headers(n, "headers only") + b"X-Last: no blank line follows"


def no_headers_with_body(n: int) -> bytes:
    return b"\r\nA body with no header at all.\r\n" * 20


def invalid_utf8_everywhere(n: int) -> bytes:
    bad = b"\xff\xfe\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc\xed\xa0\x80"
    return (
        b"From: " + bad + b" <s" + bad + b"@exa\xffmple.net>\r\nTo: " + bad + b"@example.org\r\n"
        + b"Subject: " + bad + b" =?utf-8?b?" + base64.b64encode(bad) + b"?=\r\n"
        + f"Message-ID: <hostile-corpus-{n}-".encode() + bad + b"@example.net>\r\n"
        + b"Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n" + b"X-" + bad + b": " + bad + b"\r\n"
        + b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="' + bad + b'"\r\n\r\n'
        + b"--" + bad + b"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + bad * 100 + b"\r\n"
        + b"--" + bad + b"\r\nContent-Type: text/html; charset=\xff\xfe\r\n\r\n<p>" + bad + b"</p>\r\n"
        + b"--" + bad + b"\r\nContent-Type: text/plain; name*=utf-8''%FF%FE%C3%28.txt\r\n"
        + b"Content-Disposition: attachment; filename=\"" + bad + b".txt\"\r\n\r\n" + bad + b"\r\n"
        + b"--" + bad + b"--\r\n"
    )


def nul_bytes(n: int) -> bytes:
    return (
        _headers(n, "nul\x00in\x00subject", extra=b"X-Nul: a\x00b\x00c\r\nCc: nul\x00@exa\x00mple.org\r\n")
        + b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        + b"body\x00with\x00nuls\r\n" * 1000 + b"\x00" * 10000 + b"\r\n"
    )


def encoded_word_storm_50000(n: int) -> bytes:
    word = b"=?utf-8?b?" + base64.b64encode("wörter".encode()) + b"?="
    return _headers(n) + b"Subject: " + b"\r\n ".join([word] * 50_000) + b"\r\n\r\nbody\r\n"


def boundary_never_appears(n: int) -> bytes:
    return (
        _headers(n, "missing boundary")
        + b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="never-here"\r\n\r\n'
        + b"--not-the-boundary\r\nContent-Type: text/plain\r\n\r\ntext that is in no part\r\n" * 1000
    )


def boundary_100000_empty_parts(n: int) -> bytes:
    return (
        _headers(n, "empty parts")
        + b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        + b"--b\r\n\r\n" * 100_000 + b"--b--\r\n"
    )


def attachments_10000_of_1_byte(n: int) -> bytes:
    parts = [
        f'--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename="f{i}.txt"\r\n\r\n'
        f"{i % 10}\r\n".encode()
        for i in range(10_000)
    ]
    return (
        _headers(n, "ten thousand attachments")
        + b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        + b"".join(parts) + b"--b--\r\n"
    )


CORPUS: list[tuple[str, Callable[[int], bytes]]] = [
    ("header-flood-10mb", header_flood_10mb),
    ("nested-comments-500", nested_comments_500),
    ("date-5000-ones", date_of_5000_ones),
    ("multipart-nested-2000", multipart_nested_2000),
    ("base64-30mb-one-line", base64_30mb_one_line),
    ("header-line-2mb", header_line_2mb),
    ("headers-only-no-blank", headers_only_no_blank_line),
    ("no-headers-body-only", no_headers_with_body),
    ("invalid-utf8", invalid_utf8_everywhere),
    ("nul-bytes", nul_bytes),
    ("encoded-word-storm-50k", encoded_word_storm_50000),
    ("boundary-never-appears", boundary_never_appears),
    ("boundary-100k-empty-parts", boundary_100000_empty_parts),
    ("attachments-10k-of-1-byte", attachments_10000_of_1_byte),
]


# -- the test ---------------------------------------------------------------------------------

@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path)
    cli.env.update(PARSE_ENV)
    return cli


def _elements_by_uid(data_dir: Path) -> dict[int, dict[str, Any]]:
    """uid -> a summary of each stored element (read straight from the store: some are large)."""
    layout = DataDir(data_dir)
    if not layout.element_db_path.exists():
        return {}
    with SqliteElementReader(layout.element_db_path, layout.feed_listeners_root) as reader:
        return {
            e["uid"]: {"defects": len(e.get("defects") or []),
                       "attachments": Counter(a.get("status") for a in e.get("attachments") or [])}
            for e in reader.iter_elements(USER)
        }


def _quarantined(cli: Cli) -> dict[int, str]:
    listed = cli("quarantine", "list", "--json")
    assert listed.code == 0, listed.err
    return {r["uid"]: r["reason"] for r in listed.json()}


def _outcome(uid: int, stored: dict[int, dict[str, Any]], quarantined: dict[int, str]) -> str:
    if uid in stored and uid in quarantined:
        return "BOTH stored and quarantined"
    if uid in stored:
        summary = stored[uid]
        statuses = summary["attachments"]
        attachments = f", attachments {dict(statuses)}" if statuses else ""
        return f"stored ({summary['defects']} defects{attachments})"
    if uid in quarantined:
        return f"quarantined: {quarantined[uid][:70]}"
    return "MISSING"


def test_hostile_messages_one_at_a_time_end_stored_or_quarantined_in_bounded_memory(
    cli: Cli, dovecot: DovecotServer
) -> None:
    assert cli.add(dovecot).code == 0
    rows: list[tuple[str, float, float, float, str]] = []
    problems: list[str] = []
    try:
        for uid, (name, build) in enumerate(CORPUS, start=1):
            raw = build(uid)
            dovecot.deliver(USER, raw)
            del raw
            run = run_measured([COMMAND, "imap", "sync", USER, "--timeout", "60", "--json"], cli.env, SYNC_DEADLINE)
            stored, quarantined = _elements_by_uid(cli.data_dir), _quarantined(cli)
            outcome = _outcome(uid, stored, quarantined)
            rows.append((name, run.seconds, run.own_peak_mb, run.tree_peak_mb, outcome))
            if run.seconds >= SYNC_DEADLINE:
                problems.append(f"{name}: `imap sync` was killed after {SYNC_DEADLINE:g} s")
            elif run.code != 0:
                problems.append(f"{name}: `imap sync` exited {run.code}: {run.err.strip()[-300:]}")
            if run.own_peak_mb >= SERVICE_CEILING_MB:
                problems.append(f"{name}: the service process peaked at {run.own_peak_mb:.0f} MB")
            if outcome == "MISSING" or outcome.startswith("BOTH"):
                problems.append(f"{name}: {outcome}")
            if uid in quarantined and not quarantined[uid].strip():
                problems.append(f"{name}: quarantined without a reason")
    finally:
        _print_table(rows)

    assert not problems, "\n".join(problems)
    stored, quarantined = _elements_by_uid(cli.data_dir), _quarantined(cli)
    assert len(stored) + len(quarantined) == len(CORPUS), (sorted(stored), sorted(quarantined))
    assert set(stored) | set(quarantined) == set(range(1, len(CORPUS) + 1))


def _print_table(rows: list[tuple[str, float, float, float, str]]) -> None:
    print()
    print(f"{'message':<27} {'seconds':>7} {'own MB':>7} {'tree MB':>7}  outcome")
    for name, seconds, own, tree, outcome in rows:
        print(f"{name:<27} {seconds:>7.1f} {own:>7.0f} {tree:>7.0f}  {outcome}")
    print("own MB: peak RSS of the `imap sync` process itself (VmHWM); tree MB: its ru_maxrss from wait4, "
          "which includes the parser and extraction processes it reaped")
