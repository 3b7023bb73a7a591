"""A wrong --security for the port is named as such, not as an unreachable server (real Dovecot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from futurnal.demo.dovecot import DovecotServer

from .cli import Cli

pytestmark = pytest.mark.integration


def _add(cli: Cli, server: DovecotServer, port: int, security: str) -> tuple[int, str]:
    done = cli("imap", "add", "--email", "alice@example.org", "--host", server.host, "--port", str(port),
               "--username", "alice", "--password-stdin", "--security", security, "--cafile", str(server.cert_path),
               "--consent", stdin="secret-pw\n", timeout=120)
    return done.code, done.err


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    made = Cli(tmp_path)
    made.env["FUTURNAL_NETWORK_CONNECT_TIMEOUT_SECONDS"] = "2"  # the greeting that never comes
    return made


def test_starttls_or_plain_against_the_implicit_tls_port_says_to_use_tls(cli: Cli, dovecot: DovecotServer) -> None:
    for security in ("starttls", "plain"):
        code, err = _add(cli, dovecot, dovecot.imaps_port, security)
        assert code != 0
        assert "expects TLS from the first byte" in err and "--security tls" in err, err
        assert "cannot reach" not in err and "Traceback" not in err
    assert cli("imap", "list", "--json").json() == []  # nothing registered


def test_tls_against_the_plain_port_says_it_is_a_starttls_port(cli: Cli, dovecot: DovecotServer) -> None:
    code, err = _add(cli, dovecot, dovecot.imap_port, "tls")
    assert code != 0
    assert "speaks plain IMAP" in err and "--security starttls" in err, err
    assert "wrong version number" not in err.lower() and "Traceback" not in err


def test_the_right_modes_still_connect(cli: Cli, dovecot: DovecotServer) -> None:
    assert _add(cli, dovecot, dovecot.imaps_port, "tls")[0] == 0
