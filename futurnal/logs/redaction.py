"""The one redaction filter of every log line: secrets always, personal data by default.

Secrets (passwords, tokens, credential-shaped values, protocol login lines) become ``[secret]``.
Personal data becomes a keyed token, the same for the same value within one data directory and
meaningless without that directory's key: e-mail addresses (``<addr:3f9a1c07>``), subjects
(``<subject:...>``), attachment file names (``<file:...>``) and paths under the user's home
(``<path:...>``). Addresses and home paths are found in any text; subjects and file names cannot
be recognised, so log calls pass them as structured fields, which the filter masks wherever
they appear in the line::

    log.debug("parsed {subject}", subject=message_subject)   # -> "parsed <subject:9b2e41d0>"
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
from pathlib import Path
from typing import Any

from futurnal.storage.log_key import load_or_create_log_key
from futurnal.storage.registry import default_mailbox_id

__all__ = ["PERSONAL_FIELDS", "Redactor"]

#: Structured log fields (``logger.bind`` or keyword arguments) that hold personal data -> token
#: kind. A field's value is a string, or a list or tuple of strings (``filenames=[...]``).
PERSONAL_FIELDS = {
    "subject": "subject", "filename": "file", "filenames": "file", "address": "addr", "addresses": "addr",
    "path": "path",
}

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+")
_CREDENTIAL_PAIRS = re.compile(
    r"(?i)\b(password|passwd|pass|secret|token|access_token|refresh_token|client_secret|code)"
    r"(\s*[=:]\s*|\"\s*:\s*\")([^\s\"',&]+)"
)
# IMAP commands as protocol logs show them (upper case), and HTTP authorization schemes.
_AUTH_LINES = re.compile(r"\b(LOGIN|AUTHENTICATE\s+\S+|(?i:bearer|basic))\s+\S+(\s+\S+)?")


class Redactor:
    """Replaces known secrets, credential-looking values and (by default) personal data.

    Secrets are registered as they are read (a password from stdin, a token from the keyring),
    so even a secret echoed inside an exception text never reaches a log line. Until
    :meth:`use_key_file` names the data directory's key, tokens use a key of this process only.
    """

    def __init__(self, home: str | None = None) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._personal_ids: set[str] = set()  # mailbox ids made from an address: masked like one
        self._key: bytes | None = None
        self._key_file: Path | None = None
        self.redact_personal = True
        home = os.path.expanduser("~") if home is None else home
        # A home of "/" (some service users) would make every absolute path personal.
        self._home_paths = (
            re.compile(re.escape(home.rstrip("/")) + r"(?:/[^\s'\"()\[\]<>,;]*)?(?![\w.-])")
            if home.rstrip("/") else None
        )

    def add_secret(self, secret: str | None) -> None:
        if secret and len(secret) >= 3:
            with self._lock:
                self._secrets.add(secret)

    def add_mailbox(self, mailbox_id: str, email: str) -> None:
        """Mask ``mailbox_id`` in logs (``<mailbox:...>``) when it was made from the mailbox's
        address (``imap add`` without ``--id``): else every log line would spell the address."""
        if mailbox_id == default_mailbox_id(email):
            with self._lock:
                self._personal_ids.add(mailbox_id)

    def use_key_file(self, path: Path) -> None:
        """Take the token key from ``path`` (created on first use), so tokens match across runs."""
        with self._lock:
            self._key_file, self._key = path, None

    def token(self, kind: str, value: str) -> str:
        """``<kind:8 hex digits>``: an HMAC-SHA256 of the value under the data directory's key."""
        if kind == "addr":
            value = value.lower()  # addresses are case-insensitive in practice
        digest = hmac.new(self._token_key(), f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()
        return f"<{kind}:{digest[:8]}>"

    def redact(self, text: str, *, paths: bool = True) -> str:
        """``text`` without secrets, and without personal data unless ``redact_personal`` is off.

        ``paths=False`` keeps home paths and mailbox ids, for the error lines of the service
        (``run``): its stderr is its log, but an error must name the config file to fix, or the
        mailbox. What a command tells the user on their own terminal needs only
        :meth:`secrets_only`.
        """
        with self._lock:
            ids = sorted(self._personal_ids, key=len, reverse=True) if paths else []
        text = self.secrets_only(text)
        if self.redact_personal:
            if ids:  # before addresses: an id holds one's parts, and must become one token
                # Bounded by what cannot be part of an id, so "<id>.json" and "<id>." are masked too.
                text = re.sub("|".join(f"(?<![\\w-]){re.escape(i)}(?![\\w-])" for i in ids),
                              lambda m: self.token("mailbox", m.group(0)), text)
            text = _EMAIL.sub(lambda m: self.token("addr", m.group(0)), text)
            if paths and self._home_paths is not None:
                text = self._home_paths.sub(lambda m: self.token("path", m.group(0)), text)
        return text

    def secrets_only(self, text: str) -> str:
        """``text`` without secrets, and nothing else masked: for what a command tells the user on
        their own terminal (an error naming their address, the file to fix, the mailbox to name
        next), which is not a log and would be useless with tokens in it."""
        with self._lock:
            known = sorted(self._secrets, key=len, reverse=True)
        for secret in known:
            text = text.replace(secret, "[secret]")
        text = _CREDENTIAL_PAIRS.sub(lambda m: f"{m.group(1)}{m.group(2)}[secret]", text)
        return _AUTH_LINES.sub(lambda m: f"{m.group(1)} [secret]", text)

    def patch(self, record: Any) -> None:
        """loguru patcher: the message and bound fields, before any sink (an embedder's too) sees them."""
        extra = record["extra"]
        if self.redact_personal:
            values: list[tuple[str, str]] = []
            for name, kind in PERSONAL_FIELDS.items():
                value = extra.get(name)
                if not value:
                    continue
                items = [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
                values += [(item, kind) for item in items if item]
                tokens = [self.token(kind, item) for item in items]
                extra[name] = tokens if isinstance(value, (list, tuple)) else tokens[0]
            if values:
                record["message"] = self._mask_values(record["message"], dict(values))
        record["message"] = self.redact(record["message"])
        for key, value in list(extra.items()):
            if isinstance(value, str):
                extra[key] = self.redact(value)

    def _mask_values(self, text: str, kinds: dict[str, str]) -> str:
        """Every occurrence of each value as a whole (a short subject "Hi" not inside "High"), in
        one pass, longest first, so a subject containing a file name is masked whole and no
        token is masked again."""
        ordered = sorted(kinds, key=len, reverse=True)
        pattern = "|".join(
            ("(?<!\\w)" if value[0].isalnum() else "") + re.escape(value) + ("(?!\\w)" if value[-1].isalnum() else "")
            for value in ordered
        )
        return re.sub(pattern, lambda m: self.token(kinds[m.group(0)], m.group(0)), text)

    def _token_key(self) -> bytes:
        with self._lock:
            if self._key is None:
                try:
                    self._key = load_or_create_log_key(self._key_file) if self._key_file else None
                except (OSError, ValueError):
                    self._key = None  # an unwritable data dir: tokens hold for this process only
                if self._key is None:
                    self._key = secrets.token_bytes(32)
            return self._key
