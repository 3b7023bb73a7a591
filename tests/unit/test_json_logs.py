"""``--log-format json``: one valid JSON object per line, through the same redaction as text."""

from __future__ import annotations

import io
import json
import logging

from loguru import logger

from futurnal.cli.main import build_parser
from futurnal.logs.configure import configure_logging, redactor


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_log_line_is_one_redacted_json_object() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream, log_format="json")
    try:
        redactor.add_secret("s3cret-\"quoted\\pw")
        logger.bind(mailbox="alice").info('login as bob@example.org with s3cret-"quoted\\pw failed; password=hunter2')
        try:
            raise RuntimeError("server echoed s3cret-\"quoted\\pw")
        except RuntimeError:
            logger.exception("sync failed")
        logger.info("no mailbox here")
    finally:
        configure_logging("WARNING")
    first, second, third = _lines(stream)
    assert set(first) == {"time", "level", "message", "mailbox"}
    assert first["level"] == "INFO" and first["mailbox"] == "alice"
    assert str(first["time"]).endswith("Z")
    assert first["message"] == f"login as {redactor.token('addr', 'bob@example.org')} with [secret] failed; password=[secret]"
    assert second["level"] == "ERROR" and second["exception"] == "RuntimeError: server echoed [secret]"
    assert "mailbox" not in third
    assert "s3cret" not in stream.getvalue() and "hunter2" not in stream.getvalue()


def test_a_log_line_stays_one_line_whatever_a_server_wrote() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream, log_format="json")
    try:
        logger.info("server said: a\u2028b\u2029c\x85d")
    finally:
        configure_logging("WARNING")
    (line,) = _lines(stream)
    assert line["message"] == "server said: a\u2028b\u2029c\x85d"


def test_stdlib_logging_is_json_too() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream, log_format="json")
    try:
        logging.getLogger("imapclient").warning("token=abc123 refused")
    finally:
        configure_logging("WARNING")
    (line,) = _lines(stream)
    assert line["message"] == "token=[secret] refused" and line["level"] == "WARNING"


def test_the_command_line_takes_a_log_format_and_run_takes_a_config_file() -> None:
    args = build_parser().parse_args(["--log-format", "json", "run", "--config", "/etc/futurnal.toml"])
    assert args.log_format == "json" and str(args.config) == "/etc/futurnal.toml"
    assert build_parser().parse_args(["run"]).log_format == "text"
