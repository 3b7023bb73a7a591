"""Strings from servers and senders reach a terminal with their control characters made visible;
JSON Lines stay one line per record whatever the text holds."""

from __future__ import annotations

import collections
import io
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from futurnal.cli import console_render, demo_command, monitor_command, top_command
from futurnal.cli.main import main
from futurnal.cli.output import ProgressBar, json_line, print_table, visible
from futurnal.storage.consent import ConsentRegistry
from futurnal.storage.data_dir import DataDir
from futurnal.storage.element_store import Change
from futurnal.storage.quarantine import QuarantineStore
from futurnal.storage.registry import MailboxRecord, MailboxRegistry
from futurnal.storage.sqlite import open_element_store
from futurnal.storage.sync_state import FolderState, FolderStateStore
from tests.terminal import Screen, Terminal

#: A folder name a hostile server might send: retitle the terminal, clear it, turn it red, reverse
#: what follows, break the line, open a CSI (C1), and rich markup.
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\u202egpj.exe\u2028x\ty\nz\x9b[bold red]loud"
SHOWN = "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mred\\u202egpj.exe\\u2028x\\x09y\\x0az\\u009b[bold red]loud"
ACTIVE = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F),
                           *range(0x2066, 0x206A), 0xD800, 0xDFFF]]


def assert_inert(text: str) -> None:
    """Nothing in ``text`` but printable characters and line ends a renderer put there itself."""
    assert [hex(ord(ch)) for ch in text.replace("\n", "") if ch in ACTIVE] == []


# --------------------------------------------------------------------------
# visible()
# --------------------------------------------------------------------------


def test_visible_writes_every_active_character_as_an_escape() -> None:
    assert visible(HOSTILE) == SHOWN
    for ch in ACTIVE:
        shown = visible(f"a{ch}b")
        assert shown == (f"a\\x{ord(ch):02x}b" if ord(ch) < 0x80 else f"a\\u{ord(ch):04x}b"), hex(ord(ch))


@pytest.mark.parametrize("text", ["INBOX", "Größe/Entwürfe", "日本語 😀", "[Gmail]/All Mail", "a\\x1b", ""])
def test_visible_leaves_ordinary_text_alone(text: str) -> None:
    assert visible(text) == text


def test_visible_is_idempotent_and_takes_any_object() -> None:
    assert visible(visible(HOSTILE)) == SHOWN
    assert visible(42) == "42"
    assert visible(None) == "None"


def test_tables_show_every_cell_visibly() -> None:
    out = io.StringIO()
    print_table([[HOSTILE, "1"], ["INBOX", "2"]], ["FOLDER", "N"], stream=out)
    assert out.getvalue().splitlines() == [f"FOLDER{' ' * (len(SHOWN) - 4)}N", f"{SHOWN}  1",
                                           f"INBOX{' ' * (len(SHOWN) - 3)}2"]


TABLE = textwrap.dedent("""
    from futurnal.cli.output import print_table

    row = ["alice-example.org", "Archive/2024/Quarterly reports", "1234567", "12", "2026-03-02T10:00:00Z",
           "server said: NO [UNAVAILABLE] the mailbox is being moved to another backend; try again later"]
    print_table([row, row], ["MAILBOX", "FOLDER", "UIDVALIDITY", "STORED", "LAST SUCCESS", "LAST ERROR"])
""")


def test_a_table_fits_an_80_column_terminal_and_keeps_every_row_whole_in_a_pipe() -> None:
    with Terminal([sys.executable, "-c", TABLE], columns=80, rows=24) as terminal:
        assert terminal.wait() == 0
        screen = terminal.screen()
    assert screen.wraps == 0, screen.text()
    # Single words (ids, dates, counts) kept whole; the columns of words wrap inside themselves.
    rows = [row for row in screen.lines() if row.startswith("alice")]
    assert len(rows) == 2 and all(row.startswith("alice-example.org  Archive/")
                                  and "1234567      12      2026-03-02T10:00:00Z" in row for row in rows), screen.text()
    assert "server" in screen.text() and screen.lines()[-1].strip() == "later"
    piped = subprocess.run([sys.executable, "-c", TABLE], capture_output=True, text=True, check=True).stdout
    assert len(piped.splitlines()) == 3 and piped.splitlines()[1].endswith("; try again later")


def test_the_progress_bar_shows_the_folder_visibly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out = io.StringIO()
    bar = ProgressBar("syncing alice", stream=out, enabled=True)
    bar.update(1, 2, HOSTILE)
    bar.finish()
    screen = Screen(80, 24).feed(out.getvalue())
    (line,) = screen.lines()
    assert line.startswith(f"syncing alice {SHOWN[:20]}")  # cut to the terminal's width
    assert_inert(line)
    # Only the bar's own sequences reached the terminal: no title, no clearing, no control character.
    assert [c for c in screen.controls if c.startswith(("OSC", "CSI 2J", "'"))] == []
    assert_inert(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue()).replace("\r", ""))


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------


