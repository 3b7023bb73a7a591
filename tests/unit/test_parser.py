"""Unit tests for futurnal.parse (parser, headers, mime_walk): decoding, structure, threading and robustness."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
from dataclasses import asdict

import pytest

from futurnal.parse.headers import Address, thread_id_for
from futurnal.parse.html_text import html_to_text
from futurnal.parse.mime_walk import FORWARD_MARKER, sanitise_filename
from futurnal.parse.parser import ParsedMessage, parse_message


def mail(*headers: str, body: str | bytes = "Hello.\r\n") -> bytes:
    """Build raw message bytes from header lines and a body, with CRLF line ends."""
    head = "\r\n".join(headers).encode("utf-8") + b"\r\n\r\n"
    return head + (body if isinstance(body, bytes) else body.encode("utf-8"))


def b64(text: str, charset: str) -> str:
    return base64.b64encode(text.encode(charset)).decode("ascii")


def assert_json_safe(parsed: ParsedMessage) -> None:
    """Every string must be valid Unicode: the element store writes UTF-8 JSON (attachment bytes
    are not part of the element)."""
    fields = asdict(parsed)
    for attachment in fields["attachments"]:
        attachment.pop("data")
    json.dumps(fields, ensure_ascii=False).encode("utf-8")


BASIC = (
    "From: Alice <alice@example.com>",
    "To: Bob <bob@example.com>",
    "Subject: Hi",
    "Date: Tue, 4 Mar 2025 10:20:30 +0000",
    "Message-ID: <basic-1@example.com>",
)


# --------------------------------------------------------------------------
# RFC 2047 / RFC 2231 decoding
# --------------------------------------------------------------------------


def test_utf8_base64_encoded_subject_is_decoded() -> None:
    parsed = parse_message(mail(f"Subject: =?UTF-8?B?{b64('Grüße aus Köln ☕', 'utf-8')}?="))
    assert parsed.subject == "Grüße aus Köln ☕"


def test_utf8_q_encoded_subject_with_underscores_and_adjacent_words_is_decoded() -> None:
    parsed = parse_message(mail("Subject: =?utf-8?Q?Caf=C3=A9_cr=C3=A8me?= =?utf-8?Q?_br=C3=BBl=C3=A9e?="))
    assert parsed.subject == "Café crème brûlée"


def test_iso_8859_1_subject_is_decoded_and_folding_is_unfolded() -> None:
    parsed = parse_message(mail("Subject: =?ISO-8859-1?Q?Re=3A_R=E9union?=\r\n  de =?ISO-8859-1?Q?l=27=E9quipe?="))
    assert parsed.subject == "Re: Réunion de l'équipe"


@pytest.mark.parametrize("charset", ["ISO-2022-JP", "Shift_JIS"])
def test_japanese_subject_is_decoded(charset: str) -> None:
    parsed = parse_message(mail(f"Subject: =?{charset}?B?{b64('日本語のメール', charset)}?="))
    assert parsed.subject == "日本語のメール"
    assert not any(d.startswith("unknown-charset") for d in parsed.defects)


def test_encoded_display_names_are_decoded_and_domain_lower_cased() -> None:
    parsed = parse_message(
        mail(
            "From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@VM1.ULG.AC.BE>",
            f"To: =?utf-8?B?{b64('山田 太郎', 'utf-8')}?= <taro@example.jp>",
        )
    )
    assert parsed.from_ == (Address("André Pirard", "PIRARD@vm1.ulg.ac.be"),)
    assert parsed.to == (Address("山田 太郎", "taro@example.jp"),)


def test_rfc2231_attachment_file_names_are_decoded() -> None:
    body = (
        "--B\r\nContent-Type: text/plain\r\n\r\nsee files\r\n"
        "--B\r\nContent-Type: application/pdf\r\n"
        "Content-Disposition: attachment; filename*=iso-8859-1''R%E9sum%E9.pdf\r\n\r\n%PDF\r\n"
        "--B\r\nContent-Type: application/octet-stream\r\n"
        "Content-Disposition: attachment;\r\n filename*0*=utf-8''%E6%97%A5%E6%9C%AC;\r\n filename*1=\".bin\"\r\n\r\nxx\r\n"
        "--B--\r\n"
    )
    parsed = parse_message(mail(*BASIC, "Content-Type: multipart/mixed; boundary=B", body=body))
    assert [a.filename for a in parsed.attachments] == ["Résumé.pdf", "日本.bin"]


def test_rfc2047_encoded_attachment_file_name_is_decoded() -> None:
    body = (
        "--B\r\nContent-Type: image/png; name=\"=?utf-8?B?" + b64("Übersicht.png", "utf-8") + "?=\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--B--\r\n"
    )
    parsed = parse_message(mail(*BASIC, "Content-Type: multipart/mixed; boundary=B", body=body))
    assert [a.filename for a in parsed.attachments] == ["Übersicht.png"]


# --------------------------------------------------------------------------
# File names
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hostile",
    ["../../etc/passwd", "a\\b", "..\\..\\windows\\system32", "/abs/path.txt", "evil\x00na\x1bme\r\n.txt", "\u202efdp.exe"],
)
def test_hostile_file_names_lose_path_separators_dot_dot_and_control_characters(hostile: str) -> None:
    safe = sanitise_filename(hostile)
    assert safe
    assert "/" not in safe and "\\" not in safe and ".." not in safe
    assert not re.search("[\x00-\x1f\x7f\u202e]", safe)


def test_traversal_file_name_keeps_its_meaningful_components() -> None:
    assert sanitise_filename("../../etc/passwd") == "etc_passwd"
    assert sanitise_filename("a\\b") == "a_b"


def test_very_long_file_name_is_cut_to_200_characters_keeping_the_extension() -> None:
    safe = sanitise_filename("x" * 1000 + ".pdf")
    assert safe is not None and len(safe) <= 200 and safe.endswith(".pdf")


@pytest.mark.parametrize("empty", ["", "..", "../..", "\x00\x01", "  /  "])
def test_file_names_with_nothing_usable_become_none(empty: str) -> None:
    assert sanitise_filename(empty) is None


def test_hostile_attachment_name_in_a_message_is_sanitised() -> None:
    body = (
        "--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        "--B\r\nContent-Type: application/octet-stream\r\n"
        "Content-Disposition: attachment; filename=\"../../etc/passwd\"\r\n\r\nroot:x:0:0\r\n--B--\r\n"
    )
    parsed = parse_message(mail(*BASIC, "Content-Type: multipart/mixed; boundary=B", body=body))
    assert [a.filename for a in parsed.attachments] == ["etc_passwd"]


# --------------------------------------------------------------------------
# Dates and addresses
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Tue, 4 Mar 2025 11:20:30 +0100", "2025-03-04T10:20:30Z"),
        ("Mon, 3 Mar 2025 23:30:00 -0500", "2025-03-04T04:30:00Z"),
        ("4 Mar 2025 10:20:30 GMT", "2025-03-04T10:20:30Z"),
        ("Tue, 04 Mar 2025 19:20:30 +0900 (JST)", "2025-03-04T10:20:30Z"),
        ("Tue, 4 Mar 2025 10:20:30 -0000", "2025-03-04T10:20:30Z"),
    ],
)
def test_dates_are_normalised_to_utc(header: str, expected: str) -> None:
    parsed = parse_message(mail(f"Date: {header}"))
    assert parsed.date == expected
    assert parsed.date_raw == header
    assert "bad-date" not in parsed.defects


def test_unparseable_date_gives_none_keeps_the_raw_value_and_records_bad_date() -> None:
    parsed = parse_message(mail("Date: sometime last tuesday"))
    assert parsed.date is None
    assert parsed.date_raw == "sometime last tuesday"
    assert "bad-date" in parsed.defects


def test_missing_date_is_recorded() -> None:
    parsed = parse_message(mail("Subject: no date"))
    assert (parsed.date, parsed.date_raw) == (None, None)
    assert "missing-date" in parsed.defects


def test_addresses_with_display_names_and_groups_are_flattened_in_order() -> None:
    parsed = parse_message(
        mail(
            'To: Team: Alice <Alice.Smith@Example.COM>, bob@example.com;, "Doe, John" <john@EXAMPLE.org>',
            "Cc: undisclosed-recipients:;",
            "Reply-To: Support <support@example.net>",
            "Bcc: hidden@example.com",
        )
    )
    assert parsed.to == (
        Address("Alice", "Alice.Smith@example.com"),
        Address(None, "bob@example.com"),
        Address("Doe, John", "john@example.org"),
    )
    assert parsed.cc == ()
    assert parsed.reply_to == (Address("Support", "support@example.net"),)
    assert parsed.bcc == (Address(None, "hidden@example.com"),)


def test_message_ids_lose_their_brackets() -> None:
    parsed = parse_message(
        mail(
            "Message-ID:  <own@example.com> ",
            "In-Reply-To: <parent@example.com> (Bob's message)",
            "References: <root@example.com>\r\n <parent@example.com>",
        )
    )
    assert parsed.message_id == "own@example.com"
    assert parsed.in_reply_to == "parent@example.com"
    assert parsed.references == ("root@example.com", "parent@example.com")


# --------------------------------------------------------------------------
# Body text
# --------------------------------------------------------------------------


ALTERNATIVE = (
    "--ALT\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlain version.\r\n"
    "--ALT\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>HTML <b>version</b>.</p>\r\n"
    "--ALT--\r\n"
)


def test_multipart_alternative_prefers_text_plain() -> None:
    parsed = parse_message(mail(*BASIC, "Content-Type: multipart/alternative; boundary=ALT", body=ALTERNATIVE))
    assert parsed.text == "Plain version."
    assert parsed.attachments == ()


def test_multipart_alternative_with_an_empty_text_part_falls_back_to_html() -> None:
    body = (
        "--ALT\r\nContent-Type: text/plain\r\n\r\n\r\n"
        "--ALT\r\nContent-Type: text/html\r\n\r\n<p>Only here</p>\r\n--ALT--\r\n"
    )
    parsed = parse_message(mail(*BASIC, "Content-Type: multipart/alternative; boundary=ALT", body=body))
    assert parsed.text == "Only here"


HTML_ONLY = """<html><head><title>Newsletter</title><style>p { color: red }</style></head>
<body><script>alert("x")</script><h1>News &amp; Views</h1>
<p>Caf&eacute; &lt;open&gt;&nbsp;today &#8212; see <a href="https://example.com/menu">our menu</a>.</p>
<ul><li>one</li><li>two</li></ul></body></html>"""


def test_html_only_message_is_reduced_to_readable_text() -> None:
    parsed = parse_message(mail(*BASIC, "Content-Type: text/html; charset=utf-8", body=HTML_ONLY))
    assert parsed.text == (
        "News & Views\n\nCafé <open> today — see our menu (https://example.com/menu).\n\n- one\n- two"
    )


def test_html_to_text_drops_script_and_style_and_keeps_link_targets() -> None:
    text = html_to_text(HTML_ONLY)
    assert "alert" not in text and "color" not in text and "Newsletter" not in text
    assert "our menu (https://example.com/menu)" in text
    assert "&amp;" not in text and "News & Views" in text


def test_html_to_text_does_not_repeat_a_url_that_is_the_link_text() -> None:
    assert html_to_text('<a href="https://example.com">https://example.com</a>') == "https://example.com"


def test_html_to_text_survives_markup_that_breaks_html_parser() -> None:
    assert "after" in html_to_text("<![bogus[ x ]]><p>after</p><a href='x")


def test_format_flowed_text_is_unwrapped() -> None:
    parsed = parse_message(
        mail("Content-Type: text/plain; charset=utf-8; format=flowed", body="A long \r\nline.\r\nNext.\r\n")
    )
    assert parsed.text == "A long line.\nNext."


def test_nested_forwarded_message_text_and_attachments_follow_the_main_text() -> None:
    body = (
        "--OUT\r\nContent-Type: text/plain\r\n\r\nFYI, see below.\r\n"
        "--OUT\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: Carol <carol@example.org>\r\nSubject: Quarterly numbers\r\n"
        "Date: Mon, 3 Mar 2025 09:00:00 +0000\r\n"
        "Content-Type: multipart/mixed; boundary=IN\r\n\r\n"
        "--IN\r\nContent-Type: text/plain\r\n\r\nNumbers attached.\r\n"
        "--IN\r\nContent-Type: text/csv; name=q1.csv\r\nContent-Disposition: attachment; filename=q1.csv\r\n\r\n"
        "a,b\r\n1,2\r\n--IN--\r\n"
        "--OUT--\r\n"
    )
    parsed = parse_message(mail(*BASIC, "Content-Type: multipart/mixed; boundary=OUT", body=body))
    assert parsed.text == (
        "FYI, see below.\n\n"
        f"{FORWARD_MARKER}\n"
        "From: Carol <carol@example.org>\n"
        "Date: Mon, 3 Mar 2025 09:00:00 +0000\n"
        "Subject: Quarterly numbers\n\n"
        "Numbers attached."
    )
    (csv,) = parsed.attachments
    assert (csv.filename, csv.content_type) == ("q1.csv", "text/csv")
    assert csv.data == b"a,b\r\n1,2"  # the CRLF before a boundary belongs to the boundary
    assert csv.size == len(b"a,b\r\n1,2")


def test_attachments_carry_size_hash_charset_and_their_bytes_for_the_processor() -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    body = (
        "--B\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
        "--B\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(png).decode() + "\r\n"
        "--B\r\nContent-Type: text/html; charset=utf-8\r\nContent-Disposition: attachment; filename=page.html\r\n\r\n"
        "<p>Hi &amp; bye</p>\r\n--B--\r\n"
    )
    parsed = parse_message(mail(*BASIC, "Content-Type: multipart/mixed; boundary=B", body=body))
    image, page = parsed.attachments
    assert (image.filename, image.content_type, image.size) == (None, "image/png", len(png))
    assert image.sha256 == hashlib.sha256(png).hexdigest()
    assert image.data == png
    assert (page.charset, page.data) == ("utf-8", b"<p>Hi &amp; bye</p>")
    assert parsed.text == "body"


# --------------------------------------------------------------------------
# Broken messages
# --------------------------------------------------------------------------


def test_missing_closing_boundary_still_yields_text_and_attachments() -> None:
    body = (
        "--B\r\nContent-Type: text/plain\r\n\r\nStill readable.\r\n"
        "--B\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n\r\n%PDF-1.4 trunc"
    )
    parsed = parse_message(mail(*BASIC, "Content-Type: multipart/mixed; boundary=B", body=body))
    assert parsed.text == "Still readable."
    assert [a.filename for a in parsed.attachments] == ["a.pdf"]
    assert "CloseBoundaryNotFoundDefect" in parsed.defects


def test_multipart_without_boundary_is_read_as_text_and_recorded() -> None:
    parsed = parse_message(mail(*BASIC, "Content-Type: multipart/mixed", body="just text\r\n"))
    assert parsed.text == "just text"
    assert "missing-boundary" in parsed.defects


def test_header_line_without_colon_does_not_swallow_the_following_headers() -> None:
    raw = mail(
        "Subject: still a subject",
        "this line has no colon",
        "From: Alice <alice@example.com>",
        "Message-ID: <nocolon@example.com>",
        body="The body.\r\n",
    )
    parsed = parse_message(raw)
    assert parsed.from_ == (Address("Alice", "alice@example.com"),)
    assert parsed.message_id == "nocolon@example.com"
    assert parsed.text == "The body."
    assert "malformed-header" in parsed.defects


def test_unknown_body_charset_falls_back_to_utf8_and_is_recorded() -> None:
    raw = mail("Content-Type: text/plain; charset=x-foo", body="Grüße\r\n".encode())
    parsed = parse_message(raw)
    assert parsed.text == "Grüße"
    assert "unknown-charset:x-foo" in parsed.defects


def test_unknown_charset_in_an_encoded_word_is_recorded() -> None:
    parsed = parse_message(mail("Subject: =?x-foo?Q?hello?= world"))
    assert parsed.subject == "hello world"
    assert "unknown-charset:x-foo" in parsed.defects


def test_wrongly_declared_charset_does_not_raise_and_keeps_the_text() -> None:
    parsed = parse_message(mail("Content-Type: text/plain; charset=us-ascii", body="naïve\r\n".encode()))
    assert parsed.text == "naïve"
    assert "charset-mismatch:us-ascii" in parsed.defects


def test_eight_bit_garbage_in_headers_yields_valid_unicode_and_a_defect() -> None:
    raw = (
        b"From: J\xf6rg \xff <joerg@example.de>\r\n"
        b"Subject: Hello \xff\xfe\x80 world\r\n"
        b"To: =?utf-8?B?w6k=?= \xc3\xa9 <e@example.com>\r\n\r\nbody\r\n"
    )
    parsed = parse_message(raw)
    assert_json_safe(parsed)
    assert parsed.subject is not None and parsed.subject.startswith("Hello ") and parsed.subject.endswith(" world")
    assert parsed.from_[0].address == "joerg@example.de"
    assert parsed.from_[0].name is not None and parsed.from_[0].name.startswith("Jörg")
    assert parsed.to == (Address("é é", "e@example.com"),)
    assert {"8bit-header:subject", "8bit-header:from"} <= set(parsed.defects)


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x00\xff\xfe\x00\x01garbage\xff\r\n\r\n\x00", b"\r\n\r\n", b":::\r\n:\r\n", random.Random(7).randbytes(4096)],
    ids=["empty", "nul-and-ff", "only-separator", "colons", "random-4k"],
)
def test_random_bytes_return_a_parsed_message_instead_of_raising(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert isinstance(parsed, ParsedMessage)
    assert re.fullmatch("[0-9a-f]{32}", parsed.thread_id)
    assert "missing-message-id" in parsed.defects
    assert list(parsed.defects) == sorted(set(parsed.defects))
    assert_json_safe(parsed)


# --------------------------------------------------------------------------
# Threading
# --------------------------------------------------------------------------


def thread_of_four() -> list[bytes]:
    common = ("From: a@example.com", "Date: Tue, 4 Mar 2025 10:20:30 +0000")
    return [
        mail(*common, "Subject: Plan", "Message-ID: <root@example.com>"),
        mail(*common, "Subject: Re: Plan", "Message-ID: <m2@example.com>",
             "In-Reply-To: <root@example.com>", "References: <root@example.com>"),
        mail(*common, "Subject: Re: Plan", "Message-ID: <m3@example.com>",
             "In-Reply-To: <m2@example.com>", "References: <root@example.com> <m2@example.com>"),
        mail(*common, "Subject: Re: Plan", "Message-ID: <m4@example.com>", "In-Reply-To: <m3@example.com>",
             "References: <root@example.com>\r\n <m2@example.com>\r\n <m3@example.com>"),
    ]


def test_thread_id_is_the_same_for_a_four_message_thread_in_any_parse_order() -> None:
    messages = thread_of_four()
    expected = parse_message(messages[0]).thread_id
    shuffler = random.Random(3)
    for _ in range(10):
        order = messages[:]
        shuffler.shuffle(order)
        assert {parse_message(raw).thread_id for raw in order} == {expected}
    unrelated = parse_message(mail("Message-ID: <other@example.com>"))
    assert unrelated.thread_id != expected


def test_thread_id_for_ignores_brackets_and_whitespace_around_ids() -> None:
    assert thread_id_for(None, None, [" <root@example.com> "], b"") == thread_id_for("root@example.com", None, [], b"x")


def test_message_without_message_id_gets_a_stable_thread_id() -> None:
    raw = mail("From: a@example.com", "Subject: no id", "Date: Tue, 4 Mar 2025 10:20:30 +0000")
    first, second = parse_message(raw), parse_message(bytes(raw))
    assert first.message_id is None and "missing-message-id" in first.defects
    assert first.thread_id == second.thread_id
    other = parse_message(mail("From: a@example.com", "Subject: another", "Date: Tue, 4 Mar 2025 10:20:30 +0000"))
    assert other.thread_id != first.thread_id


# --------------------------------------------------------------------------
# Signed and encrypted mail
# --------------------------------------------------------------------------


def test_pgp_signed_message_records_signed_and_keeps_the_signed_text() -> None:
    body = (
        "--S\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSigned words.\r\n"
        "--S\r\nContent-Type: application/pgp-signature; name=signature.asc\r\n\r\n"
        "-----BEGIN PGP SIGNATURE-----\r\nabc\r\n-----END PGP SIGNATURE-----\r\n--S--\r\n"
    )
    ctype = 'Content-Type: multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"; boundary=S'
    parsed = parse_message(mail(*BASIC, ctype, body=body))
    assert parsed.security == ("signed",)
    assert parsed.text == "Signed words."
    assert [a.content_type for a in parsed.attachments] == ["application/pgp-signature"]


def test_smime_signed_message_records_the_pkcs7_signature_as_an_attachment() -> None:
    body = (
        "--S\r\nContent-Type: text/plain\r\n\r\nS/MIME signed.\r\n"
        "--S\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        "MIAGCSqGSIb3DQEHAqCAMIACAQEx\r\n--S--\r\n"
    )
    ctype = 'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=S'
    parsed = parse_message(mail(*BASIC, ctype, body=body))
    assert parsed.security == ("signed",)
    assert parsed.text == "S/MIME signed."
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("smime.p7s", "application/pkcs7-signature")
    ]


def test_pgp_encrypted_message_records_encrypted_and_has_no_body_text() -> None:
    body = (
        "--E\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n"
        "--E\r\nContent-Type: application/octet-stream; name=encrypted.asc\r\n\r\n"
        "-----BEGIN PGP MESSAGE-----\r\nhQEMA\r\n-----END PGP MESSAGE-----\r\n--E--\r\n"
    )
    ctype = 'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary=E'
    parsed = parse_message(mail(*BASIC, ctype, body=body))
    assert parsed.security == ("encrypted",)
    assert parsed.text == ""


def test_smime_enveloped_message_records_encrypted_and_has_no_body_text() -> None:
    parsed = parse_message(
        mail(
            *BASIC,
            "Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m",
            "Content-Transfer-Encoding: base64",
            body="MIAGCSqGSIb3DQEHA6CAMIACAQAx\r\n",
        )
    )
    assert parsed.security == ("encrypted",)
    assert parsed.text == ""
    assert [a.content_type for a in parsed.attachments] == ["application/pkcs7-mime"]


def test_plain_message_has_no_security_markers() -> None:
    assert parse_message(mail(*BASIC)).security == ()


# --------------------------------------------------------------------------
# Fuzz
# --------------------------------------------------------------------------


FUZZ_BASE = mail(
    *BASIC,
    "Cc: =?utf-8?Q?Z=C3=BCrich?= <z@example.ch>, Group: a@b.c;",
    "References: <r1@example.com> <r2@example.com>",
    "Content-Type: multipart/mixed; boundary=OUT",
    body=(
        "--OUT\r\nContent-Type: multipart/alternative; boundary=ALT\r\n\r\n" + ALTERNATIVE + "\r\n"
        "--OUT\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n"
        "Content-Disposition: attachment; filename*=utf-8''caf%C3%A9.txt\r\n\r\ncaf=E9 au lait\r\n"
        "--OUT\r\nContent-Type: message/rfc822\r\n\r\nFrom: x@y.z\r\nSubject: fwd\r\n\r\ninner\r\n"
        "--OUT\r\nContent-Type: image/gif\r\nContent-Transfer-Encoding: base64\r\n\r\nR0lGODlhAQABAAAAACw=\r\n"
        "--OUT--\r\n"
    ),
)


def mutate(raw: bytes, rng: random.Random) -> bytes:
    """One random corruption: truncation, byte flips, a deleted header line, or spliced junk."""
    kind = rng.randrange(4)
    data = bytearray(raw)
    if kind == 0:
        return bytes(data[: rng.randrange(len(data) + 1)])
    if kind == 1:
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == 2:
        lines = raw.split(b"\r\n")
        header_count = lines.index(b"")
        del lines[rng.randrange(header_count)]
        return b"\r\n".join(lines)
    position = rng.randrange(len(data) + 1)
    return bytes(data[:position]) + rng.randbytes(rng.randint(1, 64)) + bytes(data[position:])


def test_three_hundred_random_mutations_of_a_valid_message_never_raise() -> None:
    rng = random.Random(1)
    assert parse_message(FUZZ_BASE).defects == ()
    for _ in range(300):
        parsed = parse_message(mutate(FUZZ_BASE, rng))
        assert isinstance(parsed, ParsedMessage)
        assert_json_safe(parsed)


# --------------------------------------------------------------------------
# Attachment rules and id edge cases
# --------------------------------------------------------------------------


def test_inline_images_of_an_html_alternative_are_not_attachments_but_named_ones_are() -> None:
    body = (
        "--ALT\r\nContent-Type: text/plain\r\n\r\nPlain.\r\n"
        "--ALT\r\nContent-Type: multipart/related; boundary=REL\r\n\r\n"
        "--REL\r\nContent-Type: text/html\r\n\r\n<p>Rich</p><img src=cid:logo>\r\n"
        "--REL\r\nContent-Type: image/png\r\nContent-ID: <logo>\r\n\r\nPNG\r\n"
        "--REL\r\nContent-Type: image/jpeg; name=photo.jpg\r\n\r\nJPG\r\n"
        "--REL--\r\n--ALT--\r\n"
    )
    parsed = parse_message(mail(*BASIC, "Content-Type: multipart/alternative; boundary=ALT", body=body))
    assert parsed.text == "Plain."
    assert [a.filename for a in parsed.attachments] == ["photo.jpg"]


def test_calendar_invitation_inside_an_alternative_is_kept_as_a_text_attachment() -> None:
    body = (
        "--ALT\r\nContent-Type: text/plain\r\n\r\nMeeting.\r\n"
        "--ALT\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
        "--ALT--\r\n"
    )
    parsed = parse_message(mail(*BASIC, "Content-Type: multipart/alternative; boundary=ALT", body=body))
    assert parsed.text == "Meeting."
    assert [(a.content_type, a.data) for a in parsed.attachments] == [
        ("text/calendar", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR")
    ]


def test_in_reply_to_prose_without_a_msg_id_is_not_taken_as_an_id() -> None:
    parsed = parse_message(mail("In-Reply-To: your message of Tuesday from bob@example.com"))
    assert parsed.in_reply_to is None
    assert parse_message(mail("In-Reply-To: bare-id@example.com")).in_reply_to == "bare-id@example.com"
