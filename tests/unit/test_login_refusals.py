"""A refused login is the user's to fix, unless the server says it cannot check logins right now."""

from __future__ import annotations

import socket
import threading

import pytest
from imapclient.exceptions import LoginError

from futurnal.imap.errors import AuthenticationFailed, ConnectionFailed
from futurnal.imap.session import ConnectionSettings, ImapSession, _refused


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


def test_a_connection_that_breaks_during_login_is_not_a_rejected_password() -> None:
    # A NAT timeout or a server restart between LOGIN and its answer: IMAPClient reports it as a
    # LoginError, which once parked the mailbox as needs-reauth.
    listener = socket.create_server(("127.0.0.1", 0))

    def serve_then_hang_up() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"* OK ready\r\n")
            while (line := lines.readline()) and b" LOGIN " not in line.upper():
                tag = line.split(b" ", 1)[0]
                conn.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
            # LOGIN: no answer, the connection just ends

    threading.Thread(target=serve_then_hang_up, daemon=True).start()
    settings = ConnectionSettings("127.0.0.1", listener.getsockname()[1], "alice", security="plain", read_timeout=5)
    with pytest.raises(ConnectionFailed, match="broke during the login"):
        ImapSession(settings).connect("pw")
    listener.close()
