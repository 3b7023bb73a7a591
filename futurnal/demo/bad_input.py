"""A corpus of the mail that breaks ingesters: every charset, every shape, broken on purpose.

Generated, deterministic (seeded), and kept small enough to run through a real server in a test:
messages in many charsets with RFC 2047 / RFC 2231 headers, nested multiparts, forwarded
messages, deliberately malformed ones (broken boundaries, bad base64 and quoted-printable,
missing headers, 8-bit garbage in headers, absurd header lengths, deep nesting, truncation), and
hostile attachments (a zip bomb, a PDF that keeps an extractor busy, a compression-bomb PDF, a
file name climbing out with ``../``). Used by the corpus tests and the parse benchmark.
"""

from __future__ import annotations

import base64
import quopri
import random
from dataclasses import dataclass
from email.header import Header

from .attachment_files import docx_bytes, flate_bomb_pdf, pdf_bytes, spinning_pdf, xlsx_bytes, zip_bomb_docx

__all__ = ["CHARSETS", "CorpusMessage", "bad_input_corpus", "hostile_attachment_messages"]

#: (charset, sample text it can encode)
CHARSETS = (
    ("utf-8", "Grüße, 日本語, Ελληνικά, кириллица ✓"),
    ("iso-8859-1", "Grüße aus Köln, ça va?"),
    ("iso-8859-2", "Zażółć gęślą jaźń"),
    ("iso-8859-5", "Привет, как дела"),
    ("iso-8859-7", "Καλημέρα κόσμε"),
    ("iso-8859-15", "Prix: 10 € net"),
    ("windows-1250", "Příliš žluťoučký kůň"),
    ("windows-1251", "Съешь же ещё этих мягких булок"),
    ("windows-1252", "“Smart quotes” – and dashes…"),
    ("windows-1253", "Ξεσκεπάζω την ψυχοφθόρα"),
    ("koi8-r", "В чащах юга жил бы цитрус"),
    ("iso-2022-jp", "いろはにほへと ちりぬるを"),
    ("shift_jis", "日本語のメール本文です"),
    ("gb2312", "中文邮件正文"),
    ("euc-kr", "한국어 메일"),
    ("big5", "繁體中文郵件"),
)


@dataclass(frozen=True, slots=True)
class CorpusMessage:
    """One generated message; ``kind`` says what it exercises (for test ids and reports)."""

    kind: str
    raw: bytes


def _headers(subject: bytes, *, extra: bytes = b"", index: int = 0, content_type: bytes = b"text/plain") -> bytes:
    return (
        b"From: Sender <sender@example.org>\r\nTo: rcpt@example.net\r\n"
        b"Date: Tue, 3 Mar 2026 10:%02d:00 +0100\r\n" % (index % 60)
        + b"Message-ID: <corpus-%d@example.org>\r\nSubject: " % index + subject + b"\r\n"
        + extra + b"MIME-Version: 1.0\r\nContent-Type: " + content_type + b"\r\n"
    )


def _charset_messages(start: int) -> list[CorpusMessage]:
    out = []
    for offset, (charset, text) in enumerate(CHARSETS):
        index = start + offset
        encoded = text.encode(charset)
        subject_b = Header(text, charset).encode().encode("ascii")  # RFC 2047 (B or Q as the codec likes)
        name_q = b"=?" + charset.encode() + b"?Q?" + _q_word(encoded) + b"?="
        filename = b"UTF-8''" + "".join(f"%{b:02X}" for b in f"{text[:8]}.txt".encode()).encode()
        for transfer, body in (("8bit", encoded), ("base64", base64.encodebytes(encoded)),
                               ("quoted-printable", quopri.encodestring(encoded))):
            raw = (
                _headers(subject_b, index=index, content_type=b"multipart/mixed; boundary=CS",
                         extra=b"Cc: " + name_q + b" <cc@example.org>\r\n")
                + b"\r\n--CS\r\nContent-Type: text/plain; charset=" + charset.encode()
                + b"\r\nContent-Transfer-Encoding: " + transfer.encode() + b"\r\n\r\n" + body
                + b"\r\n--CS\r\nContent-Type: text/plain; charset=" + charset.encode()
                + b"\r\nContent-Disposition: attachment; filename*=" + filename
                + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(encoded) + b"--CS--\r\n"
            )
            out.append(CorpusMessage(f"charset-{charset}-{transfer}", raw))
    return out


def _q_word(data: bytes) -> bytes:
    """RFC 2047 Q encoding safe inside a phrase: letters and digits as is, space as _, the rest =XX."""
    return b"".join(bytes([b]) if chr(b).isalnum() and b < 128 else b"_" if b == 32 else b"=%02X" % b for b in data)


def _nested(depth: int) -> bytes:
    body = b"Content-Type: text/plain\r\n\r\ninnermost\r\n"
    for level in range(depth):
        boundary = b"N%d" % level
        body = (b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n--" + boundary + b"\r\n"
                + body + b"\r\n--" + boundary + b"--\r\n")
    return body


