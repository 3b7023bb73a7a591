from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from futurnal.storage.audit_log import AuditLog
from futurnal.storage.consent import ConsentRegistry, NoConsent


def test_a_fresh_log_verifies_and_entries_chain(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    first = log.append("mailbox-added", mailbox="alice")
    second = log.append("sync", mailbox="alice", folder="INBOX", fetched=3)
    assert second["prev"] == first["hash"]
    assert log.verify().ok and log.verify().entries == 2
    assert [e["event"] for e in log.entries()] == ["mailbox-added", "sync"]


def test_each_entry_stays_one_line_whatever_a_server_named_a_folder(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append("sync", mailbox="alice", folder="a\u2028b\u2029c\x85d")
    log.append("sync", mailbox="alice", folder="INBOX")
    assert len(log.path.read_text(encoding="utf-8").splitlines()) == 2
    assert [e["folder"] for e in log.entries()] == ["a\u2028b\u2029c\x85d", "INBOX"]
    assert log.verify().ok


@pytest.mark.parametrize("tamper", ["edit", "delete", "swap", "garbage"])
def test_any_tampering_breaks_the_chain(tmp_path: Path, tamper: str) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    for n in range(4):
        log.append("sync", mailbox="alice", fetched=n)
    lines = path.read_text().splitlines()
    if tamper == "edit":
        entry = json.loads(lines[1])
        entry["fetched"] = 999
        lines[1] = json.dumps(entry, sort_keys=True)
    elif tamper == "delete":
        del lines[2]
    elif tamper == "swap":
        lines[1], lines[2] = lines[2], lines[1]
    else:
        lines[3] = "{not json"
    path.write_text("\n".join(lines) + "\n")
    check = AuditLog(path).verify()
    assert not check.ok and "line" in (check.problem or "")


def test_addresses_never_reach_the_log(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append("mailbox-added", mailbox="alice", email="alice.smith@example.org", notes=["bob@example.net"])
    text = (tmp_path / "audit.jsonl").read_text()
    assert "example.org" not in text and "example.net" not in text and log.verify().ok


def test_two_processes_appending_at_once_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    code = (
        "import sys; from pathlib import Path; from futurnal.storage.audit_log import AuditLog\n"
        f"log = AuditLog(Path({str(path)!r}))\n"
        "for n in range(100): log.append('sync', writer=sys.argv[1], n=n)\n"
    )
    writers = [subprocess.Popen([sys.executable, "-c", code, name]) for name in ("a", "b")]
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    check = AuditLog(path).verify()
    assert check.ok and check.entries == 200


def test_consent_is_required_recorded_with_scopes_and_revocable(tmp_path: Path) -> None:
    registry = ConsentRegistry(tmp_path / "consent.json")
    with pytest.raises(NoConsent, match="no consent is recorded"):
        registry.require("alice")
    registry.grant("alice", "Alice", ("content", "metadata"))
    assert registry.require("alice").scopes == ("metadata", "content")
    assert registry.revoke("alice") and not registry.revoke("alice")
    with pytest.raises(NoConsent):
        registry.require("alice")


def test_expired_consent_no_longer_counts(tmp_path: Path) -> None:
    registry = ConsentRegistry(tmp_path / "consent.json")
    registry.grant("alice", "Alice", ("metadata",), expires_at="2026-01-01T00:00:00Z")
    assert registry.require("alice", now=datetime(2025, 12, 31, tzinfo=UTC))
    with pytest.raises(NoConsent, match="expired"):
        registry.require("alice", now=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=1))


def test_unknown_scopes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scopes"):
        ConsentRegistry(tmp_path / "consent.json").grant("alice", "Alice", ("everything",))
