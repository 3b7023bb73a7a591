"""A deterministic benchmark mailbox with realistic message *sizes*.

``futurnal.demo.sample_mailbox`` makes realistic headers, threads and broken messages, but its
bodies are about 1.7 KB: far too small to say anything about throughput, where bytes on the wire,
MIME decoding and store writes dominate. This module keeps its headers (senders, non-ASCII
subjects, threads, flags, the three malformed messages) and replaces each body with one of a
realistic size and shape:

- most messages: 2-60 KB of text, as text/plain or text/plain + text/html alternatives
  (a quarter of them 8-bit UTF-8 German, the rest ASCII English);
- about 8 %: one or two binary attachments of 10-250 KB (PDF, JPEG, DOCX, ZIP) or a CSV;
- exactly 0.5 % (every 200th message): one 1-3 MB attachment.

Everything comes from a seeded private ``random.Random``, so the same ``count`` and ``seed`` give
the same bytes, and the first N messages of a bigger mailbox are exactly the N-message mailbox
(which is what makes the 2,000 and 10,000 rows comparable).
"""

from __future__ import annotations

import base64
import functools
import html
import math
import random
import statistics
import textwrap
from dataclasses import dataclass

from futurnal.demo.sample_mailbox import generate_mailbox

__all__ = ["BenchMessage", "MailboxStats", "build_mailbox", "stats"]

_DROP_HEADERS = (b"content-type:", b"content-transfer-encoding:", b"mime-version:")
_BIG_EVERY = 200  # every 200th message carries a MB-sized attachment: exactly 0.5 %
_BIG_OFFSET = 137
_KB = 1024

