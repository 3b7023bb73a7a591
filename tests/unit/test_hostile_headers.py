"""Hostile headers and structures: the parser returns, keeps the rest of the message, says what was
wrong in ``defects``, and takes time in proportion to the input."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from futurnal.parse import mime_walk
from futurnal.parse.headers import Address
from futurnal.parse.parser import ParsedMessage, parse_message

BODY = "The body survives."
HEADERS = {
    "From": "Alice <alice@example.org>",
    "To": "Bob <bob@example.org>",
    "Cc": "carol@example.org",
    "Subject": "kept",
    "Date": "Tue, 4 Mar 2025 10:20:30 +0000",
    "Message-ID": "<id-1@example.org>",
    "References": "<root@example.org>",
    "Content-Type": "text/plain; charset=utf-8",
    "Content-Disposition": "inline",
}


def mail(**replaced: str) -> bytes:
    """A plain message with the named headers (``Content_Type`` for ``Content-Type``) replaced."""
    headers = {**HEADERS, **{name.replace("_", "-"): value for name, value in replaced.items()}}
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (head + "\r\n" + BODY + "\r\n").encode("utf-8")


def assert_kept_apart_from(parsed: ParsedMessage, hostile: str) -> None:
    """Everything but the hostile header reads as it would without it."""
    assert parsed.text == BODY
    expected = {
        "From": parsed.from_ == (Address("Alice", "alice@example.org"),),
        "To": parsed.to == (Address("Bob", "bob@example.org"),),
        "Cc": parsed.cc == (Address(None, "carol@example.org"),),
        "Subject": parsed.subject == "kept",
        "Date": parsed.date == "2025-03-04T10:20:30Z",
        "Message-ID": parsed.message_id == "id-1@example.org",
    }
    assert [name for name, ok in expected.items() if not ok and name != hostile] == []


def test_five_hundred_nested_comments_in_to_are_a_defect_and_the_rest_is_kept() -> None:
    parsed = parse_message(mail(To="(" * 500 + "x" + ")" * 500 + " <a@b.c>"))
    assert "header-decode:to" in parsed.defects
    assert_kept_apart_from(parsed, "To")


#: Values that make the stdlib's header parsers recurse (or loop) once per level.
NESTINGS: dict[str, Callable[[int], str]] = {
    "comments": lambda n: "(" * n + "x" + ")" * n + " <a@b.c>",
    "unclosed-comments": lambda n: "(" * n + "a@b.c",
    "quotes": lambda n: '"' + '\\"' * n + '" <a@b.c>',
    "encoded-words": lambda n: "=?utf-8?q?a?= " * n + "<a@b.c>",
    "encoded-words-in-comments": lambda n: "(" * n + "=?utf-8?b?eA==?=" + ")" * n + " a@b.c",
    "groups": lambda n: "g: " * n + "a@b.c" + ";" * n,
    "angle-brackets": lambda n: "<" * n + "a@b.c" + ">" * n,
    "quoted-encoded-comments": lambda n: '("=?utf-8?q?x?=' * n + ")" * n,
}
PARAMETER_HEADERS = {"Content-Type": "text/plain; charset=utf-8; name=", "Content-Disposition": "inline; filename="}


@pytest.mark.parametrize("depth", [500, 5000])
@pytest.mark.parametrize("shape", NESTINGS)
@pytest.mark.parametrize("header", ["To", "From", "Cc", "Subject", "Date", "Message-ID", "References",
                                    *PARAMETER_HEADERS])
def test_nested_header_values_never_raise_and_cost_only_their_header(header: str, shape: str, depth: int) -> None:
    value = NESTINGS[shape](depth)
    for variant in (value, f"=?utf-8?q?{value}?="):
        parsed = parse_message(mail(**{header.replace("-", "_"): PARAMETER_HEADERS.get(header, "") + variant}))
        assert_kept_apart_from(parsed, header)


def nested_multiparts(levels: int) -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in list(HEADERS.items())[:6])
    opening = "".join(f"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n" for i in range(levels))
    closing = "".join(f"\r\n--b{i}--\r\n" for i in reversed(range(levels)))
    return (head + opening + f"Content-Type: text/plain\r\n\r\n{BODY}\r\n" + closing).encode()


def test_multiparts_nested_past_the_depth_limit_keep_their_text() -> None:
    parsed = parse_message(nested_multiparts(60))
    assert "nesting-too-deep" in parsed.defects
    assert_kept_apart_from(parsed, "")


def test_two_thousand_nested_multiparts_return_with_the_body_text() -> None:
    parsed = parse_message(nested_multiparts(2000))  # deeper than the stdlib parser can follow
    assert "parse-error" in parsed.defects
    assert BODY in parsed.text
    assert (parsed.subject, parsed.date) == ("kept", "2025-03-04T10:20:30Z")


def test_a_surprise_inside_the_mime_walk_costs_the_body_not_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def surprise(*args: object, **kwargs: object) -> None:
        raise IndexError("a stdlib corner nobody foresaw")

    monkeypatch.setattr(mime_walk, "_leaf", surprise)
    parsed = parse_message(mail())
    assert "parse-error" in parsed.defects
    assert (parsed.text, parsed.subject, parsed.from_) == ("", "kept", (Address("Alice", "alice@example.org"),))


def cpu_seconds(raw: bytes) -> tuple[ParsedMessage, float]:
    started = time.process_time()
    parsed = parse_message(raw)
    return parsed, time.process_time() - started


def test_ten_megabytes_of_from_lines_parse_in_linear_time() -> None:
    lines = b"From: x\r\n" * (10 * 1024 * 1024 // 9)
    parsed, seconds = cpu_seconds(b"Subject: kept\r\n" + lines + b"\r\n" + BODY.encode() + b"\r\n")
    assert seconds < 30, seconds  # about 7 s here; every From line parsed took two minutes
    assert (parsed.text, parsed.subject) == (BODY, "kept")
    assert "repeated-header:from" in parsed.defects
    assert len(parsed.from_) == 64


@pytest.mark.parametrize(("header", "unit"), [
    ("To", "@"), ("Cc", "(a@b.c), "), ("Subject", "=?utf-8?q?x?="), ("References", "<a@b.c>"), ("Date", "1 "),
])
def test_a_ten_megabyte_header_is_cut_and_read_quickly(header: str, unit: str) -> None:
    parsed, seconds = cpu_seconds(mail(**{header: unit * (10 * 1024 * 1024 // len(unit))}))
    assert seconds < 10, seconds
    assert f"header-too-long:{header.lower()}" in parsed.defects
    assert_kept_apart_from(parsed, header)


def test_megabytes_of_mime_parameters_are_read_in_linear_time() -> None:
    params = ";" * (4 * 1024 * 1024)  # the stdlib's parameter split is quadratic: minutes for this
    raw = (f"Content-Type: multipart/mixed; boundary=b{params}\r\n\r\n--b\r\nContent-Type: text/plain; x=\"{params}"
           f"\r\n\r\n{BODY}\r\n--b--\r\n").encode()
    parsed, seconds = cpu_seconds(raw)
    assert seconds < 10, seconds
    assert parsed.text == BODY


# --------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    "1" * 5000,  # fromisoformat: 1111-11-11T11:11:11.111111
    "11111111T111111",
    "20250304",
    "Jan 1 1 1:1",  # parsedate: 2001-01-01 01:01
    "Mon, 1 Jan 0001 00:00:00 +0000",  # parsedate: 2001
    "Mon, 1 Jan 1111 00:00:00 +0000",  # before 1900: RFC 5322 has no such year
    "2025-13-45T10:20:30Z",
    "(" * 500 + "Tue, 4 Mar 2025" + ")" * 500,
])
def test_a_date_that_cannot_be_read_sanely_gives_no_date_and_a_defect(value: str) -> None:
    parsed = parse_message(mail(Date=value))
    assert (parsed.date, parsed.date_raw) == (None, value)
    assert "bad-date" in parsed.defects
    assert_kept_apart_from(parsed, "Date")


@pytest.mark.parametrize(("value", "expected"), [
    ("2025-03-04T10:20:30Z", "2025-03-04T10:20:30Z"),
    ("2025-03-04 11:20:30+01:00", "2025-03-04T10:20:30Z"),
    ("2025-03-04", "2025-03-04T00:00:00Z"),
    ("4 Mar 99 10:20:30 +0000", "1999-03-04T10:20:30Z"),  # RFC 5322's obsolete two-digit year
    ("4 Mar 25 10:20:30 +0000", "2025-03-04T10:20:30Z"),
    ("Tue Mar  4 10:20:30 2025", "2025-03-04T10:20:30Z"),  # asctime, as some old clients write it
])
def test_dates_in_the_lenient_forms_still_read(value: str, expected: str) -> None:
    parsed = parse_message(mail(Date=value))
    assert parsed.date == expected
    assert "bad-date" not in parsed.defects
