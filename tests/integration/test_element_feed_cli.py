"""The element store's change feed, consumers, follower, search and purge, through the real CLI
against a real Dovecot, the way a user (or a program reading the feed) would see them."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import time
from collections.abc import Callable
from email.header import Header
from pathlib import Path
from typing import Any

import pytest

from futurnal.demo.attachment_files import pdf_bytes
from futurnal.demo.dovecot import DovecotServer

from .cli import COMMAND, Cli, Result
from .running_process import RunningProcess, collect_lines
from .sync_harness import ServerClient

pytestmark = pytest.mark.integration


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def message(subject: str, body: str = "hello", *, msgid: str | None = None,
            date: str = "Mon, 2 Mar 2026 09:00:00 +0000", extra: str = "") -> bytes:
    """A plain, attachment-free message (UTF-8 body, a MIME-encoded subject where it needs one)."""
    msgid = msgid or subject.replace(" ", "-") + "@example.net"
    encoded_subject = Header(subject, "utf-8").encode() if not subject.isascii() else subject
    head = (f"From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: {encoded_subject}\r\n"
            f"Message-ID: <{msgid}>\r\nDate: {date}\r\n{extra}MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
    return head.encode() + body.encode("utf-8") + b"\r\n"


def with_pdf(subject: str, body: str, filename: str, *pages: str) -> bytes:
    attachment = base64.encodebytes(pdf_bytes(*pages))
    return (
        f"From: Carol <carol@example.net>\r\nTo: alice@example.org\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@example.net>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        f"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        f"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"{filename}\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + attachment + b"--b--\r\n"


def ok(result: Result) -> Result:
    assert result.code == 0, f"exit {result.code}\nstdout: {result.out}\nstderr: {result.err}"
    return result


def sync(cli: Cli) -> None:
    ok(cli("imap", "sync", "alice"))


def changes(cli: Cli, *args: str) -> list[dict[str, Any]]:
    return ok(cli("elements", "changes", *args)).lines()


def export(cli: Cli) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in ok(cli("elements", "export")).lines()}


def last_seq(cli: Cli) -> int:
    return int(ok(cli("elements", "check", "--json")).json()["last_seq"])


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def test_the_feed_holds_each_element_once_and_then_exactly_what_changed_on_the_server(
    cli: Cli, dovecot: DovecotServer
) -> None:
    for i in range(12):
        dovecot.deliver("alice", message(f"first batch {i}", f"body {i}"))
    ok(cli.add(dovecot))
    sync(cli)

    # 1. One upsert per element, seq 1, 2, 3, ... without gaps, and the same ids as the export.
    feed = changes(cli)
    stored = export(cli)
    assert len(stored) == 12
    assert [c["seq"] for c in feed] == list(range(1, len(feed) + 1))
    assert [c["op"] for c in feed] == ["upsert"] * 12
    assert [c["id"] for c in feed if c["id"] in stored] == [c["id"] for c in feed]
    assert {c["id"] for c in feed} == set(stored) and len({c["id"] for c in feed}) == len(feed)
    assert all(c["mailbox"] == "alice" and c["element"] == stored[c["id"]] for c in feed)
    cursor = feed[-1]["seq"]
    nothing = ok(cli("elements", "changes", "--since", str(cursor)))
    assert nothing.out == ""

    # 2. Flags on 5, 3 expunged, 4 new: the next sync's changes name exactly those 12 elements.
    by_uid = {e["uid"]: e["id"] for e in stored.values()}
    server = ServerClient(dovecot)
    try:
        server.set_flags([1, 2, 3], ["\\Flagged"])
        server.set_flags([4, 5], ["\\Seen", "\\Answered"])
        server.expunge([6, 7, 8])
        for i in range(4):
            server.client.append("INBOX", message(f"second batch {i}", f"new body {i}"))
        on_server = server.state()
    finally:
        server.close()
    assert len(on_server) == 13
    sync(cli)

    after = changes(cli, "--since", str(cursor))
    stored = export(cli)
    new_ids = {e["id"] for e in stored.values() if e["subject"].startswith("second batch")}
    flagged_ids = {by_uid[uid] for uid in (1, 2, 3, 4, 5)}
    expunged_ids = {by_uid[uid] for uid in (6, 7, 8)}
    assert len(new_ids) == 4
    assert [c["seq"] for c in after] == list(range(cursor + 1, cursor + 1 + len(after)))
    assert sorted(c["id"] for c in after) == sorted(flagged_ids | expunged_ids | new_ids), after
    ops = {c["id"]: c["op"] for c in after}
    assert {i for i, op in ops.items() if op == "delete"} == expunged_ids
    assert {i for i, op in ops.items() if op == "upsert"} == flagged_ids | new_ids
    for change in after:
        element = change["element"]
        if change["op"] == "delete":
            assert element["deleted"] is True
        else:
            assert not element.get("deleted")
            assert element["flags"] == on_server[element["uid"]], element
    assert {stored[i]["uid"]: stored[i]["flags"] for i in flagged_ids} == {
        1: ["\\Flagged"], 2: ["\\Flagged"], 3: ["\\Flagged"], 4: ["\\Answered", "\\Seen"], 5: ["\\Answered", "\\Seen"]}


def test_a_named_consumer_reads_each_change_once_and_can_be_removed(cli: Cli, dovecot: DovecotServer) -> None:
    for i in range(3):
        dovecot.deliver("alice", message(f"consumed {i}"))
    ok(cli.add(dovecot))
    sync(cli)

    everything = changes(cli)
    assert len(everything) == 3
    assert changes(cli, "--consumer", "indexer") == everything  # first call: from the beginning
    assert ok(cli("elements", "changes", "--consumer", "indexer")).out == ""  # second: nothing new

    dovecot.deliver("alice", message("one more for the consumer"))
    sync(cli)
    (latest,) = changes(cli, "--consumer", "indexer")
    assert (latest["op"], latest["element"]["subject"]) == ("upsert", "one more for the consumer")
    assert latest["seq"] == everything[-1]["seq"] + 1

    listed = ok(cli("elements", "consumers", "--json")).json()
    assert listed["last_seq"] == latest["seq"]
    assert [(c["name"], c["cursor"], c["lag"]) for c in listed["consumers"]] == [("indexer", latest["seq"], 0)]
    assert "indexer" in ok(cli("elements", "consumers", "--remove", "indexer")).out
    assert ok(cli("elements", "consumers", "--json")).json()["consumers"] == []
    assert len(changes(cli, "--consumer", "indexer")) == 4  # a forgotten consumer starts over


def test_a_follower_beside_run_prints_new_mail_as_it_lands_and_stops_on_ctrl_c(
    cli: Cli, dovecot: DovecotServer
) -> None:
    dovecot.deliver("alice", message("before the follower"))
    ok(cli.add(dovecot))
    running = RunningProcess(cli)
    follower: subprocess.Popen[str] | None = None
    try:
        running.wait_for(lambda: cli("imap", "status", "alice", "--json").json()["folders"][0].get("watch_mode"),
                         "the process did not start watching INBOX")
        running.wait_for(lambda: running.stored() == 1, "the catch-up sync")
        since = last_seq(cli)
        follower = subprocess.Popen([COMMAND, "elements", "changes", "--follow", "--since", str(since)],
                                    env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        stdout = follower.stdout
        assert stdout is not None
        collect_lines(stdout, lines)

        server = ServerClient(dovecot)
        try:
            server.client.append("INBOX", message("while following"))
        finally:
            server.close()
        wait_for(lambda: lines or follower.poll() is not None, "the follower to print the new mail")
        assert follower.poll() is None, follower.communicate()
        first = json.loads(lines[0])
        assert (first["seq"], first["op"], first["mailbox"]) == (since + 1, "upsert", "alice")
        assert first["element"]["subject"] == "while following"
        assert first["id"] == first["element"]["id"]

        follower.send_signal(signal.SIGINT)
        _out, err = follower.communicate(timeout=30)
        assert follower.returncode == 0, err
        assert all(json.loads(line)["seq"] > since for line in lines)
        assert running.process.poll() is None  # the follower stopped, not the service
    finally:
        if follower is not None and follower.poll() is None:
            follower.kill()
            follower.wait(timeout=30)
        code, err = running.finish()
    assert code == 0, err


def test_search_show_and_thread(cli: Cli, dovecot: DovecotServer) -> None:
    dovecot.deliver("alice", with_pdf("figures attached", "The figures are in the file.", "figures.pdf",
                                      "Annual figures", "The quokkaberry harvest doubled"))
    dovecot.deliver("alice", message("会議のお知らせ", "明日は東京で会議があります。", msgid="tokyo@example.net"))
    dovecot.deliver("alice", message("旅行", "来週は京都に行きます。", msgid="kyoto@example.net"))
    # The reply arrives first: the conversation is ordered by date, not by arrival.
    dovecot.deliver("alice", message("Re: Lunch plan", "Noon works.", msgid="lunch-reply@example.net",
                                     date="Mon, 2 Mar 2026 11:30:00 +0000",
                                     extra="In-Reply-To: <lunch@example.net>\r\nReferences: <lunch@example.net>\r\n"))
    dovecot.deliver("alice", message("Lunch plan", "Lunch tomorrow?", msgid="lunch@example.net",
                                     date="Mon, 2 Mar 2026 08:15:00 +0000"))
    ok(cli.add(dovecot))
    sync(cli)
    by_subject = {e["subject"]: e for e in export(cli).values()}
    assert len(by_subject) == 5

    # A word only in the PDF's text: found once its extraction has landed in the store.
    pdf = by_subject["figures attached"]
    assert "quokkaberry" not in json.dumps({k: v for k, v in pdf.items() if k != "attachments"})
    hits = wait_for(lambda: ok(cli("elements", "search", "quokkaberry", "--json")).json(),
                    "the attachment's text to be searchable")
    assert [h["id"] for h in hits] == [pdf["id"]]
    assert "[quokkaberry]" in hits[0]["snippet"]
    assert "quokkaberry" in export(cli)[pdf["id"]]["attachments"][0]["text"]

    # Japanese, without spaces between words: 東京 finds the Tokyo mail, not the one with 京都.
    tokyo, kyoto = by_subject["会議のお知らせ"], by_subject["旅行"]
    hits = ok(cli("elements", "search", "東京", "--json")).json()
    assert [h["id"] for h in hits] == [tokyo["id"]]
    (hit,) = hits
    assert {"id", "date", "from", "subject", "snippet"} <= set(hit)
    assert hit["subject"] == "会議のお知らせ"
    assert "bob@example.net" in hit["from"]
    assert hit["date"].startswith("2026-03-02")
    assert "[東京]" in hit["snippet"] and "会議" in hit["snippet"]
    assert [h["id"] for h in ok(cli("elements", "search", "京都", "--json")).json()] == [kyoto["id"]]
    plain = ok(cli("elements", "search", "東京"))
    assert tokyo["id"] in plain.out and kyoto["id"] not in plain.out

    shown = ok(cli("elements", "show", tokyo["id"])).json()
    assert shown == tokyo
    assert shown["text"].strip() == "明日は東京で会議があります。"
    missing = cli("elements", "show", "0" * 32)
    assert missing.code != 0 and "no element" in missing.err

    parent, reply = by_subject["Lunch plan"], by_subject["Re: Lunch plan"]
    assert parent["thread_id"] == reply["thread_id"]
    assert reply["uid"] < parent["uid"]
    conversation = ok(cli("elements", "thread", parent["thread_id"], "--json")).json()
    assert [e["id"] for e in conversation] == [parent["id"], reply["id"]]
    table = ok(cli("elements", "thread", parent["thread_id"])).out
    assert table.index(parent["id"]) < table.index(reply["id"])
    assert tokyo["id"] not in table


def test_a_purge_expires_old_cursors_says_so_in_the_feed_and_leaves_no_trace_in_the_database(
    cli: Cli, dovecot: DovecotServer
) -> None:
    dovecot.deliver("alice", message("Zygomorphic invoice", "please pay"))
    dovecot.deliver("alice", message("ordinary note", "nothing special"))
    ok(cli.add(dovecot))
    sync(cli)
    server = ServerClient(dovecot)
    try:
        server.set_flags([2], ["\\Seen"])
    finally:
        server.close()
    sync(cli)
    feed = changes(cli)
    assert [c["op"] for c in feed] == ["upsert"] * 3
    before_purge = feed[-1]["seq"]
    db_files = [cli.data_dir / name for name in ("elements.sqlite", "elements.sqlite-wal", "elements.sqlite-shm")]
    # The subject is in the database's bytes now, so the check after the purge can fail.
    assert b"Zygomorphic" in b"".join(p.read_bytes() for p in db_files if p.exists())

    ok(cli("imap", "remove", "alice", "--purge"))

    for stale in (0, before_purge - 1):
        expired = cli("elements", "changes", "--since", str(stale))
        assert expired.code == 3, expired
        assert expired.out == ""
        assert f"cursor {stale} can no longer be served" in expired.err
        assert "elements export" in expired.err and f"--since {before_purge}" in expired.err
    resumed = ok(cli("elements", "changes", "--since", str(before_purge)))
    assert resumed.out.splitlines() == [f'{{"seq": {before_purge + 1}, "op": "purge", "mailbox": "alice"}}']
    assert export(cli) == {}

    present = [p for p in db_files if p.exists()]
    assert cli.data_dir / "elements.sqlite" in present
    for path in present:
        data = path.read_bytes()
        assert b"Zygomorphic" not in data and b"zygomorphic" not in data, path