_EN = [
    "I went through the latest draft this morning and left comments in the margin.",
    "Most of them are small wording changes, but the retention section needs another pass.",
    "Could you take a look at the timeline before Thursday?",
    "I think we underestimated the testing phase by at least {n} days.",
    "The numbers from finance came in yesterday and we are about {n}% under budget.",
    "That gives us some room for the extra contractor we discussed last week.",
    "Let me know if the proposed slot works for you.",
    "Otherwise I am free most afternoons next week, except Wednesday.",
    "Attached is the summary from the customer call on the {n}th.",
    "The main concern was the export format; they would like CSV in addition to PDF.",
    "No rush on this one, but an answer by the end of the month would help.",
    "We can then plan the rollout to the remaining {n} teams.",
    "The migration window moved to Saturday night because of the release freeze.",
    "Support tickets dropped by {n} percent after the last fix went out.",
    "Please double-check the figures in table {n} before we share the deck.",
    "I have cc'd the people from operations so they can weigh in.",
    "The vendor confirmed delivery for the week of the {n}th.",
    "If nobody objects I will merge the changes tomorrow morning.",
    "Here is the link to the recording, the interesting part starts at minute {n}.",
    "Thanks again for stepping in at such short notice.",
]
_DE = [
    "Vielen Dank für die schnelle Rückmeldung zu unserem Gespräch.",
    "Ich habe die Änderungen übernommen und die Fassung im Ordner abgelegt.",
    "Können wir den Termin auf Donnerstag um {n} Uhr verschieben?",
    "Am Mittwoch bin ich leider den ganzen Tag beim Kunden in Köln.",
    "Die Rechnung ist eingegangen, allerdings fehlt noch die Bestellnummer.",
    "Könnten Sie uns diese bitte bis zum {n}. nachreichen?",
    "Die Präsentation für die Geschäftsführung ist fast fertig.",
    "Es fehlen nur noch die Zahlen für das dritte Quartal und ein paar Grafiken.",
    "Bitte prüfen Sie die Übersicht auf Seite {n}, dort stimmt eine Summe nicht.",
    "Grüße aus München und bis nächste Woche.",
]
_ATTACHMENT_KINDS = [
    ("application/pdf", "Report {i}.pdf", b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n"),
    ("image/jpeg", "IMG_{i}.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "draft-{i}.docx",
     b"PK\x03\x04\x14\x00\x06\x00"),
    ("application/zip", "export-{i}.zip", b"PK\x03\x04\x14\x00\x00\x00"),
    ("text/csv", "figures-{i}.csv", b""),
]


@dataclass(frozen=True)
class BenchMessage:
    """One message to deliver to INBOX with maildir ``flags``; ``malformed`` ones are on purpose."""

    raw: bytes
    flags: str
    malformed: bool = False


@dataclass(frozen=True)
class MailboxStats:
    """Size profile of a generated mailbox, printed so readers know what was measured."""

    count: int
    total_bytes: int
    mean_bytes: float
    median_bytes: float
    p90_bytes: float
    max_bytes: int
    with_attachments: int
    mb_sized: int
    html: int
    malformed: int


class _Text:
    """Pools of pre-wrapped paragraphs, so building 10,000 bodies of 20 KB stays fast."""

    def __init__(self, rng: random.Random) -> None:
        self.pools = {lang: [self._paragraph(rng, sentences) for _ in range(300)]
                      for lang, sentences in (("en", _EN), ("de", _DE))}

    @staticmethod
    def _paragraph(rng: random.Random, sentences: list[str]) -> str:
        chosen = [rng.choice(sentences).format(n=rng.randint(2, 31)) for _ in range(rng.randint(3, 8))]
        return textwrap.fill(" ".join(chosen), 76).replace("\n", "\r\n")

    def body(self, rng: random.Random, lang: str, target: int) -> list[str]:
        pool = self.pools[lang]
        paragraphs = ["Hallo Alice," if lang == "de" else "Hi Alice,"]
        size = 0
        while size < target:
            paragraph = rng.choice(pool)
            paragraphs.append(paragraph)
            size += len(paragraph.encode()) + 4
        paragraphs.append("Viele Grüße" if lang == "de" else "Best,")
        return paragraphs


def build_mailbox(count: int = 10_000, seed: int = 11) -> list[BenchMessage]:
    """``count`` messages, oldest first; identical bytes for identical arguments.

    Args:
        count: Number of messages (at least 3: the sample generator's malformed ones).
        seed: Seed for the sample headers and for the bodies.
    """
    samples = generate_mailbox(count, seed=seed)
    rng = random.Random(seed * 7919 + 1)
    text = _Text(rng)
    noise = rng.randbytes(4 * 1024 * 1024)  # attachment payloads are slices of this
    messages = []
    for index, sample in enumerate(samples):
        if sample.malformed:  # keep them byte for byte: the parser must cope with them
            messages.append(BenchMessage(sample.raw, sample.flags, malformed=True))
            continue
        head = _headers_without_mime(sample.raw)
        body = _body(rng, text, noise, index)
        messages.append(BenchMessage(head + b"MIME-Version: 1.0\r\n" + body, sample.flags))
    return messages


def _headers_without_mime(raw: bytes) -> bytes:
    """The sample's header block minus its MIME headers (ours replace them), CRLF-terminated."""
    block = raw.split(b"\r\n\r\n", 1)[0]
    kept: list[bytes] = []
    dropping = False
    for line in block.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):  # a folded continuation belongs to the previous header
            if not dropping:
                kept.append(line)
            continue
        dropping = line.lower().startswith(_DROP_HEADERS)
        if not dropping:
            kept.append(line)
    return b"\r\n".join(kept) + b"\r\n"


