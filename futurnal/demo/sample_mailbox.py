"""A deterministic, realistic sample mailbox for tests and the ``demo`` command.

Real mailboxes are messy: encoded non-ASCII names and subjects, HTML alternatives, attachments
with odd file names, long reply threads that span folders, and the occasional broken message.
The ingestion pipeline must cope with all of that, so this generator produces it -- byte for byte
the same for a given seed, so tests and demos are reproducible.
"""

from __future__ import annotations

import functools
import html
import random
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from .attachment_files import pdf_bytes

BASE_DATE = datetime(2025, 6, 30, 17, 0, tzinfo=UTC)  # fixed "now": output is stable
MESSAGE_ID_DOMAIN = "mail.futurnal.test"
MALFORMED_COUNT = 3
OWNER = Address("Alice Newman", addr_spec="alice@futurnal.test")


@dataclass(frozen=True)
class SampleMessage:
    """One message to deliver.

    Attributes:
        raw: The full RFC 5322 message with CRLF line endings.
        folder: ``"INBOX"`` or ``"Archive"``.
        flags: Maildir flag letters, e.g. ``"S"`` (seen) or ``"RS"`` (answered and seen).
        malformed: True for the deliberately broken messages.
    """

    raw: bytes
    folder: str
    flags: str
    malformed: bool


@dataclass(frozen=True)
class _Person:
    name: str
    email: str
    lang: str
    utc_offset: int  # hours; makes Date headers carry realistic zones

    @property
    def address(self) -> Address:
        return Address(self.name, addr_spec=self.email)


_PEOPLE = [
    _Person("Bob Carter", "bob.carter@example.com", "en", -5),
    _Person("Carol Jones", "carol@example.org", "en", 0),
    _Person("Dan O'Brien", "dan.obrien@example.net", "en", 1),
    _Person("Priya Raman", "priya.raman@example.com", "en", 5),
    _Person("Marcus Lee", "marcus@lee-consulting.test", "en", -8),
    _Person("Zoë Chen 🌱", "zoe@greenhouse.test", "emoji", -7),
    _Person("Jürgen Weiß", "juergen.weiss@beispiel.test", "de", 1),
    _Person("Ännchen Müller", "a.mueller@beispiel.test", "de", 1),
    _Person("Élodie Dubois", "elodie.dubois@exemple.test", "fr", 1),
    _Person("François Lefèvre", "f.lefevre@exemple.test", "fr", 1),
    _Person("山田 太郎", "taro.yamada@rei.test", "ja", 9),
    _Person("Linnea Åberg", "linnea@exempel.test", "en", 1),
]
_NEWSLETTERS = [
    _Person("Acme Cloud Status", "status@acme-cloud.test", "en", 0),
    _Person("The Weekly Byte", "digest@weeklybyte.test", "en", -5),
]

_SUBJECTS = {
    "en": ["Q3 planning: draft agenda", "Lunch on Friday?", "Notes from the design review",
           "Contract renewal - next steps", "Re-scheduling our 1:1", "Budget numbers for review",
           "Quick question about the migration", "Onboarding plan for the new hire",
           "Feedback on the proposal", "Travel arrangements for the conference"],
    "emoji": ["🚀 Launch checklist", "🎉 Team offsite photos", "☕ Coffee chat next week?"],
    "de": ["Besprechung am Donnerstag – Änderungen", "Rückfrage zur Rechnung",
           "Urlaubsplanung für Oktober", "Grüße aus München und ein paar Fragen"],
    "fr": ["Réunion d'équipe : ordre du jour", "Compte rendu de la réunion de lundi",
           "Question à propos du budget", "Préparation du séminaire à Lyon"],
    "ja": ["来週の打ち合わせについて", "資料送付のご連絡", "ご確認のお願い（見積書）"],
}
_GREETING = {"en": "Hi {0},", "emoji": "Hey {0}!", "de": "Hallo {0},", "fr": "Bonjour {0},",
             "ja": "{0}さん"}
_CLOSING = {"en": "Best,", "emoji": "Cheers,", "de": "Viele Grüße", "fr": "Cordialement,",
            "ja": "よろしくお願いいたします。"}
