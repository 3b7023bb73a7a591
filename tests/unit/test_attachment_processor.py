"""The attachment processor actor: extraction beside the fetcher, results to the sink, nothing lost."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pykka
import pytest

from futurnal.actors.attachment_processor import AttachmentProcessorActor
from futurnal.actors.messages import CountPendingAttachments, SubmitAttachments
from futurnal.actors.sink import SinkActor
from futurnal.attachments.plan import plan_attachments
from futurnal.attachments.settings import AttachmentSettings
from futurnal.demo.attachment_files import docx_bytes, pdf_bytes, spinning_pdf, zip_bomb_docx
from futurnal.element.build import build_element
from futurnal.imap.fetched import FetchedMessage
from futurnal.parse.parser import parse_message
from futurnal.storage.attachment_queue import AttachmentJobQueue
from futurnal.storage.data_dir import DataDir
from futurnal.storage.sqlite import open_element_store
from futurnal.supervisors.directory import ActorDirectory
from futurnal.supervisors.protocol import Ping

from ..element_schema import assert_valid_element
from .test_attachment_storage import _message


class World:
    def __init__(self, root: Path) -> None:
        self.data_dir = DataDir(root).ensure()
        self.store = open_element_store(self.data_dir)
        self.directory = ActorDirectory()
        self.directory.set("sink", SinkActor.start(sink=self.store))
        self.processor: pykka.ActorRef[Any] | None = None

    def start(self, **limits: Any) -> pykka.ActorRef[Any]:
        self.settings = AttachmentSettings(**limits)
        self.processor = AttachmentProcessorActor.start(
            settings=self.settings, data_dir=self.data_dir, directory=self.directory
        )
        return self.processor

    def submit(self, uid: int, *files: tuple[str, str, bytes]) -> dict[str, Any]:
        """Store an element with these attachments and hand them over, as a fetcher does."""
        raw = _message(*files)
        parsed = parse_message(raw)
        fetched = FetchedMessage(uid, raw, (), datetime(2026, 1, 1, tzinfo=UTC), len(raw))
        element = build_element(parsed, fetched, mailbox="alice", folder="INBOX", uidvalidity=1)
        work = plan_attachments(element, parsed.attachments, self.settings)
        self.store.upsert_many([element])
        assert self.processor is not None and work is not None
        self.processor.ask(SubmitAttachments((work,)), timeout=30)
        return element

    def statuses(self, uid: int) -> list[tuple[str, str | None]]:
        for element in self.store.iter_elements():
            if element["uid"] == uid:
                return [(a["status"], a["text"]) for a in element["attachments"]]
        raise KeyError(uid)

    def drained(self) -> bool:
        assert self.processor is not None
        return self.processor.ask(CountPendingAttachments(), timeout=30) == 0


def _wait_until(condition: Callable[[], bool], timeout: float = 120) -> None:
    done = threading.Event()
    deadline = threading.Timer(timeout, done.set)
    deadline.start()
    try:
        while not condition():
            if done.wait(0.05):
                raise AssertionError("condition not reached in time")
    finally:
        deadline.cancel()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path)
    yield world
    pykka.ActorRegistry.stop_all()


def test_each_attachment_ends_with_its_own_status_and_the_queue_empties(world: World) -> None:
    world.start(timeout_seconds=2, memory_mb=4096)
    world.submit(1, ("application/pdf", "report.pdf", pdf_bytes("Quarterly numbers")),
                 ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "n.docx",
                  docx_bytes("Meeting notes")),
                 ("application/pdf", "spin.pdf", spinning_pdf()),
                 ("application/octet-stream", "bomb.docx", zip_bomb_docx()),
                 ("image/png", "p.png", b"\x89PNG"))
    _wait_until(world.drained)
    assert world.statuses(1) == [("ok", "Quarterly numbers"), ("ok", "Meeting notes"), ("timeout", None),
                                 ("failed", None), ("unsupported", None)]
    assert list(AttachmentJobQueue(world.data_dir.attachment_queue_root).jobs()) == []
    (element,) = world.store.iter_elements()
    assert_valid_element(element)


def test_a_hanging_extraction_does_not_hold_up_the_others(world: World) -> None:
    world.start(timeout_seconds=600, memory_mb=4096, workers=2)
    world.submit(1, ("application/pdf", "spin.pdf", spinning_pdf()))
    for uid in (2, 3, 4):
        world.submit(uid, ("text/plain", f"{uid}.txt", f"file {uid}".encode()))
    _wait_until(lambda: all(world.statuses(uid) == [("ok", f"file {uid}")] for uid in (2, 3, 4)))
    assert world.statuses(1) == [("pending", None)]  # still being worked on, by the other worker


def test_jobs_pending_at_a_stop_run_at_the_next_start(world: World) -> None:
    processor = world.start(timeout_seconds=600, memory_mb=4096, workers=1)
    world.submit(1, ("application/pdf", "spin.pdf", spinning_pdf()))
    world.submit(2, ("text/plain", "later.txt", b"queued behind it"))
    processor.stop(timeout=30)  # kills the running child; both jobs stay on disk
    assert world.statuses(1) == [("pending", None)] and world.statuses(2) == [("pending", None)]
    assert len(list(AttachmentJobQueue(world.data_dir.attachment_queue_root).jobs())) == 2

    world.start(timeout_seconds=1, memory_mb=4096, workers=1)
    _wait_until(world.drained)
    assert world.statuses(1) == [("timeout", None)]
    assert world.statuses(2) == [("ok", "queued behind it")]
    assert list(AttachmentJobQueue(world.data_dir.attachment_queue_root).jobs()) == []


def test_a_refetched_element_gets_its_attachments_extracted_again(world: World) -> None:
    world.start()
    files = ("text/plain", "a.txt", b"alpha")
    world.submit(1, files)
    _wait_until(lambda: world.statuses(1) == [("ok", "alpha")])
    world.submit(1, files)  # a re-fetch after a crash stores the element afresh (pending)
    _wait_until(lambda: world.statuses(1) == [("ok", "alpha")] and world.drained())


def test_the_processor_is_supervised_and_its_replacement_finishes_the_queued_work(tmp_path: Path) -> None:
    from futurnal.config import ServiceSettings
    from futurnal.events import EventBus
    from futurnal.supervision_tree import TreeContext, attachment_processor_spec
    from futurnal.supervisors.restart_intensity import RestartIntensity
    from futurnal.supervisors.supervisor import Supervisor

    world = World(tmp_path)
    settings = ServiceSettings()
    context = TreeContext(settings=settings, data_dir=world.data_dir, credentials=None,  # type: ignore[arg-type]
                          directory=world.directory, events=EventBus(), stopping=threading.Event())
    root = Supervisor.start(child_id="root", specs=[attachment_processor_spec(context)], directory=world.directory,
                            intensity=RestartIntensity(5, 60))
    root.ask(Ping(), timeout=60)  # answered once its children are up
    try:
        first = world.directory.get("attachments")
        assert first is not None
        world.processor, world.settings = first, settings.attachments
        world.submit(1, ("text/plain", "a.txt", b"alpha"))
        first.tell(SubmitAttachments(("not work",)))  # type: ignore[arg-type]  # a handler that raises
        _wait_until(lambda: (ref := world.directory.get("attachments")) is not None and ref is not first)
        world.processor = world.directory.get("attachments")
        _wait_until(lambda: world.statuses(1) == [("ok", "alpha")] and world.drained())
    finally:
        root.stop(timeout=30)
        pykka.ActorRegistry.stop_all()