def _forwarded(index: int) -> bytes:
    inner = _headers(b"=?utf-8?B?" + base64.b64encode("Weitergeleitet: Grüße".encode()) + b"?=", index=index + 1000,
                     content_type=b"multipart/mixed; boundary=IN") + (
        b"\r\n--IN\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nOriginal text.\r\n"
        b"--IN\r\nContent-Type: application/pdf; name=inner.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(pdf_bytes("Inside the forwarded mail")) + b"--IN--\r\n"
    )
    return _headers(b"Fwd: twice", index=index, content_type=b"multipart/mixed; boundary=FW") + (
        b"\r\n--FW\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n--FW\r\nContent-Type: message/rfc822\r\n\r\n"
        + _headers(b"Fwd: once", index=index + 2000, content_type=b"multipart/mixed; boundary=F2")
        + b"\r\n--F2\r\nContent-Type: text/plain\r\n\r\nFirst forward.\r\n--F2\r\nContent-Type: message/rfc822\r\n\r\n"
        + inner + b"\r\n--F2--\r\n--FW--\r\n"
    )


def _shapes(start: int) -> list[CorpusMessage]:
    i = start
    alt_related = _headers(b"alternative in related in mixed", index=i, content_type=b"multipart/mixed; boundary=M") + (
        b"\r\n--M\r\nContent-Type: multipart/related; boundary=R\r\n\r\n--R\r\n"
        b"Content-Type: multipart/alternative; boundary=A\r\n\r\n--A\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
        b"--A\r\nContent-Type: text/html\r\n\r\n<p>html <img src=cid:i1></p>\r\n--A--\r\n"
        b"--R\r\nContent-Type: image/png\r\nContent-ID: <i1>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"iVBORw0KGgo=\r\n--R--\r\n--M\r\nContent-Type: application/octet-stream; name=\"notes.docx\"\r\n"
        b"Content-Disposition: attachment\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(docx_bytes("Docx inside")) + b"--M\r\n"
        b"Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet; name=s.xlsx\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(xlsx_bytes("cell")) + b"--M--\r\n"
    )
    signed = _headers(b"signed", index=i + 1, content_type=b'multipart/signed; protocol="application/pgp-signature"; '
                      b"micalg=pgp-sha256; boundary=S") + (
        b"\r\n--S\r\nContent-Type: text/plain\r\n\r\nSigned words.\r\n--S\r\nContent-Type: application/pgp-signature\r\n"
        b"\r\n-----BEGIN PGP SIGNATURE-----\r\nxyz\r\n-----END PGP SIGNATURE-----\r\n--S--\r\n"
    )
    return [
        CorpusMessage("nested-alternative-related", alt_related),
        CorpusMessage("forwarded-twice", _forwarded(i + 2)),
        CorpusMessage("signed", signed),
        CorpusMessage("nested-10", _headers(b"ten deep", index=i + 3, content_type=b"text/plain")[:-26]
                      + _nested(10)),
    ]


