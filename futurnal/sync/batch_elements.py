"""One fetched batch becomes elements: the step between the parser and the sink.

A folder sync sequences the steps (plan, fetch, parse, build, hand to the sink, commit); this
module does the building, and only that. Its input is what the fetch brought (messages, and those
the server did not deliver whole) with their parses under way; its output is a plain result: the
elements to write, the attachment work to queue, and the UIDs set aside. It never writes to the
sink and never moves a watermark, so what it decides can be read, and tested, on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from loguru import logger

from futurnal.attachments.plan import AttachmentWork, plan_attachments
from futurnal.attachments.settings import AttachmentSettings
from futurnal.element.build import build_element
from futurnal.imap.fetched import FetchedMessage
from futurnal.imap.uidset import UidSet
from futurnal.parse.parse_pool import ParseBatch, ParseFailure, ParseOutcome, ParsePool
from futurnal.parse.parser import parse_message
from futurnal.process import stage_cpu
from futurnal.storage.element_store import ElementKey
from futurnal.storage.gmail_index import GmailMessageIndex

from .message_key import MessageKey

__all__ = [
    "BatchElements", "BuiltBatch", "FetchedBatch", "ParsingBatch", "SetAside", "Undelivered",
    "parse_here", "placeholder", "start_parsing",
]

#: Why a message the supervisor named poison is quarantined instead of parsed.
POISONED = "crashed the fetcher repeatedly"


@dataclass(frozen=True, slots=True)
class Undelivered:
    """A message the server did not deliver whole; ``message.raw`` is what came (headers, or nothing)."""

    message: FetchedMessage
    reason: str


@dataclass(slots=True)
class FetchedBatch:
    """What fetching one planned batch brought: messages, and those set aside with a reason."""

    messages: list[FetchedMessage]
    undelivered: list[Undelivered]
    #: Set by :meth:`BatchElements.build`, which lets the messages' bytes go: a second build would
    #: parse empty bytes into empty elements, so it is refused instead.
    built: bool = False

    @property
    def uids(self) -> list[int]:
        """Every UID the batch accounts for: once committed, none of them is fetched again."""
        return [m.uid for m in self.messages] + [u.message.uid for u in self.undelivered]


@dataclass(frozen=True, slots=True)
class ParsingBatch:
    """A fetched batch on its way through the parser; ``parses`` is None when parsed in-process.

    Poisoned messages are never handed to the parser, so ``parses`` yields one outcome per
    message that is not poisoned, in order.
    """

    fetched: FetchedBatch
    poisoned: UidSet
    parses: ParseBatch | None


@dataclass(frozen=True, slots=True)
class SetAside:
    """A message to quarantine instead of storing; ``complete`` is False when the body never came."""

    key: MessageKey
    message: FetchedMessage
    reason: str
    complete: bool = True


@dataclass(slots=True)
class BuiltBatch:
    """What one batch became: elements for the sink, work for the attachment processor, and the
    UIDs set aside. A Gmail copy already stored under another folder is in none of the three."""

    elements: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[AttachmentWork] = field(default_factory=list)
    quarantined: list[int] = field(default_factory=list)


def placeholder(uid: int, size: int = 0) -> FetchedMessage:
    """Stands for a message of which nothing arrived, so it can be quarantined by its UID."""
    return FetchedMessage(uid=uid, raw=b"", flags=(), internal_date=None, size=size)


def start_parsing(batch: FetchedBatch, poisoned: UidSet, pool: ParsePool | None) -> ParsingBatch:
    """Hand a batch to the parse pool (when there is one) and return at once, so the next batch
    can be read from IMAP while this one is parsed in the pool's processes."""
    wanted = [m.raw for m in batch.messages if m.uid not in poisoned]
    parses = pool.submit(wanted) if pool is not None and wanted else None
    return ParsingBatch(batch, poisoned, parses)


def parse_here(message: FetchedMessage) -> ParseOutcome:
    """Parse in this process: without a pool, or when the pool could not go on."""
    try:
        return parse_message(message.raw)
    except Exception as exc:  # a parser bug must not stop the folder: set the message aside
        return ParseFailure(f"parse failed: {exc.__class__.__name__}")