@pytest.fixture
def data(tmp_path: Path) -> DataDir:
    """A data directory with mailbox ``alice`` whose one folder has a hostile name and last error."""
    layout = DataDir(tmp_path / "data").ensure()
    with MailboxRegistry(layout.registry_path) as registry:
        registry.add(MailboxRecord(id="alice", email="alice@example.org", host="imap.example.org", port=993,
                                   username="alice", folders=(HOSTILE,), watch=()))
    states = FolderStateStore(layout.state_path("alice"))
    states.put(FolderState(folder=HOSTILE, uidvalidity=7, last_uid=3, messages=3,
                           last_error=f"server said: NO [ALERT] {HOSTILE}"))
    states.close()
    return layout


def test_imap_status_shows_a_hostile_folder_name_visibly(data: DataDir, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(data.root), "imap", "status", "alice"]) == 0
    out = capsys.readouterr().out
    assert_inert(out)
    assert SHOWN in out
    assert f"server said: NO [ALERT] {SHOWN}" in out


def test_imap_status_json_keeps_the_folder_name_exact(data: DataDir, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(data.root), "imap", "status", "alice", "--json"]) == 0
    assert [f["folder"] for f in json.loads(capsys.readouterr().out)["folders"]] == [HOSTILE]


def test_quarantine_list_shows_folder_and_reason_visibly(data: DataDir, capsys: pytest.CaptureFixture[str]) -> None:
    QuarantineStore(data.quarantine_root).add(mailbox="alice", folder=HOSTILE, uidvalidity=7, uid=1,
                                              reason=f"parse failed: {HOSTILE}", raw=b"x", now="2026-03-03T00:00:00Z")
    assert main(["--data-dir", str(data.root), "quarantine", "list"]) == 0
    out = capsys.readouterr().out
    assert_inert(out)
    assert f"parse failed: {SHOWN}" in out


def test_an_error_line_shows_what_it_quotes_visibly(data: DataDir, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(data.root), "imap", "status", f"bob{HOSTILE}"]) == 1
    err = capsys.readouterr().err
    assert_inert(err)
    assert err.startswith("futurnal-actors: error: no mailbox 'bob\\x1b]0;pwned\\x07")


def test_an_error_line_names_the_users_own_address(data: DataDir, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(data.root), "imap", "status", "Bob@Example.org"]) == 1
    assert capsys.readouterr().err == ("futurnal-actors: error: no mailbox 'Bob@Example.org' is registered "
                                       "(see `imap list`)\n")  # their terminal, not a log: no <addr:...>


def test_sync_reports_and_events_show_folders_and_errors_visibly() -> None:
    report = {"mailbox": "alice", "skipped": None, "folders": [{"folder": HOSTILE, "fetched": 2}],
              "errors": [{"folder": HOSTILE, "error": f"NO {HOSTILE}"}]}
    rendered = console_render.render_reply("sync", report)
    assert rendered.splitlines() == [f"alice {SHOWN}: 2 new message(s)", f"error: alice {SHOWN}: NO {SHOWN}"]
    events = [
        {"event": "sync-finished", "mailbox": "alice", "fetched": 1, "errors": [{"folder": HOSTILE, "error": HOSTILE}]},
        {"event": "quarantined", "mailbox": "alice", "folder": HOSTILE, "uid": 3, "reason": HOSTILE},
        {"event": "watch-disconnected", "mailbox": "alice", "folder": HOSTILE, "detail": HOSTILE},
    ]
    for event in events:
        line = console_render.render_event(event)
        assert_inert(line)
        assert "\n" not in line and SHOWN in line
    unknown = {"event": "something-new", "mailbox": "alice", "folder": HOSTILE}
    line = console_render.render_event(unknown)  # shown as JSON, C1 and bidi escaped the JSON way
    assert_inert(line)
    assert "\n" not in line and json.loads(line) == unknown
    fallback = console_render.render_reply("unknown", {"folder": HOSTILE})
    assert json.loads(fallback) == {"folder": HOSTILE}  # still JSON, with C1 and bidi escaped the JSON way
    assert_inert(fallback)


def test_console_tables_show_quarantine_reasons_visibly() -> None:
    rendered = console_render.render_reply("quarantine", {"records": [
        {"id": "q1", "mailbox": "alice", "folder": HOSTILE, "uid": 1, "attempts": 2, "reason": HOSTILE}]})
    assert_inert(rendered)
    assert SHOWN in rendered


def test_the_monitor_prints_server_details_visibly(capsys: pytest.CaptureFixture[str]) -> None:
    monitor_command._print({"event": "watch-disconnected", "folder": HOSTILE, "detail": HOSTILE}, "alice", 60)
    out = capsys.readouterr().out
    assert_inert(out)
    assert out.endswith(f"{SHOWN}: connection lost ({SHOWN}); reconnecting\n")


