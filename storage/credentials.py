"""Secrets (passwords, refresh tokens) in the OS keyring, or in the data directory's encrypted
secrets file for a service without a desktop session; never in a state file.

Which of the two a data directory uses is decided here, from the data directory itself, so that
every command given the same ``--data-dir`` (``imap add`` typed by an operator, the service's
``run``) agrees: once ``<data dir>/secrets.enc`` exists, it is the store, whatever the
environment says; before that, ``FUTURNAL_SECRETS_STORE=file`` chooses it, and by default the OS
keyring is used, through ``keyring``'s own configuration.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import keyring
import keyring.core
import keyring.errors
from keyring.backend import KeyringBackend

from .data_dir import DataDir
from .encrypted_file_keyring import EncryptedFileKeyring, find_key
from .errors import KeyringUnavailable

__all__ = ["CredentialStore", "SECRET_KINDS", "STORES", "STORE_VARIABLE"]

SERVICE = "futurnal-actors"
SECRET_KINDS = ("password", "refresh-token", "client-secret")
#: The environment variable that chooses a data directory's secret store before it has one.
STORE_VARIABLE = "FUTURNAL_SECRETS_STORE"
#: Its values: the OS keyring (the default), or the data directory's encrypted file.
STORES = ("keyring", "file")


def _explicitly_configured() -> bool:
    """True when the user chose a backend through keyring's own configuration."""
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        return True
    try:
        return keyring.core.load_config() is not None
    except Exception:  # a broken keyringrc is reported by keyring itself on use
        return False


def _usable(backend: KeyringBackend) -> bool:
    """Whether keyring's automatic choice is one we may use without the user saying so.

    Auto-detected backends below priority 1 are keyring's "not recommended" ones, which includes
    ``keyrings.alt``'s plaintext file: using it silently would write secrets in clear.
    """
    children = getattr(backend, "backends", None)
    if children is not None:  # the chainer backend: usable when one of its members is
        return any(_usable(child) for child in children)
    if backend.__class__.__module__.startswith(("keyring.backends.fail", "keyring.backends.null")):
        return False
    try:
        return float(backend.priority) >= 1
    except Exception:
        return False


def _backend_name(backend: KeyringBackend) -> str:
    return f"{backend.__class__.__module__}.{backend.__class__.__name__}"


def _choose(data_dir: DataDir, environ: Mapping[str, str]) -> KeyringBackend:
    """The data directory's secret store: its secrets file when it has one or ``FUTURNAL_SECRETS_STORE``
    is ``file``, else the OS keyring; a variable that contradicts the data directory is an error."""
    wanted = environ.get(STORE_VARIABLE, "").strip()
    secrets_file = data_dir.secrets_path
    if wanted not in ("", *STORES):
        raise KeyringUnavailable(f"{STORE_VARIABLE}={wanted!r} is not a secret store: use keyring (the OS keyring, "
                                 f"the default) or file ({secrets_file}, encrypted)")
    kept_in_file = secrets_file.exists()
    if wanted == "keyring" and kept_in_file:
        raise KeyringUnavailable(
            f"{STORE_VARIABLE}=keyring, but the secrets of {data_dir.root} are kept in {secrets_file}: unset "
            f"{STORE_VARIABLE} to use them (or move the file aside and add the mailboxes again)"
        )
    if wanted == "file" or kept_in_file:
        return EncryptedFileKeyring(secrets_file, find_key(data_dir.secrets_key_path, environ))
    return keyring.get_keyring()


class CredentialStore:
    """Reads and writes one mailbox's secrets through a ``keyring`` backend.

    A ``backend`` passed in is the caller's explicit choice (the demo uses a throwaway file).
    Otherwise, given its ``data_dir``, the store is the one that data directory uses (see the
    module's text; ``environ`` defaults to ``os.environ``); without one, keyring's own
    configuration and detection decide. The choice is made at the first use, not before.
    """

    def __init__(self, backend: KeyringBackend | None = None, *, data_dir: DataDir | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self._backend = backend
        self._chosen_by_caller = backend is not None
        self._data_dir = data_dir
        self._environ = environ

    @property
    def backend(self) -> KeyringBackend:
        if self._backend is None:
            if self._data_dir is None:
                self._backend = keyring.get_keyring()
            else:
                self._backend = _choose(self._data_dir, os.environ if self._environ is None else self._environ)
        return self._backend

    def prepare(self) -> None:
        """For a process about to read secrets with nobody at a terminal (``run``, a sync): the
        encrypted file's key and content are checked now, and made on first use, so a missing or
        wrong key is one error before anything starts. The OS keyring is not asked (it may want
        to be unlocked, and each mailbox reports its own failure)."""
        backend = self.backend
        if isinstance(backend, EncryptedFileKeyring):
            backend.prepare()

    def check_usable(self) -> None:
        """Raise :class:`KeyringUnavailable` with instructions unless secrets can be kept safely."""
        backend = self.backend
        if isinstance(backend, EncryptedFileKeyring):
            backend.check()
            return
        chosen = self._chosen_by_caller or _explicitly_configured()
        if chosen and not backend.__class__.__module__.startswith("keyring.backends.fail"):
            return
        if not _usable(backend):
            raise KeyringUnavailable(
                f"no usable OS keyring to keep the secret in (keyring chose {_backend_name(backend)}). "
                "Start or unlock one (a Secret Service such as GNOME Keyring, or KWallet), "
                "or choose a backend explicitly with PYTHON_KEYRING_BACKEND "
                f"or {keyring.core._config_path()}; "  # type: ignore[no-untyped-call]
                f"or, for a service or a machine without a desktop session, set {STORE_VARIABLE}=file to keep "
                "secrets in an encrypted file of the data directory (README: \"Secrets and the keyring\"). "
                "Nothing was stored."
            )

    def set_secret(self, mailbox_id: str, kind: str, value: str) -> None:
        self.check_usable()
        try:
            self.backend.set_password(SERVICE, self._username(mailbox_id, kind), value)
        except keyring.errors.KeyringError as exc:
            raise KeyringUnavailable(f"the keyring refused to store the {kind} of {mailbox_id}: {exc}") from None
        except EOFError:
            raise self._prompted() from None

    def get_secret(self, mailbox_id: str, kind: str) -> str | None:
        try:
            return self.backend.get_password(SERVICE, self._username(mailbox_id, kind))
        except keyring.errors.KeyringError as exc:
            raise KeyringUnavailable(f"the keyring refused to give the {kind} of {mailbox_id}: {exc}") from None
        except EOFError:
            raise self._prompted() from None

    def _prompted(self) -> KeyringUnavailable:
        """A backend that asks for its own password (keyrings.alt's EncryptedKeyring) met a closed
        standard input: a service's, or a command's run with ``</dev/null``."""
        return KeyringUnavailable(
            f"the keyring backend {_backend_name(self.backend)} asked for a password with nobody to type it "
            f"(standard input is closed); without a terminal, use {STORE_VARIABLE}=file (README: \"Secrets and "
            "the keyring\")"
        )

    def delete_secrets(self, mailbox_id: str) -> list[str]:
        """Delete every secret of the mailbox; returns the kinds that were there."""
        deleted = []
        for kind in SECRET_KINDS:
            try:
                self.backend.delete_password(SERVICE, self._username(mailbox_id, kind))
                deleted.append(kind)
            except keyring.errors.PasswordDeleteError:
                continue
        return deleted

    @staticmethod
    def _username(mailbox_id: str, kind: str) -> str:
        if kind not in SECRET_KINDS:
            raise ValueError(f"unknown secret kind {kind!r}")
        return f"{mailbox_id}/{kind}"
