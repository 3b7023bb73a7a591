"""Retrying a quarantined message: parsed under the sync's limits, and never rebuilt from a part;
the same from the files of one data directory and from the table of a shared PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from futurnal.process.faults import PARSER_HANG_ENV
from futurnal.storage.audit_log import AuditLog
from futurnal.storage.consent import ConsentRegistry
from futurnal.storage.quarantine import Quarantine, QuarantineStore
from futurnal.sync.quarantine_retry import retry_quarantined

RAW = b"From: a@example.org\r\nSubject: kept\r\nMessage-ID: <k@example.org>\r\n\r\nbody\r\n"


@pytest.fixture(params=["files", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Quarantine]:
    if request.param == "files":
        yield QuarantineStore(tmp_path / "quarantine")
        return
    pytest.importorskip("psycopg")
    from futurnal.storage.postgres.control import SharedControl

    with SharedControl(request.getfixturevalue("postgres_url")) as control:
        yield control.quarantine()


def retry(tmp_path: Path, store: Quarantine, **added: Any) -> tuple[list[Any], list[dict[str, Any]]]:
    store.add(mailbox="m", folder="INBOX", uidvalidity=1, uid=5, reason="parse failed", raw=RAW,
              now="2026-01-01T00:00:00Z", **added)
    consent = ConsentRegistry(tmp_path / "consent.json")
    consent.grant("m", "tester", ("metadata", "content", "attachments"))
    written: list[dict[str, Any]] = []
    outcomes = retry_quarantined(store.list(), store, consent, AuditLog(tmp_path / "audit.jsonl"),
                                 written.extend, lambda work: None, parse_timeout=1.0)
    return outcomes, written


def test_a_message_that_now_parses_becomes_an_element(tmp_path: Path, store: Quarantine) -> None:
    outcomes, written = retry(tmp_path, store)
    assert outcomes[0].ok and [e["subject"] for e in written] == ["kept"]
    assert store.list() == []


def test_a_message_that_hangs_the_parser_again_fails_within_the_parse_timeout(
    tmp_path: Path, store: Quarantine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PARSER_HANG_ENV, "body")
    outcomes, written = retry(tmp_path, store)
    assert not outcomes[0].ok and "parse took over 1 s" in (outcomes[0].error or "")
    assert written == []
    [kept] = store.list()
    assert kept.attempts == 2 and kept.reason.startswith("retry failed") and store.raw(kept.id) == RAW


def test_a_message_that_never_arrived_whole_is_not_rebuilt_from_its_headers(tmp_path: Path, store: Quarantine) -> None:
    outcomes, written = retry(tmp_path, store, complete=False)
    assert not outcomes[0].ok and "cannot be rebuilt" in (outcomes[0].error or "")
    assert written == []