def _malformed(start: int, rng: random.Random) -> list[CorpusMessage]:
    i = start
    h = _headers
    out = [
        ("broken-boundary", h(b"boundary never appears", index=i, content_type=b"multipart/mixed; boundary=NOPE")
         + b"\r\n--OTHER\r\nContent-Type: text/plain\r\n\r\nlost\r\n--OTHER--\r\n"),
        ("missing-boundary-param", h(b"no boundary", index=i + 1, content_type=b"multipart/mixed")
         + b"\r\nbody without parts\r\n"),
        ("unterminated-multipart", h(b"no closing", index=i + 2, content_type=b"multipart/mixed; boundary=U")
         + b"\r\n--U\r\nContent-Type: text/plain\r\n\r\nstarted\r\n--U\r\nContent-Type: application/pdf\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK"),
        ("bad-base64", h(b"bad base64", index=i + 3, content_type=b"text/plain; charset=utf-8")
         + b"Content-Transfer-Encoding: base64\r\n\r\n!!!not*base64***\r\nSGVsbG8=extra=\r\n===\r\n"),
        ("bad-quoted-printable", h(b"bad qp", index=i + 4, content_type=b"text/plain; charset=utf-8")
         + b"Content-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=4 soft break at end=\r\n=C3=\r\n=\r\n"),
        ("bad-base64-attachment", h(b"bad attachment", index=i + 5, content_type=b"multipart/mixed; boundary=B")
         + b"\r\n--B\r\nContent-Type: application/pdf; name=x.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           b"%%%%garbage%%%%\r\n--B--\r\n"),
        ("no-headers-at-all", b"\r\njust a body\r\n"),
        ("empty", b""),
        ("only-garbage-bytes", bytes(rng.randrange(256) for _ in range(2000))),
        ("missing-from-date-id", b"Subject: lonely\r\n\r\nno sender, no date\r\n"),
        ("8bit-garbage-in-headers", b"From: \xff\xfe\x80 <x@\xc3\x28.org>\r\nTo: \x81\x82@example.org\r\n"
         b"Subject: \xe9t\xe9 \xc0 \x00nul\r\nDate: \xa0\xa0 yesterday\r\nMessage-ID: <\xff@x>\r\n\r\nbody \xff\r\n"),
        ("header-without-colon", b"From: a@example.org\r\nthis line is not a header\r\nSubject: after\r\n\r\nbody\r\n"),
        ("absurd-subject-length", h(b"S" * 1_000_000, index=i + 6)[:] + b"\r\nbody\r\n"),
        ("absurd-address-list", b"From: a@example.org\r\nTo: " + b", ".join(b"u%d@example.org" % n for n in range(20000))
         + b"\r\nSubject: many\r\n\r\nbody\r\n"),
        ("absurd-header-count", b"".join(b"X-H%d: v\r\n" % n for n in range(50000)) + b"Subject: many headers\r\n\r\nb\r\n"),
        ("deep-nesting-300", b"From: a@example.org\r\nSubject: deep\r\nMIME-Version: 1.0\r\n" + _nested(300)),
        ("wrong-charset-label", h(b"says utf-8", index=i + 7, content_type=b"text/plain; charset=utf-8")
         + b"\r\nlatin-1 really: Gr\xfc\xdfe\r\n"),
        ("unknown-charset", h(b"=?x-unknown-42?Q?weird?=", index=i + 8, content_type=b"text/plain; charset=x-unknown-42")
         + b"\r\nbody\r\n"),
        ("codec-that-is-not-a-charset", h(b"=?base64?B?aGVsbG8=?=", index=i + 9, content_type=b"text/plain; charset=rot13")
         + b"\r\nbody\r\n"),
        ("broken-encoded-words", h(b"=?utf-8?B?@@@?= =?utf-8?Q?=ZZ?= =?utf-8?", index=i + 10) + b"\r\nbody\r\n"),
        ("truncated-mid-base64", (h(b"truncated", index=i + 11, content_type=b"multipart/mixed; boundary=T")
         + b"\r\n--T\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
         + base64.encodebytes(pdf_bytes("cut off")))[:-200]),
        ("bare-lf-and-cr", b"From: a@example.org\nSubject: bare LF\n\nline\rline\r\n"),
        ("rfc2231-broken", h(b"2231", index=i + 12, content_type=b"multipart/mixed; boundary=P")
         + b"\r\n--P\r\nContent-Type: text/plain; name*0*=bogus''%FF%FE; name*1=x.txt\r\n"
           b"Content-Disposition: attachment; filename*=utf-8''%E2%28%A1.txt\r\n\r\nbody\r\n--P--\r\n"),
    ]
    for n in range(12):  # random byte mutations of a valid multipart message
        base = bytearray(_forwarded(i + 20 + n))
        for _ in range(rng.randrange(5, 60)):
            base[rng.randrange(len(base))] = rng.randrange(256)
        out.append((f"mutated-{n}", bytes(base)))
    return [CorpusMessage(kind, raw) for kind, raw in out]


def hostile_attachment_messages(start: int = 9000) -> list[CorpusMessage]:
    """Messages whose attachments attack the extractor or the file system."""
    def attached(kind: str, index: int, content_type: bytes, name: bytes, data: bytes) -> CorpusMessage:
        return CorpusMessage(kind, _headers(b"hostile " + kind.encode(), index=index,
                                            content_type=b"multipart/mixed; boundary=H") + (
            b"\r\n--H\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--H\r\nContent-Type: " + content_type
            + b"\r\nContent-Disposition: attachment; filename=\"" + name + b"\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(data) + b"--H--\r\n"))

    word = b"application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    return [
        attached("zip-bomb-docx", start, word, b"bomb.docx", zip_bomb_docx()),
        attached("spinning-pdf", start + 1, b"application/pdf", b"spin.pdf", spinning_pdf()),
        attached("flate-bomb-pdf", start + 2, b"application/pdf", b"bomb.pdf", flate_bomb_pdf(256)),
        attached("path-traversal-name", start + 3, b"text/plain", b"../../../../etc/cron.d/evil\\..\\x.txt",
                 b"* * * * * root rm -rf /"),
        attached("huge-control-name", start + 4, b"text/plain", b"\x1b[31m" + b"A" * 5000 + b"\x07.txt", b"text"),
        attached("oversized", start + 5, b"text/plain", b"big.txt", b"z" * (3 * 1024 * 1024)),
    ]


def bad_input_corpus(seed: int = 4) -> list[CorpusMessage]:
    """Every message of the corpus except the hostile attachments (those are slow to extract by design)."""
    rng = random.Random(seed)
    charsets = _charset_messages(100)
    shapes = _shapes(500)
    return charsets + shapes + _malformed(600, rng)
