"""A session hears the providers' limiting answers at any command and says what they ask for.

The answers are the providers' own wording (see futurnal/imap/server_answers.py for the sources),
put in front of the scriptable server by the fault tests' answer proxy.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from futurnal.imap.errors import ProviderLimited
from futurnal.imap.server_answers import BackoffFor, OverQuota, TooManyConnections, Unavailable
from futurnal.imap.session import ConnectionSettings, ImapSession
from tests.integration.fault_proxy import Answer, AnswerProxy
from tests.servers.hostile_imap import Folder, HostileImap

RAW = b"Subject: hi\r\nMessage-ID: <a@x>\r\n\r\nbody\r\n"


@pytest.fixture
def proxy() -> Iterator[AnswerProxy]:
    with HostileImap({"INBOX": Folder(7, {1: RAW, 2: RAW})}) as server, AnswerProxy(server.port) as proxy:
        yield proxy


def _session(proxy: AnswerProxy) -> ImapSession:
    settings = ConnectionSettings("127.0.0.1", proxy.port, "alice", security="plain", read_timeout=5)
    return ImapSession(settings, owner="alice").connect("pw")


def test_overquota_on_fetch(proxy: AnswerProxy) -> None:
    proxy.answers.append(Answer("UID FETCH", "NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)"))
    with _session(proxy) as session:
        session.select("INBOX")
        with pytest.raises(ProviderLimited, match="exceeded its command or bandwidth limits") as raised:
            session.fetch_messages([1, 2])
    assert isinstance(raised.value.verdict, OverQuota)


def test_throttled_ok_slows_nothing_down_here_but_is_counted(proxy: AnswerProxy) -> None:
    proxy.answers.append(Answer("UID FETCH", append="[THROTTLED]", times=2))
    with _session(proxy) as session:
        session.select("INBOX")
        assert len(session.fetch_messages([1]).messages) == 1
        assert len(session.fetch_messages([2]).messages) == 1
        assert session.take_throttled() == 2
        assert session.take_throttled() == 0


def test_too_many_connections_at_login_is_no_bad_password(proxy: AnswerProxy) -> None:
    proxy.answers.append(Answer("LOGIN", "NO [ALERT] Too many simultaneous connections. (Failure)"))
    with pytest.raises(ProviderLimited, match="refuses more simultaneous connections") as raised:
        _session(proxy)
    assert isinstance(raised.value.verdict, TooManyConnections)
    _session(proxy).close()  # the next login goes through


@pytest.mark.parametrize("status", ["NO", "BAD"])
def test_office365_backoff_on_select(proxy: AnswerProxy, status: str) -> None:
    proxy.answers.append(Answer("EXAMINE", f"{status} Request is throttled. Suggested Backoff Time: 92415 milliseconds"))
    with _session(proxy) as session, pytest.raises(ProviderLimited, match="no command for 92.415 s") as raised:
        session.select("INBOX")
    assert raised.value.verdict == BackoffFor(92.415, "Request is throttled. Suggested Backoff Time: 92415 milliseconds")


def test_bye_unavailable_in_the_middle_of_a_command(proxy: AnswerProxy) -> None:
    proxy.answers.append(Answer("UID FETCH", "BAD closing", untagged=("* BYE [UNAVAILABLE] Temporary System Error",),
                                bye=True))
    with _session(proxy) as session:
        session.select("INBOX")
        with pytest.raises(ProviderLimited) as raised:
            session.fetch_messages([1])
    assert isinstance(raised.value.verdict, Unavailable)


def test_an_alert_is_kept_as_written_and_the_command_succeeds(proxy: AnswerProxy) -> None:
    proxy.answers.append(Answer("UID SEARCH", "OK SEARCH done",
                                untagged=("* SEARCH 1 2", "* OK [ALERT] Please read: \x1b]0;owned\x07 maintenance")))
    with _session(proxy) as session:
        session.select("INBOX")
        assert list(session.uids(2)) == [1, 2]
        assert session.alerts == ["Please read: \x1b]0;owned\x07 maintenance"]


def test_a_wait_asked_for_beside_a_success_holds_the_next_command(proxy: AnswerProxy) -> None:
    untagged = ("* SEARCH 1 2", "* NO Request is throttled. Suggested Backoff Time: 5000 milliseconds")
    proxy.answers.append(Answer("UID SEARCH", "OK SEARCH done", untagged=untagged))
    with _session(proxy) as session:
        session.select("INBOX")
        assert list(session.uids(2)) == [1, 2]  # the answer itself is good
        sent = len(proxy.commands)
        with pytest.raises(ProviderLimited):
            session.fetch_messages([1])
        assert len(proxy.commands) == sent  # nothing was sent
