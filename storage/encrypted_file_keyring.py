"""Secrets in one encrypted file of the data directory: the store of a service that runs with no
desktop session, so with no OS keyring to unlock and nobody to type a keyring password.

``<data dir>/secrets.enc`` holds every secret of the data directory as one JSON document, encrypted
with AES-256-GCM: authenticated, so a changed byte or another key is detected, never read as data.
The key comes from, in this order:

1. the systemd credential ``futurnal-secrets-key`` (``LoadCredential=`` or
   ``LoadCredentialEncrypted=`` in the unit), i.e. ``$CREDENTIALS_DIRECTORY/futurnal-secrets-key``;
2. the file named by ``FUTURNAL_SECRETS_KEY_FILE``;
3. ``<data dir>/secrets.key``.

Any file of at least 32 bytes is a key (raw random bytes, ``openssl rand -base64 32``, a systemd
credential): the cipher key is derived from its bytes with HKDF-SHA256. A key file of 2. or 3.
that does not exist is created (32 random bytes, 0600) when the first secret is stored, and only
then: once the secrets file exists, a missing key is an error, so no key is ever replaced behind
the user's back. Nothing here ever prompts. The file is replaced atomically; its writers (a CLI
command, the running service renewing a refresh token) take turns under a lock; a file that does
not decrypt is reported, naming it, and left untouched.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import PasswordDeleteError

from .atomic import atomic_write_bytes, create_file_once
from .errors import CorruptStateFile, KeyringUnavailable
from .lock import writers_take_turns

__all__ = ["CREDENTIAL_NAME", "KEY_FILE_VARIABLE", "MIN_KEY_BYTES", "EncryptedFileKeyring", "KeySource", "find_key"]

#: The name of the key among the unit's systemd credentials.
CREDENTIAL_NAME = "futurnal-secrets-key"
#: The environment variable naming a key file outside the data directory.
KEY_FILE_VARIABLE = "FUTURNAL_SECRETS_KEY_FILE"
MIN_KEY_BYTES = 32
# The file: _MAGIC, the key's id, a nonce, then the ciphertext with its tag. The first two are
# authenticated with it, so a file cannot be passed off under another version or key id.
_MAGIC = b"futurnal-actors secrets 1\n"
_KEY_ID_BYTES = 8
_NONCE_BYTES = 12
_TAG_BYTES = 16
_HKDF_INFO = b"futurnal-actors secrets.enc: AES-256-GCM key and key id"

Entries = dict[str, dict[str, str]]  # service -> username -> secret


@dataclass(frozen=True, slots=True)
class KeySource:
    """Where the key of a secrets file is read from."""

    path: Path
    #: How it was found, for messages: "systemd credential futurnal-secrets-key", ...
    origin: str
    #: A systemd credential is the service manager's: never created or checked for mode here.
    from_service_manager: bool = False

    def __str__(self) -> str:
        return f"{self.path} ({self.origin})"


def find_key(default: Path, environ: Mapping[str, str] | None = None) -> KeySource:
    """The key's place: the systemd credential when the service manager passed one, else the file
    ``FUTURNAL_SECRETS_KEY_FILE`` names, else ``default`` (the data directory's key file)."""
    environ = os.environ if environ is None else environ
    if (directory := environ.get("CREDENTIALS_DIRECTORY")) and (Path(directory) / CREDENTIAL_NAME).is_file():
        return KeySource(Path(directory) / CREDENTIAL_NAME, f"systemd credential {CREDENTIAL_NAME}", True)
    if named := environ.get(KEY_FILE_VARIABLE):
        return KeySource(Path(os.path.abspath(Path(named).expanduser())), f"named by {KEY_FILE_VARIABLE}")
    return KeySource(default, "the data directory's key")


@dataclass(frozen=True, slots=True)
class _Key:
    cipher: AESGCM
    key_id: bytes


class EncryptedFileKeyring(KeyringBackend):
    """A ``keyring`` backend over one encrypted file; futurnal-actors chooses it for a data
    directory (:mod:`.credentials`), ``keyring``'s own detection never does."""

    def __init__(self, path: Path, key: KeySource) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.path = path
        self.key = key

    @properties.classproperty
    def priority(cls) -> float:
        raise RuntimeError("chosen by futurnal-actors for a data directory, never by keyring's detection")

    def __str__(self) -> str:
        return f"encrypted file {self.path}, key {self.key}"

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(service, {}).get(username)

    def set_password(self, service: str, username: str, password: str) -> None:
        with writers_take_turns(self._lock_path()):
            key = self._key_for_writing()
            entries = self._load(key)
            entries.setdefault(service, {})[username] = password
            self._save(entries, key)

    def delete_password(self, service: str, username: str) -> None:
        with writers_take_turns(self._lock_path()):
            entries = self._load()
            if username not in entries.get(service, {}):
                raise PasswordDeleteError(f"no secret {username!r} of {service!r} in {self.path}")
            del entries[service][username]
            if not entries[service]:
                del entries[service]
            self._save(entries, self._key_of_file())

    def prepare(self) -> None:
        """Make sure the secrets stored can be read: the key is there and right, the file whole.
        On first use the key (where it may be created) and an empty file are made, so that every
        later command on the data directory keeps to this store."""
        with writers_take_turns(self._lock_path()):
            key = self._key_for_writing()
            if self.path.exists():
                self._load(key)
            else:
                self._save({}, key)

    def check(self) -> None:
        """Raise unless a secret can be stored and the stored ones read; creates nothing."""
        if self.path.exists():
            self._load()
        elif self.key.path.exists():
            _read_key(self.key)

    # -- the file ---------------------------------------------------------------------------------

    def _lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def _load(self, key: _Key | None = None) -> Entries:
        """The secrets in the file (none when there is no file), decrypted with ``key`` or its own."""
        blob = self._read_file()
        if blob is None:
            return {}
        key = key or self._key_of_file()
        header = len(_MAGIC) + _KEY_ID_BYTES
        if not blob.startswith(_MAGIC) or len(blob) < header + _NONCE_BYTES + _TAG_BYTES:
            raise CorruptStateFile(str(self.path), "not a futurnal-actors secrets file")
        if blob[len(_MAGIC):header] != key.key_id:
            raise KeyringUnavailable(
                f"the secrets file {self.path} was written with another key than {self.key}: give it the key it "
                "was written with; the file was left untouched"
            )
        try:
            plain = key.cipher.decrypt(blob[header:header + _NONCE_BYTES], blob[header + _NONCE_BYTES:], blob[:header])
        except InvalidTag:
            raise CorruptStateFile(str(self.path), "it fails its integrity check: it was changed or damaged") from None
        entries = _entries(plain)
        if entries is None:
            raise CorruptStateFile(str(self.path), "it decrypts, but not to a table of secrets")
        return entries

    def _read_file(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise KeyringUnavailable(f"cannot read the secrets file {self.path}: {exc.strerror or exc}") from None

    def _save(self, entries: Entries, key: _Key) -> None:
        header = _MAGIC + key.key_id
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = key.cipher.encrypt(nonce, json.dumps(entries, sort_keys=True).encode(), header)
        try:
            atomic_write_bytes(self.path, header + nonce + sealed)  # 0600
        except OSError as exc:
            raise KeyringUnavailable(f"cannot write the secrets file {self.path}: {exc.strerror or exc}") from None

    # -- the key ----------------------------------------------------------------------------------

    def _key_of_file(self) -> _Key:
        """The key of the existing secrets file: a missing one is an error, never made anew."""
        try:
            return _read_key(self.key)
        except FileNotFoundError:
            raise KeyringUnavailable(
                f"no key for the secrets file {self.path}: {self.key} does not exist. Restore it, or name the key "
                f"the file was written with ({KEY_FILE_VARIABLE}, or the systemd credential {CREDENTIAL_NAME}); "
                "nothing was changed"
            ) from None

    def _key_for_writing(self) -> _Key:
        """The key; created where it may be when neither it nor the secrets file exists yet."""
        if self.path.exists():
            return self._key_of_file()
        try:
            return _read_key(self.key)
        except FileNotFoundError:
            pass
        try:
            create_file_once(self.key.path, secrets.token_bytes(MIN_KEY_BYTES))
        except OSError as exc:
            raise KeyringUnavailable(f"cannot create the secrets key {self.key}: {exc.strerror or exc}") from None
        return _read_key(self.key)


def _read_key(source: KeySource) -> _Key:
    """The key in ``source``; FileNotFoundError when there is none."""
    try:
        fd = os.open(source.path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise KeyringUnavailable(f"cannot read the secrets key {source}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        material = handle.read()
    if not source.from_service_manager and mode & 0o007:
        raise KeyringUnavailable(f"the secrets key {source} can be read by every user of this machine: "
                                 f"chmod o-rwx {source.path}")
    if len(material) < MIN_KEY_BYTES:
        raise KeyringUnavailable(f"the secrets key {source} holds {len(material)} bytes; a key needs at least "
                                 f"{MIN_KEY_BYTES} random bytes (head -c 32 /dev/urandom)")
    derived = HKDF(algorithm=hashes.SHA256(), length=32 + _KEY_ID_BYTES, salt=None, info=_HKDF_INFO).derive(material)
    return _Key(AESGCM(derived[:32]), derived[32:])


def _entries(plain: bytes) -> Entries | None:
    """The decrypted document as secrets by service and username, or None if it is not one."""
    try:
        document: Any = json.loads(plain)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    for by_user in document.values():
        if not isinstance(by_user, dict) or not all(isinstance(v, str) for v in by_user.values()):
            return None
    return document
