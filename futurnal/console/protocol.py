"""The admin console's wire format: JSON Lines over a Unix socket, one request, one reply.

A request is one line holding a JSON object::

    {"id": 7, "command": "sync", "args": {"mailbox": "alice", "folders": ["INBOX"]}}

``id`` is optional and echoed back (any JSON scalar); ``args`` is optional. The reply is one line::

    {"id": 7, "ok": true, "result": {...}}
    {"id": 7, "ok": false, "error": {"code": "unknown-mailbox", "message": "..."}}

``subscribe`` is the one exception: its reply is followed by one line per event,
``{"event": "sync-finished", ...}``, until the client closes the connection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from futurnal.storage.json_lines import one_line

__all__ = [
    "MAX_LINE_BYTES",
    "ProtocolError",
    "Request",
    "console_socket_path",
    "decode_request",
    "encode_line",
    "error_reply",
    "ok_reply",
]

#: Longer request lines are refused: no command needs more, and a client must not exhaust memory.
MAX_LINE_BYTES = 1 << 20

#: Unix socket paths are limited to 107 bytes by the kernel (``sun_path``).
_MAX_SOCKET_PATH = 107


class ProtocolError(Exception):
    """A request the server cannot act on; ``code`` is the machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Request:
    command: str
    args: dict[str, Any] = field(default_factory=dict)
    id: Any = None


def console_socket_path(data_dir: Path) -> Path:
    """Where the running process listens: ``<data dir>/console.sock``."""
    path = Path(data_dir) / "console.sock"
    if len(str(path).encode()) > _MAX_SOCKET_PATH:
        raise ProtocolError(
            "path-too-long",
            f"{path}: too long for a Unix socket ({_MAX_SOCKET_PATH} bytes at most); use a shorter --data-dir",
        )
    return path


def decode_request(line: bytes) -> Request:
    """Parse one request line, or raise :class:`ProtocolError` saying what is wrong with it."""
    try:
        doc = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("bad-json", f"not a JSON object: {exc}") from None
    if not isinstance(doc, dict):
        raise ProtocolError("bad-request", "a request is a JSON object with a \"command\"")
    command, args, request_id = doc.get("command"), doc.get("args", {}), doc.get("id")
    if not isinstance(command, str) or not command:
        raise ProtocolError("bad-request", "\"command\" must be a non-empty string")
    if not isinstance(args, dict):
        raise ProtocolError("bad-request", "\"args\" must be a JSON object")
    if isinstance(request_id, (dict, list)):
        raise ProtocolError("bad-request", "\"id\" must be a string, a number or null")
    unknown = sorted(set(doc) - {"command", "args", "id"})
    if unknown:
        raise ProtocolError("bad-request", f"unknown request field(s): {', '.join(unknown)}")
    return Request(command, args, request_id)


def ok_reply(request_id: Any, result: Any) -> dict[str, Any]:
    return {"id": request_id, "ok": True, "result": result}


def error_reply(request_id: Any, code: str, message: str) -> dict[str, Any]:
    return {"id": request_id, "ok": False, "error": {"code": code, "message": message}}


def encode_line(doc: dict[str, Any]) -> bytes:
    """One compact JSON line; ``default=str`` so a stray timestamp never breaks a reply."""
    return one_line(json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=str)).encode() + b"\n"
