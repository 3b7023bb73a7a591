"""Logging: loguru configured once at start, with every line passed through a redaction filter."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC
from typing import Any, TextIO

from loguru import logger

from futurnal.storage.json_lines import one_line

from .inert_text import visible
from .redaction import Redactor

__all__ = ["LOG_FORMATS", "Redactor", "configure_logging", "redactor"]

#: ``text`` for people, ``json`` for log collectors: one JSON object per line.
LOG_FORMATS = ("text", "json")

#: The process's redactor; secrets are registered here as they are read.
redactor = Redactor()


class _ToLoguru(logging.Handler):
    """Sends stdlib logging (Pykka, IMAPClient) through loguru and so through the redactor."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def _format(record: Any) -> str:
    """A text line whose message and mailbox are inert: a server's ESC or newline in a folder name
    or an answer is shown escaped, so it neither drives the terminal nor forges a log line."""
    extra = record["extra"]
    extra["shown_message"] = visible(record["message"])
    where = ""
    if extra.get("mailbox"):
        extra["shown_mailbox"] = visible(extra["mailbox"])
        where = " [{extra[shown_mailbox]}]"
    return ("<green>{time:YYYY-MM-DD HH:mm:ss}</green> <level>{level: <7}</level> {extra[shown_message]}"
            + where + "\n{exception}")


def _json_line(record: Any) -> str:
    """One JSON object: time (UTC, ISO 8601), level, message, mailbox when bound, exception when any."""
    entry: dict[str, Any] = {
        "time": record["time"].astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": record["level"].name,
        "message": redactor.redact(record["message"]),
    }
    if record["extra"].get("mailbox"):
        entry["mailbox"] = redactor.redact(str(record["extra"]["mailbox"]))
    if record["exception"] is not None:
        exc_type, exc_value, _tb = record["exception"]
        entry["exception"] = redactor.redact(f"{exc_type.__name__ if exc_type else 'Exception'}: {exc_value}")
    return one_line(json.dumps(entry, ensure_ascii=False))


def configure_logging(
    level: str = "WARNING", *, redact_personal: bool = True, stream: TextIO | None = None, log_format: str = "text"
) -> None:
    """Configure the one sink (``log_format`` ``text`` or ``json``); call once, at start."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}")
    redactor.redact_personal = redact_personal
    logger.remove()
    logger.configure(patcher=redactor.patch)
    out = stream or sys.stderr

    def write(line: str) -> None:
        # The formatted line includes any traceback, whose text the patcher never saw.
        out.write(redactor.redact(line))
        out.flush()

    def write_json(message: Any) -> None:
        # Each field is redacted before serialising (the exception text too, which the patcher
        # never saw): redacting the serialised line could cut through a JSON escape.
        out.write(_json_line(message.record) + "\n")
        out.flush()

    # diagnose=False: loguru would otherwise print local variables, passwords included.
    if log_format == "json":
        logger.add(write_json, level=level.upper(), format="{message}", colorize=False, backtrace=False,
                   diagnose=False)
    else:
        logger.add(write, level=level.upper(), format=_format, colorize=False, backtrace=False, diagnose=False)
    logging.basicConfig(handlers=[_ToLoguru()], level=logging.WARNING, force=True)