_PARAGRAPHS = {
    "en": ["I went through the latest draft this morning and left a few comments in the margin. "
           "Most of them are small wording changes, but the section on data retention needs "
           "another pass before we send it to legal.",
           "Could you take a look at the timeline before Thursday? I think we underestimated the "
           "testing phase by at least a week, especially with the holidays coming up.",
           "The numbers from finance came in yesterday. We are about {n}% under budget for the "
           "quarter, which gives us some room for the extra contractor we discussed.",
           "Let me know if the proposed slot works for you. Otherwise I am free most afternoons "
           "next week, except Wednesday when I am travelling.",
           "Attached is the summary from the customer call. The main concern was the export "
           "format; they would like CSV in addition to the PDF report.",
           "No rush on this one, but it would be good to have an answer by the end of the month "
           "so we can plan the rollout to the remaining {n} teams."],
    "de": ["vielen Dank für die schnelle Rückmeldung. Ich habe die Änderungen übernommen und "
           "die überarbeitete Fassung im gemeinsamen Ordner abgelegt.",
           "Können wir den Termin auf Donnerstag um {n} Uhr verschieben? Am Mittwoch bin ich "
           "leider den ganzen Tag beim Kunden in Köln.",
           "Die Rechnung ist bei uns eingegangen, allerdings fehlt noch die Bestellnummer. "
           "Könnten Sie uns diese bitte nachreichen?"],
    "fr": ["merci pour ton message. J'ai relu le document et je pense que nous sommes "
           "presque prêts ; il reste seulement la partie sur les coûts à préciser.",
           "Est-ce que tu serais disponible jeudi à {n} h pour en discuter ? Sinon, vendredi "
           "matin me conviendrait également.",
           "Je t'envoie le compte rendu de la réunion. N'hésite pas à me signaler les erreurs "
           "ou les oublis avant que je le diffuse à toute l'équipe."],
    "ja": ["いつもお世話になっております。先日の打ち合わせの件で、資料を共有いたします。",
           "ご都合のよろしい日時を{n}日までにお知らせいただけますと幸いです。",
           "内容をご確認のうえ、ご不明な点がございましたらお気軽にご連絡ください。"],
}
_PARAGRAPHS["emoji"] = _PARAGRAPHS["en"]
_NEWSLETTER_PARAGRAPHS = [
    "This week: scheduled maintenance in the eu-west region on Saturday between 02:00 and "
    "04:00 UTC. Existing connections may be dropped once; no action is needed.",
    "Highlights: a faster search index, {n} bug fixes in the sync engine, and a new export "
    "option for shared folders. Read the full changelog on our website.",
    "Community corner: thank you to everyone who joined the meetup last month. Recordings of "
    "all {n} talks are now online.",
    "You are receiving this message because you subscribed to updates. To stop receiving "
    "them, use the unsubscribe link in the footer of this message.",
]