def test_top_shows_folder_names_literally_not_as_rich_markup() -> None:
    status = {"mailboxes": [{"mailbox": {"id": "alice"}, "live": {"state": "idle", "inbox": 0},
                             "folders": [{"folder": HOSTILE, "stored": 3, "messages": 3, "freshness": "fresh"}]}],
              "queues": {"sink": 0}}
    tree = [{"id": f"mailbox-{HOSTILE}", "state": HOSTILE, "restarts": 1, "inbox": 0, "children": []}]
    client = SimpleNamespace(server_pid=1, call=lambda command: {"status": status, "actors": {"tree": tree}}[command])
    frame = top_command._frame(client, top_command.RateMeter(), collections.deque([f"event about {HOSTILE}"]),
                               width=400)
    console = Console(width=400, color_system=None, force_terminal=False)
    with console.capture() as captured:
        console.print(frame)
    out = captured.get()
    assert_inert(out)
    assert out.count("[bold red]loud") == 4  # folder, actor id, actor state, event: shown, not applied


def test_the_demo_shows_subjects_visibly(capsys: pytest.CaptureFixture[str]) -> None:
    elements = [{"folder": HOSTILE, "thread_id": "t", "attachments": [], "defects": [], "subject": HOSTILE}]
    store = SimpleNamespace(iter_elements=lambda *a, **k: iter(elements), location="elements.sqlite")
    report = SimpleNamespace(results=[SimpleNamespace(folder=HOSTILE, fetched=1)], errors=[(HOSTILE, HOSTILE)])
    demo_command._summarise(report, store, "demo", Path("/tmp/demo"), explicit_dir=True)  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert_inert(out)
    assert f"    - {SHOWN}" in out and f"    {SHOWN}: FAILED: {SHOWN}" in out


# --------------------------------------------------------------------------
# JSON Lines
# --------------------------------------------------------------------------

BREAKS = "a\u2028b\u2029c\x85d"


def assert_one_record(line: str, expected: Any) -> None:
    assert line.splitlines() == [line]
    assert json.loads(line) == expected


def test_a_json_line_stays_one_line_for_every_line_reader() -> None:
    line = json_line({"subject": BREAKS, "name": "Jürgen 日本"})
    assert_one_record(line, {"subject": BREAKS, "name": "Jürgen 日本"})
    assert "Jürgen 日本" in line  # other text stays as it is, not \u-escaped


def test_a_change_feed_line_stays_one_line() -> None:
    document = json.dumps({"subject": BREAKS}, ensure_ascii=False)
    change = Change(seq=3, op="upsert", mailbox=f"m{BREAKS}", id="e1", document=document)
    assert_one_record(change.json_line(), {"seq": 3, "op": "upsert", "mailbox": f"m{BREAKS}", "id": "e1",
                                           "element": {"subject": BREAKS}})


def stored_element(data: DataDir) -> dict[str, Any]:
    from futurnal.element.build import build_element
    from futurnal.imap.fetched import FetchedMessage
    from futurnal.parse.parser import parse_message

    raw = f"From: a@example.org\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{BREAKS}\r\n".encode()
    fetched = FetchedMessage(1, raw, (), None, len(raw))
    element = build_element(parse_message(raw), fetched, mailbox="alice", folder="INBOX", uidvalidity=1)
    assert element["text"] == BREAKS  # body text keeps them (single-line fields lose them to spaces)
    store = open_element_store(data)
    try:
        store.upsert_many([element])
    finally:
        store.close()
    ConsentRegistry(data.consent_path).grant("alice", "test", ("metadata",))
    return element


@pytest.mark.parametrize("command", [["elements", "export"], ["elements", "changes"]])
def test_elements_export_and_changes_write_one_line_per_record(
    data: DataDir, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    element = stored_element(data)
    assert main(["--data-dir", str(data.root), *command]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert (record.get("element") or record)["text"] == element["text"]


def test_search_results_show_subjects_and_senders_visibly(data: DataDir, capsys: pytest.CaptureFixture[str]) -> None:
    element = stored_element(data)  # the parser keeps C1 and bidi characters in a subject: they are text
    store = open_element_store(data)
    try:
        store.upsert_many([{**element, "subject": "invoice \u202egpj.exe\x9b2J", "text": "invoice\nline two",
                            "from": [{"name": "Mallory\x1b]0;x\x07", "address": "m@example.org"}]}])
    finally:
        store.close()
    assert main(["--data-dir", str(data.root), "elements", "search", "invoice"]) == 0
    out = capsys.readouterr().out
    assert_inert(out)
    assert "invoice \\u202egpj.exe\\u009b2J" in out
