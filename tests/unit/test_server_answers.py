"""The providers' answers, in their own wording, and what each asks of the client."""

from __future__ import annotations

import pytest

from futurnal.imap.server_answers import (
    Alert,
    BackoffFor,
    Coded,
    Limit,
    OverQuota,
    ServerAnswer,
    Throttled,
    TooManyConnections,
    Unavailable,
    classify,
    limiting,
    parse_line,
)


def test_gmail_throttled_after_the_text_of_an_ok() -> None:
    # As Gmail sends it (jstedfast/MailKit#1396, mscdex/node-imap#593): the code comes last.
    verdicts = classify("OK", "Success [THROTTLED]")
    assert verdicts == (Throttled("Success [THROTTLED]"),)
    assert limiting(verdicts) is None  # the command succeeded: slow down, go on


def test_gmail_throttled_on_a_no_is_logged_with_its_code() -> None:
    verdicts = classify("NO", "[THROTTLED] Command failed (Failure)")
    assert Throttled("[THROTTLED] Command failed (Failure)") in verdicts
    assert Coded("NO", "THROTTLED", "[THROTTLED] Command failed (Failure)") in verdicts


def test_gmail_overquota() -> None:
    text = "[OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)"
    verdicts = classify("NO", text)
    assert verdicts[0] == OverQuota(text)
    assert Coded("NO", "OVERQUOTA", text) in verdicts
    assert limiting(verdicts) == OverQuota(text)


def test_gmail_overquota_in_words_only_and_as_imapclient_words_it() -> None:
    # ljmerza/ha-email-sensor#16: what IMAPClient's error says.
    text = "command: FETCH => [OVERQUOTA] Account exceeded command or bandwidth limits."
    assert isinstance(limiting(classify("NO", text)), OverQuota)
    assert isinstance(limiting(classify("BYE", "Account exceeded command or bandwidth limits. (Failure)")), OverQuota)


def test_overquota_wins_over_throttled_in_one_answer() -> None:
    verdicts = classify("NO", "[OVERQUOTA] Account exceeded command or bandwidth limits. [THROTTLED]")
    assert not any(isinstance(v, Throttled) for v in verdicts)


@pytest.mark.parametrize("status", ["NO", "BAD", "BYE"])
def test_office365_suggested_backoff(status: str) -> None:
    # ikvk/imap_tools#135 (NO), simonrob/email-oauth2-proxy#191 (BAD), imapsync/imapsync#198.
    text = "Request is throttled. Suggested Backoff Time: 299910 milliseconds"
    verdicts = classify(status, text)
    assert verdicts == (BackoffFor(299.91, text),)
    assert limiting(verdicts) == BackoffFor(299.91, text)


def test_an_absurd_backoff_is_capped_at_a_day() -> None:
    (verdict,) = classify("NO", "Request is throttled. Suggested Backoff Time: 999999999999 milliseconds")
    assert isinstance(verdict, BackoffFor) and verdict.seconds == 86_400


def test_gmail_too_many_connections_is_an_alert_too() -> None:
    # zone-eu/wildduck#35, jstedfast/MailKit#377: the answer to LOGIN or AUTHENTICATE.
    text = "[ALERT] Too many simultaneous connections. (Failure)"
    verdicts = classify("NO", text)
    assert TooManyConnections(text) in verdicts
    assert Alert("Too many simultaneous connections. (Failure)") in verdicts
    assert Coded("NO", "ALERT", text) in verdicts
    assert limiting(verdicts) == TooManyConnections(text)


@pytest.mark.parametrize(("status", "text", "kind"), [
    ("BYE", "[UNAVAILABLE] Temporary System Error", Unavailable),
    ("NO", "[UNAVAILABLE] Internal error occurred. Refer to server log for more information.", Unavailable),
    ("NO", "[LIMIT] Too many concurrent FETCH commands", Limit),
])
def test_rfc5530_unavailable_and_limit(status: str, text: str, kind: type) -> None:
    assert isinstance(limiting(classify(status, text)), kind)


def test_an_alert_on_an_untagged_ok_is_for_the_user_and_stops_nothing() -> None:
    verdicts = classify("OK", "[ALERT] Your account will be closed on 1 May\x1b[2J")
    assert verdicts == (Alert("Your account will be closed on 1 May\x1b[2J"),)  # shown through visible()
    assert limiting(verdicts) is None


def test_any_coded_no_or_bad_is_coded_and_plain_answers_carry_nothing() -> None:
    assert classify("NO", "[SERVERBUG] Internal error") == (Coded("NO", "SERVERBUG", "[SERVERBUG] Internal error"),)
    assert classify("BAD", "[CLIENTBUG] Bad sequence set") == (Coded("BAD", "CLIENTBUG", "[CLIENTBUG] Bad sequence set"),)
    assert classify("OK", "[READ-ONLY] EXAMINE completed") == ()
    assert classify("NO", "Mailbox doesn't exist: Nope") == ()
    assert classify("OK", "Success") == ()


def test_parse_line() -> None:
    assert parse_line(b"A12 NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)\r\n") == \
        ServerAnswer("NO", "[OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)", tagged=True)
    assert parse_line(b"* BYE [UNAVAILABLE] Temporary System Error\r\n") == \
        ServerAnswer("BYE", "[UNAVAILABLE] Temporary System Error")
    assert parse_line(b"* ok [ALERT] hi\r\n") == ServerAnswer("OK", "[ALERT] hi")
    assert parse_line(b"* 12 FETCH (UID 7 FLAGS ())\r\n") is None
    assert parse_line(b"* LIST () \"/\" INBOX\r\n") is None
    assert parse_line(b"+ idling\r\n") is None
    answer = parse_line(b"B7 OK Success [THROTTLED]\r\n")
    assert answer is not None and answer.verdicts == (Throttled("Success [THROTTLED]"),)