class BatchElements:
    """Turns parsed batches of one mailbox into elements, attachment work and quarantine entries.

    Quarantine entries go to ``set_aside`` as they are met, before the batch's elements reach the
    sink: a UID the watermark passes is then always either stored or quarantined. ``in_flight``
    names the message being worked on, so a crash right now can be blamed on it (poison counting).
    """

    def __init__(
        self,
        *,
        mailbox: str,
        scopes: tuple[str, ...],
        set_aside: Callable[[SetAside], None],
        attachments: AttachmentSettings | None = None,
        gmail_index: GmailMessageIndex | None = None,
        fault_hook: Callable[[bytes], None] | None = None,
    ) -> None:
        self.mailbox = mailbox
        self._scopes = scopes
        self._set_aside = set_aside
        self._attachments = attachments
        self._gmail_index = gmail_index
        self._fault_hook = fault_hook
        self.in_flight: MessageKey | None = None
        self._log = logger.bind(mailbox=mailbox)

    def build(self, batch: ParsingBatch, folder: str, uidvalidity: int) -> BuiltBatch:
        """Every message of ``batch`` ends as an element, a quarantine entry, or a known Gmail copy.

        Each message's bytes are let go once it is built (``raw`` becomes empty in ``batch``; its
        UID, flags and size stay): a batch is built once, and a second build raises RuntimeError.
        """
        if batch.fetched.built:
            raise RuntimeError("this batch was built already: its messages' bytes are gone")
        batch.fetched.built = True
        built = BuiltBatch()
        outcomes = iter(batch.parses.outcomes()) if batch.parses is not None else None
        for undelivered in batch.fetched.undelivered:
            key = MessageKey(folder, uidvalidity, undelivered.message.uid)
            self._quarantine(built, SetAside(key, undelivered.message, undelivered.reason, complete=False))
        messages = batch.fetched.messages
        for index, message in enumerate(messages):
            key = MessageKey(folder, uidvalidity, message.uid)
            if message.uid in batch.poisoned:
                self._quarantine(built, SetAside(key, message, POISONED))
            else:
                self._one(built, key, message, outcomes)
            # Its bytes are done with (built, or quarantined with them): let them go now rather
            # than with the whole batch, so a batch's bytes and its elements are not both held
            # whole beside the next batch (two syncs at once: about 10 MB more at the peak).
            messages[index] = replace(message, raw=b"")
        self.in_flight = None
        return built

    def _one(
        self, built: BuiltBatch, key: MessageKey, message: FetchedMessage, outcomes: Iterator[ParseOutcome] | None
    ) -> None:
        """One message that was parsed (or is parsed now): an element, unless it is set aside."""
        self.in_flight = key
        if self._fault_hook is not None:
            self._fault_hook(message.raw)
        outcome = next(outcomes) if outcomes is not None else parse_here(message)
        if isinstance(outcome, ParseFailure):
            # The class name only: a parser traceback can quote header text (subjects, addresses).
            self._log.error("UID {uid} of folder {folder!r} could not be parsed ({reason}); quarantined",
                            uid=key.uid, folder=key.folder, reason=outcome.reason)
            self._quarantine(built, SetAside(key, message, outcome.reason))
            return
        if self._already_stored_elsewhere(key, message):
            return
        started = stage_cpu.clock()
        element = build_element(
            outcome, message, mailbox=self.mailbox, folder=key.folder, uidvalidity=key.uidvalidity,
            scopes=self._scopes,
        )
        if self._attachments is not None and outcome.attachments:
            planned = plan_attachments(element, outcome.attachments, self._attachments)
            if planned is not None:
                built.attachments.append(planned)
        built.elements.append(element)
        stage_cpu.add("element.build", started)

    def _quarantine(self, built: BuiltBatch, entry: SetAside) -> None:
        self._set_aside(entry)
        built.quarantined.append(entry.message.uid)

    def _already_stored_elsewhere(self, key: MessageKey, message: FetchedMessage) -> bool:
        """Gmail shows one message under every label: store it once, where it was first seen.

        The skipped copy still counts as known in its folder, so it is not fetched again.
        """
        if self._gmail_index is None or message.gmail is None:
            return False
        element_key = ElementKey(self.mailbox, *key)
        owner = self._gmail_index.owner(message.gmail.msgid)
        if owner is not None and owner != element_key:
            return True
        self._gmail_index.claim(message.gmail.msgid, element_key)
        return False