_PNG = bytes.fromhex(  # a valid 1x1 transparent PNG
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")
_PDF = pdf_bytes("Invoice 1042\nConsulting, Q3 2025: 4,200.00 EUR\nDue within 30 days")
_ATTACHMENTS: list[tuple[str, str, str, bytes | str]] = [
    ("text", "plain", "meeting-notes.txt", "Action items\n- send agenda\n- book room\n"),
    ("text", "csv", "budget-2025.csv", "team,quarter,amount\nplatform,Q3,12000\nsales,Q3,8000\n"),
    ("text", "csv", "Übersicht Q3 – Zahlen.csv", "Monat;Umsatz\nJuli;10.200\nAugust;9.870\n"),
    ("application", "pdf", "invoice-1042.pdf", _PDF),
    ("application", "pdf", "請求書_2025.pdf", _PDF),
    ("image", "png", "screenshot.png", _PNG),
]


@dataclass
class _Draft:
    """A planned well-formed message, before it is rendered to bytes."""

    sender: _Person
    date: datetime
    subject: str
    folder: str
    lang: str
    kind: str = "plain"  # plain | html | attachment | newsletter
    parent: _Draft | None = None
    message_id: str = ""
    body: str = ""
    references: list[str] = field(default_factory=list)


def generate_mailbox(count: int = 300, seed: int = 7) -> list[SampleMessage]:
    """Generate ``count`` messages in chronological order, exactly 3 of them malformed.

    Args:
        count: Number of messages; at least 3 (the malformed ones).
        seed: Seed for the private random generator; equal seeds give identical bytes.

    Returns:
        The messages, oldest first, so delivering them in order gives ascending UIDs by date.
    """
    if count < MALFORMED_COUNT:
        raise ValueError(f"count must be at least {MALFORMED_COUNT} (the malformed messages)")
    rng = random.Random(seed)
    drafts = _plan(rng, count - MALFORMED_COUNT)
    drafts.sort(key=lambda d: d.date)
    messages: list[tuple[datetime, SampleMessage]] = []
    for index, draft in enumerate(drafts):
        draft.message_id = f"<{draft.date:%Y%m%d%H%M%S}.{index:05d}.{rng.getrandbits(32):08x}" \
                           f"@{MESSAGE_ID_DOMAIN}>"
        raw = _render(draft, rng, seed, index)
        messages.append((draft.date, SampleMessage(raw, draft.folder, _flags(draft, rng), False)))
    for index, build in enumerate((_broken_headers, _unterminated_multipart, _bad_charset)):
        date = BASE_DATE - timedelta(days=rng.uniform(1, 360))
        msg_id = f"<broken.{index}.{seed}@{MESSAGE_ID_DOMAIN}>"
        messages.append((date, SampleMessage(build(date, msg_id), "INBOX", "", True)))
    messages.sort(key=lambda item: item[0])
    return [message for _, message in messages]


def _plan(rng: random.Random, count: int) -> list[_Draft]:
    """Decide who writes what, when and where: about 40% of messages belong to threads."""
    drafts: list[_Draft] = []
    while len(drafts) < count:
        remaining = count - len(drafts)
        sender = rng.choice(_PEOPLE)
        start = BASE_DATE - timedelta(days=rng.uniform(0, 365), minutes=rng.randint(0, 600))
        if remaining >= 3 and rng.random() < 0.15:
            start = min(start, BASE_DATE - timedelta(days=7))  # replies span up to ~6 days
            drafts.extend(_thread(rng, sender, start, min(rng.randint(3, 6), remaining)))
            continue
        if rng.random() < 0.08:
            sender, kind = rng.choice(_NEWSLETTERS), "newsletter"
        else:
            kind = rng.choices(["plain", "html", "attachment"], weights=[65, 20, 15])[0]
        lang = sender.lang
        subject = f"{sender.name}: issue #{rng.randint(10, 99)}" if kind == "newsletter" \
            else rng.choice(_SUBJECTS[lang])
        folder = "Archive" if rng.random() < 0.15 and start < BASE_DATE - timedelta(days=30) \
            else "INBOX"
        drafts.append(_Draft(sender, start, subject, folder, lang, kind))
    return drafts


def _thread(rng: random.Random, first: _Person, start: datetime, size: int) -> list[_Draft]:
    """A conversation; a third of threads start in Archive and continue in INBOX."""
    others = [p for p in _PEOPLE if p.lang == first.lang and p != first] or \
        [p for p in _PEOPLE if p != first]
    participants = [first, rng.choice(others)]
    split = rng.randint(1, size - 1) if rng.random() < 0.33 else 0
    subject, date, parent = rng.choice(_SUBJECTS[first.lang]), start, None
    thread: list[_Draft] = []
    for position in range(size):
        kind = "attachment" if position == 0 and rng.random() < 0.3 else "plain"
        draft = _Draft(participants[position % 2], date, subject if parent is None else
                       f"Re: {subject}", "Archive" if position < split else "INBOX",
                       first.lang, kind, parent)
        thread.append(draft)
        parent, date = draft, date + timedelta(hours=rng.uniform(0.2, 30))
    return thread


def _flags(draft: _Draft, rng: random.Random) -> str:
    """Old mail is read (some answered or flagged); recent mail is often still unread."""
    if draft.date > BASE_DATE - timedelta(days=14) and draft.folder == "INBOX" \
            and rng.random() < 0.6:
        return ""
    return rng.choices(["S", "RS", "FS"], weights=[80, 15, 5])[0]


def _render(draft: _Draft, rng: random.Random, seed: int, index: int) -> bytes:
    """Build the message with EmailMessage so that headers and MIME are well-formed."""
    tz = timezone(timedelta(hours=draft.sender.utc_offset))
    recipients = [OWNER] + ([p.address for p in rng.sample(_PEOPLE, 2) if p != draft.sender]
                            if rng.random() < 0.3 else [])
    headers = [_header("From", str(draft.sender.address)),
               _header("To", ", ".join(str(r) for r in recipients))]
    if rng.random() < 0.2:
        headers.append(_header("Cc", str(rng.choice([p for p in _PEOPLE if p != draft.sender])
                                         .address)))
    headers.append(_header("Subject", draft.subject))
    # Date, Message-ID and references are unique per message and plain ASCII: writing them
    # directly (instead of through the header registry) keeps generation fast.
    plain = [("Date", format_datetime(draft.date.astimezone(tz))), ("Message-ID", draft.message_id)]
    if draft.parent is not None:
        draft.references = draft.parent.references + [draft.parent.message_id]
        plain += [("In-Reply-To", draft.parent.message_id),
                  ("References", "\r\n ".join(draft.references))]
    if draft.kind == "newsletter":
        user, domain = draft.sender.email.split("@")
        plain += [("List-Id", f"<{user}.list.{MESSAGE_ID_DOMAIN}>"),
                  ("List-Unsubscribe", f"<mailto:unsubscribe@{domain}>")]
    headers += [f"{name}: {value}\r\n".encode("ascii") for name, value in plain]

    msg = EmailMessage(policy=policy.SMTP)
    draft.body = _body(draft, rng)
    cte = "7bit" if draft.body.isascii() else rng.choice(["8bit", "quoted-printable", "base64"])
    msg.set_content(draft.body, cte=cte)
    if draft.kind in ("html", "newsletter"):
        paragraphs = "".join(f"<p>{html.escape(p)}</p>\n" for p in draft.body.split("\n\n"))
        msg.add_alternative(f"<html><body>\n{paragraphs}</body></html>\n", subtype="html")
    if draft.kind == "attachment":
        for maintype, subtype, filename, data in rng.sample(_ATTACHMENTS, rng.randint(1, 2)):
            if isinstance(data, str):
                msg.add_attachment(data, subtype=subtype, filename=filename)
            else:
                msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    for number, part in enumerate(msg.walk()):
        if part.is_multipart():  # the default boundary is random
            part.set_boundary(f"=_futurnal_{seed}_{index}_{number}")
        if number:  # EmailMessage leaves a stray MIME-Version in sub-parts
            del part["MIME-Version"]
    return b"".join(headers) + msg.as_bytes(policy=policy.SMTP)


@functools.cache
def _header(name: str, value: str) -> bytes:
    """Fold and RFC 2047-encode a header once; names and subjects repeat a lot."""
    return policy.SMTP.header_factory(name, value).fold(policy=policy.SMTP).encode("ascii")


def _body(draft: _Draft, rng: random.Random) -> str:
    """Greeting, 2-4 wrapped paragraphs, sign-off, and the quoted parent for replies."""
    lang, width = draft.lang, 36 if draft.lang == "ja" else 72
    owner_first = "アリス" if lang == "ja" else OWNER.display_name.split()[0]
    if draft.kind == "newsletter":
        chosen, paragraphs = _NEWSLETTER_PARAGRAPHS, [draft.sender.name]
    else:
        chosen = rng.sample(_PARAGRAPHS[lang], min(len(_PARAGRAPHS[lang]), rng.randint(2, 4)))
        paragraphs = [_GREETING[lang].format(owner_first)]
    paragraphs += [textwrap.fill(p.format(n=rng.randint(2, 19)), width) for p in chosen]
    if draft.kind != "newsletter":
        paragraphs.append(f"{_CLOSING[lang]}\n{draft.sender.name.split()[0]}")
    body = "\n\n".join(paragraphs) + "\n"
    if draft.parent is not None:
        quoted = "".join(f"> {line}\n" if line else ">\n"
                         for line in draft.parent.body.splitlines())
        header = f"On {format_datetime(draft.parent.date)}, {draft.parent.sender.name} wrote:"
        body += f"\n{header}\n{quoted}"
    return body


def _broken_headers(date: datetime, message_id: str) -> bytes:
    """A header line without a colon and raw non-UTF-8 bytes in a header."""
    return (b"From: \"Legacy Mailer\" <legacy@old-system.test>\r\n"
            b"To: alice@futurnal.test\r\n"
            b"Subject: Monthly report \xe4\xf6\xfc (raw latin-1)\r\n"
            b"This header line has no colon at all\r\n"
            b"X-Garbage: \xff\xfe\x81\x9d binary junk\r\n"
            + f"Date: {format_datetime(date)}\r\nMessage-ID: {message_id}\r\n".encode()
            + b"\r\nThe report is attached below.\r\n")


def _unterminated_multipart(date: datetime, message_id: str) -> bytes:
    """A multipart/mixed whose closing boundary is missing (truncated in transit)."""
    return (b"From: Truncated Sender <truncated@example.net>\r\n"
            b"To: alice@futurnal.test\r\nSubject: Files you asked for\r\n"
            + f"Date: {format_datetime(date)}\r\nMessage-ID: {message_id}\r\n".encode()
            + b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"never-closed\"\r\n\r\n"
            b"--never-closed\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            b"Here are the files.\r\n\r\n--never-closed\r\n"
            b"Content-Type: application/octet-stream; name=\"data.bin\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQ==\r\n")


def _bad_charset(date: datetime, message_id: str) -> bytes:
    """An unknown charset declaration with an 8-bit (latin-1) body."""
    return (b"From: Old Client <oldclient@example.org>\r\n"
            b"To: alice@futurnal.test\r\nSubject: Preisliste\r\n"
            + f"Date: {format_datetime(date)}\r\nMessage-ID: {message_id}\r\n".encode()
            + b"MIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=\"x-no-such-charset-42\"\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n"
            b"Gr\xfc\xdfe aus D\xfcsseldorf, die Preise \xe4ndern sich ab M\xe4rz.\r\n")
