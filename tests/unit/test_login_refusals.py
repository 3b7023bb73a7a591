"""A refused login is the user's to fix, unless the server says it cannot check logins right now."""

from __future__ import annotations

from imapclient.exceptions import LoginError

from futurnal.mail.errors import AuthenticationFailed, ConnectionFailed
from futurnal.mail.session import _refused


def test_a_temporary_authentication_failure_is_retried_like_a_lost_connection() -> None:
    # What Dovecot answers while its auth process is (re)starting.
    refusal = _refused(LoginError("b'[UNAVAILABLE] Temporary authentication failure.'"), "imap.example.org:993",
                       "imap.example.org:993 rejected the login of alice: check the password")
    assert isinstance(refusal, ConnectionFailed)
    assert "imap.example.org:993 cannot check logins right now" in str(refusal)


def test_a_rejected_password_needs_the_user() -> None:
    refusal = _refused(LoginError("b'[AUTHENTICATIONFAILED] Authentication failed.'"), "imap.example.org:993",
                       "imap.example.org:993 rejected the login of alice: check the password")
    assert isinstance(refusal, AuthenticationFailed)
    assert str(refusal) == "imap.example.org:993 rejected the login of alice: check the password"