def _body(rng: random.Random, text: _Text, noise: bytes, index: int) -> bytes:
    """Content-Type header onwards: the MIME structure and payload of one message."""
    lang = "de" if rng.random() < 0.25 else "en"
    target = int(rng.triangular(2 * _KB, 60 * _KB, 6 * _KB))
    alternative = rng.random() < 0.35
    attachments: list[tuple[str, str, bytes]] = []
    if index % _BIG_EVERY == _BIG_OFFSET:
        attachments.append(_attachment(rng, noise, index, rng.randint(1024 * _KB, 3 * 1024 * _KB), binary=True))
    elif rng.random() < 0.08:
        for number in range(rng.choice((1, 1, 1, 2))):
            size = int(math.exp(rng.uniform(math.log(10 * _KB), math.log(250 * _KB))))
            attachments.append(_attachment(rng, noise, index * 10 + number, size, binary=rng.random() < 0.85))

    paragraphs = text.body(rng, lang, int(target * 0.45) if alternative else target)
    cte = "8bit" if lang == "de" else "7bit"
    plain = (f'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n'
             + "\r\n\r\n".join(paragraphs) + "\r\n").encode()
    if alternative:
        rich = "".join(f"<p>{html.escape(p).replace(chr(13) + chr(10), '<br>' + chr(13) + chr(10))}</p>\r\n"
                       for p in paragraphs)
        page = ('<html><head><meta charset="utf-8"><style>body{font-family:Arial,sans-serif;'
                'font-size:14px;color:#222}p{margin:0 0 12px}</style></head>\r\n<body>\r\n'
                f'{rich}</body></html>\r\n')
        html_part = (f'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n'
                     + page).encode()
        text_part = _multipart("alternative", f"=_alt_{index}", [plain, html_part])
    else:
        text_part = plain
    if not attachments:
        return text_part
    parts = [text_part]
    for content_type, filename, payload in attachments:
        parts.append(
            (f'Content-Type: {content_type}; name="{filename}"\r\n'
             f'Content-Disposition: attachment; filename="{filename}"\r\n'
             "Content-Transfer-Encoding: base64\r\n\r\n").encode()
            + _base64_lines(payload)
        )
    return _multipart("mixed", f"=_mixed_{index}", parts)


def _attachment(rng: random.Random, noise: bytes, number: int, size: int, *, binary: bool) -> tuple[str, str, bytes]:
    """(content type, file name, payload) of ``size`` bytes; binary ones are slices of ``noise``."""
    if not binary:
        rows = rng.choices(_csv_rows(), k=max(size // 26, 1))
        return "text/csv", f"figures-{number}.csv", ("date,team,amount\r\n" + "".join(rows)).encode()
    content_type, name, magic = rng.choice(_ATTACHMENT_KINDS[:-1])
    size = min(size, len(noise))
    start = rng.randrange(0, len(noise) - size + 1)
    return content_type, name.format(i=number), magic + noise[start:start + size - len(magic)]


@functools.cache
def _csv_rows() -> list[str]:
    """A fixed pool of CSV lines; drawing from it is much faster than formatting each row."""
    rng = random.Random(4242)
    return [f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},team-{rng.randint(1, 40)},"
            f"{rng.randint(10, 99999)}\r\n" for _ in range(5000)]


def _base64_lines(payload: bytes) -> bytes:
    """Base64 in 76-character CRLF lines (MIME), a few times faster than ``base64.encodebytes``."""
    encoded = base64.b64encode(payload)
    return b"\r\n".join([encoded[i:i + 76] for i in range(0, len(encoded), 76)]) + b"\r\n"


def _multipart(subtype: str, boundary: str, parts: list[bytes]) -> bytes:
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()
    sep = f"--{boundary}\r\n".encode()
    return head + b"".join(sep + part + b"\r\n" for part in parts) + f"--{boundary}--\r\n".encode()


def stats(messages: list[BenchMessage]) -> MailboxStats:
    """Summarise sizes and shapes (cheap byte searches; no MIME parsing)."""
    sizes = sorted(len(m.raw) for m in messages)
    return MailboxStats(
        count=len(sizes),
        total_bytes=sum(sizes),
        mean_bytes=statistics.fmean(sizes) if sizes else 0.0,
        median_bytes=statistics.median(sizes) if sizes else 0.0,
        p90_bytes=sizes[int(len(sizes) * 0.9)] if sizes else 0.0,
        max_bytes=sizes[-1] if sizes else 0,
        with_attachments=sum(1 for m in messages if b"Content-Disposition: attachment" in m.raw),
        mb_sized=sum(1 for s in sizes if s >= 1024 * 1024),
        html=sum(1 for m in messages if b"Content-Type: text/html" in m.raw),
        malformed=sum(1 for m in messages if m.malformed),
    )
