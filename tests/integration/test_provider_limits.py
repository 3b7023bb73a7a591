"""The providers' limiting answers, obeyed end to end (issue #20): a proxy in front of a real
Dovecot answers one mailbox's chosen command the way Gmail or Office 365 do when they limit an
account; the mailbox then waits, slows down or uses fewer connections as asked, the other
mailbox is untouched, and in the end the store equals the server."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from futurnal.demo.dovecot import DovecotServer
from futurnal.demo.sample_mailbox import generate_mailbox
from futurnal.storage.clock import parse_utc

from .cli import Cli
from .fault_proxy import Answer, AnswerProxy
from .running_process import RunningProcess
from .sync_harness import ServerClient

OVERQUOTA = "NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)"
OFFICE365 = "NO Request is throttled. Suggested Backoff Time: 1500 milliseconds"
TOO_MANY = "NO [ALERT] Too many simultaneous connections. (Failure)"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def _server(dovecot_factory: Any, alice: int, bob: int = 0) -> DovecotServer:
    server = dovecot_factory()
    server.add_user("bob", "bobs-pw")
    for user, count, seed in (("alice", alice, 3), ("bob", bob, 4)):
        for message in generate_mailbox(count, seed=seed) if count else ():
            server.deliver(user, message.raw, folder="INBOX", flags=message.flags)
    server.start()
    return server


def _add_behind(cli: Cli, proxy: AnswerProxy, *extra: str) -> None:
    """alice, through the proxy, unwatched (so every login the proxy counts is a sync's)."""
    added = cli("imap", "add", "--consent", "--email", "alice@example.org", "--host", "127.0.0.1", "--port",
                str(proxy.port), "--username", "alice", "--security", "plain", "--id", "alice", "--no-verify",
                "--watch", "", "--password-stdin", *extra, stdin="secret-pw\n")
    assert added.code == 0, added.err


def _config(cli: Cli, text: str) -> None:
    cli.data_dir.mkdir(parents=True, exist_ok=True)
    (cli.data_dir / "config.toml").write_text(text)


def _assert_store_equals_server(cli: Cli, server: DovecotServer, mailbox: str = "alice",
                                password: str = "secret-pw") -> None:
    other = ServerClient(server, user=mailbox, password=password)
    try:
        expected = other.state("INBOX")
    finally:
        other.close()
    elements = cli("elements", "export", "--mailbox", mailbox).lines()
    uids = [e["uid"] for e in elements]
    assert len(uids) == len(set(uids)), "an element was stored twice"
    assert {e["uid"]: e["flags"] for e in elements} == expected


def _status(cli: Cli, mailbox: str = "alice") -> dict[str, Any]:
    result: dict[str, Any] = cli("imap", "status", mailbox, "--json").json()
    return result


def _sync_into_a_hold(cli: Cli) -> dict[str, Any]:
    """``imap sync alice`` ends on the provider's answer: the mailbox's hold, as status gives it."""
    first = cli("imap", "sync", "alice")
    assert first.code == 1 and "throttled until" in first.err, first.err
    held: dict[str, Any] = _status(cli)["throttled"]
    return held


def _wait_out(held: dict[str, Any]) -> None:
    time.sleep(max((parse_utc(held["until"]) - datetime.now(UTC)).total_seconds(), 0) + 0.2)


def _audit(cli: Cli) -> list[dict[str, Any]]:
    path = cli.data_dir / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def test_overquota_holds_the_mailbox_until_its_time_and_the_other_mailbox_goes_on(
    cli: Cli, dovecot_factory: Any
) -> None:
    server = _server(dovecot_factory, alice=60, bob=30)
    _config(cli, "[sync]\nbatch_messages = 10\n")
    with AnswerProxy(server.imap_port, [Answer("UID FETCH", tagged=OVERQUOTA, nth=3)]) as proxy:
        _add_behind(cli, proxy, "--interval", "1")
        assert cli.add(server, user="bob", mailbox_id="bob", password="bobs-pw").code == 0
        running = RunningProcess(cli, FUTURNAL_NETWORK_OVERQUOTA_WAIT_SECONDS="6")
        try:
            running.wait_for(lambda: _status(cli)["state"] == "throttled", "alice was never throttled")
            held = _status(cli)["throttled"]
            logins = proxy.logins
            assert held["kind"] == "overquota" and "exceeded command or bandwidth limits" in held["reason"]
            until = parse_utc(held["until"])
            assert 6 <= (until - parse_utc(held["since"])).total_seconds() <= 8  # the wait, a tenth more at most
            assert f"throttled until {held['until']}" in cli("ctl", "status").out
            assert f"THROTTLED until {held['until']}" in cli("imap", "status", "alice").out
            # bob is untouched: all of it arrives while alice waits
            running.wait_for(lambda: len(cli("elements", "export", "--mailbox", "bob").lines()) == 30,
                             "bob did not sync while alice was held", timeout=30)
            while (until - datetime.now(UTC)).total_seconds() > 0.3:  # alice ticks every second meanwhile
                assert proxy.logins == logins, "a login to the held mailbox's server before its time"
                time.sleep(0.1)
            running.wait_for(lambda: len(cli("elements", "export", "--mailbox", "alice").lines()) == 60,
                             "alice did not finish after the hold", timeout=60)
            running.wait_for(lambda: _status(cli)["state"] == "ok", "alice stayed throttled")
            assert proxy.logins - logins <= 2  # one retry at the hold's end, not a storm
        finally:
            code, err = running.finish()
    assert code == 0, err
    _assert_store_equals_server(cli, server)
    _assert_store_equals_server(cli, server, "bob", "bobs-pw")
    throttled = [e for e in _audit(cli) if e.get("event") == "mailbox-throttled"]
    assert [(e["mailbox"], e["kind"], e["until"]) for e in throttled] == [("alice", "overquota", held["until"])]


def test_office365_backoff_is_waited_out_and_a_sync_meanwhile_does_not_connect(
    cli: Cli, dovecot_factory: Any
) -> None:
    server = _server(dovecot_factory, alice=25)
    _config(cli, "[sync]\nbatch_messages = 10\n")
    with AnswerProxy(server.imap_port, [Answer("UID FETCH", tagged=OFFICE365, nth=2)]) as proxy:
        _add_behind(cli, proxy)
        held = _sync_into_a_hold(cli)
        assert held["kind"] == "backoff" and "Suggested Backoff Time: 1500 milliseconds" in held["reason"]
        waited = (parse_utc(held["until"]) - parse_utc(held["since"])).total_seconds()
        assert 1.5 <= waited <= 4.5  # a second of jitter at most, and a second of rounding
        logins = proxy.logins
        if (parse_utc(held["until"]) - datetime.now(UTC)).total_seconds() > 0.5:
            again = cli("imap", "sync", "alice")  # the hold is in the state file: no connection before its end
            assert again.code == 1 and f"throttled until {held['until']}" in again.err, again.err
            assert proxy.logins == logins
        _wait_out(held)
        done = cli("imap", "sync", "alice")
        assert done.code == 0, done.err
    assert _status(cli)["state"] == "ok" and _status(cli)["throttled"] is None
    _assert_store_equals_server(cli, server)


def test_too_many_connections_at_login_lowers_the_budget_and_the_sync_goes_on(
    cli: Cli, dovecot_factory: Any
) -> None:
    server = _server(dovecot_factory, alice=15)
    with AnswerProxy(server.imap_port, [Answer("LOGIN", tagged=TOO_MANY)]) as proxy:
        _add_behind(cli, proxy)
        synced = cli("imap", "sync", "alice", "--json")
        assert synced.code == 0, synced.err
        assert synced.json()["fetched"] == 15
        assert proxy.logins == 2  # refused once, then in with one connection fewer
    assert _status(cli)["state"] == "ok"
    _assert_store_equals_server(cli, server)


def test_throttled_answers_make_smaller_batches_and_the_sync_completes(cli: Cli, dovecot_factory: Any) -> None:
    server = _server(dovecot_factory, alice=80)
    _config(cli, "[sync]\nbatch_messages = 20\n[network]\nthrottle_pause_seconds = 0.1\n")
    with AnswerProxy(server.imap_port, [Answer("UID FETCH", append="[THROTTLED]", nth=2, times=2)]) as proxy:
        _add_behind(cli, proxy)
        synced = cli("imap", "sync", "alice", "--json")
        assert synced.code == 0, synced.err
        assert synced.json()["fetched"] == 80
        fetches = sum(1 for command in proxy.commands if command.endswith("UID FETCH"))
    # unthrottled, 5 (sizes, then 4 batches of 20); throttled, the later batches go in FETCHes of 10, then 5
    assert fetches >= 8, proxy.commands
    _assert_store_equals_server(cli, server)


def test_an_alert_is_shown_in_status_as_the_server_wrote_it(cli: Cli, dovecot_factory: Any) -> None:
    server = _server(dovecot_factory, alice=3)
    alert = "* OK [ALERT] Your account is over 95% of its storage\x1b[2J quota"
    with AnswerProxy(server.imap_port, [Answer("EXAMINE", untagged=(alert,)),
                                        Answer("SELECT", untagged=(alert,))]) as proxy:
        _add_behind(cli, proxy)
        assert cli("imap", "sync", "alice").code == 0
    shown = _status(cli)["last_alert"]
    assert shown["reason"] == "Your account is over 95% of its storage\x1b[2J quota"
    text = cli("imap", "status", "alice").out
    assert "server alert" in text and "over 95% of its storage" in text and "\x1b" not in text
    _assert_store_equals_server(cli, server)


@pytest.mark.parametrize(("answer", "kind"), [
    ("NO [UNAVAILABLE] Temporary authentication failure", "unavailable"),
    ("NO [LIMIT] Too many commands in a short time", "limit"),
])
def test_unavailable_and_limit_back_off_a_few_seconds_then_the_sync_completes(
    cli: Cli, dovecot_factory: Any, answer: str, kind: str
) -> None:
    server = _server(dovecot_factory, alice=25)
    _config(cli, "[sync]\nbatch_messages = 10\n")
    with AnswerProxy(server.imap_port, [Answer("UID FETCH", tagged=answer, nth=2)]) as proxy:
        _add_behind(cli, proxy)
        held = _sync_into_a_hold(cli)
        assert held["kind"] == kind, held
        waited = (parse_utc(held["until"]) - parse_utc(held["since"])).total_seconds()
        assert 5 <= waited <= 8  # RFC 5530's answers: 5 s to begin with, a tenth of jitter, rounding
        logins = proxy.logins
        again = cli("imap", "sync", "alice")
        assert again.code == 1 and proxy.logins == logins, again.err  # nothing sent before the end
        _wait_out(held)
        done = cli("imap", "sync", "alice")
        assert done.code == 0, done.err
    _assert_store_equals_server(cli, server)


def test_overquota_halfway_through_a_first_sync_leaves_the_newest_half_and_the_rest_follows(
    cli: Cli, dovecot_factory: Any
) -> None:
    server = _server(dovecot_factory, alice=2000)
    _config(cli, "[sync]\nbatch_messages = 100\n")
    # The 1st UID FETCH asks for the sizes of the window of 2,000; then ten batches of 100 go
    # through, newest first, and the 12th is answered OVERQUOTA.
    with AnswerProxy(server.imap_port, [Answer("UID FETCH", tagged=OVERQUOTA, nth=12)]) as proxy:
        _add_behind(cli, proxy)
        cli.env["FUTURNAL_NETWORK_OVERQUOTA_WAIT_SECONDS"] = "3"
        held = _sync_into_a_hold(cli)  # read at once: the 3 s hold may be over after the reads below
        stored = sorted(e["uid"] for e in cli("elements", "export").lines())
        # Exactly the newest half (the batch being parsed when the answer came is stored too).
        folder = _status(cli)["folders"][0]
        floor = folder["backfill_floor"]
        assert floor == 1001 and stored == list(range(floor, 2001)), (floor, stored[:3], len(stored))
        assert folder["backfill"]["left"] == floor - 1, folder
        _wait_out(held)
        done = cli("imap", "sync", "alice")
        assert done.code == 0, done.err
    _assert_store_equals_server(cli, server)
    assert _status(cli)["folders"][0]["backfill"] is None
