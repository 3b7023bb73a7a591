from __future__ import annotations

import io
import logging

from loguru import logger

from futurnal.log_setup import Redactor, configure_logging, redactor


def test_registered_secrets_never_reach_a_log_line() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    redactor.add_secret("correct horse battery")
    logger.error("login failed with correct horse battery for user")
    try:
        raise RuntimeError("server echoed correct horse battery")
    except RuntimeError:
        logger.exception("oops")
    assert "correct horse battery" not in stream.getvalue()
    assert "[secret]" in stream.getvalue()


def test_credential_shaped_values_and_protocol_logins_are_redacted() -> None:
    r = Redactor()
    text = r.redact('password=hunter2 token: abc.def > b\'A001 LOGIN alice "pw"\' Authorization: Bearer ya29.x')
    for secret in ("hunter2", "abc.def", '"pw"', "ya29.x"):
        assert secret not in text


def test_email_addresses_are_redacted_by_default_and_kept_on_request() -> None:
    r = Redactor()
    assert r.redact("sync of alice.smith@example.org done") == "sync of [email] done"
    r.redact_personal = False
    assert r.redact("sync of alice.smith@example.org done") == "sync of alice.smith@example.org done"


def test_stdlib_logging_from_libraries_goes_through_the_same_filter() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    logging.getLogger("pykka").warning("actor of bob@example.net failed")
    assert "bob@example.net" not in stream.getvalue()
    assert "[email]" in stream.getvalue()
