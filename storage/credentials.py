"""Secrets (passwords, refresh tokens) in the OS keyring, never in a state file."""

from __future__ import annotations

import os

import keyring
import keyring.core
import keyring.errors
from keyring.backend import KeyringBackend

from .errors import KeyringUnavailable

__all__ = ["CredentialStore", "SECRET_KINDS"]

SERVICE = "futurnal-actors"
SECRET_KINDS = ("password", "refresh-token", "client-secret")


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


class CredentialStore:
    """Reads and writes one mailbox's secrets through ``keyring``, honouring its configuration.

    A ``backend`` passed in is the caller's explicit choice (the demo uses a throwaway file);
    otherwise keyring's own configuration and detection decide.
    """

    def __init__(self, backend: KeyringBackend | None = None) -> None:
        self._backend = backend
        self._chosen_by_caller = backend is not None

    @property
    def backend(self) -> KeyringBackend:
        if self._backend is None:
            self._backend = keyring.get_keyring()
        return self._backend

    def check_usable(self) -> None:
        """Raise :class:`KeyringUnavailable` with instructions unless secrets can be kept safely."""
        backend = self.backend
        chosen = self._chosen_by_caller or _explicitly_configured()
        if chosen and not backend.__class__.__module__.startswith("keyring.backends.fail"):
            return
        if not _usable(backend):
            raise KeyringUnavailable(
                f"no usable OS keyring to keep the secret in (keyring chose {_backend_name(backend)}). "
                "Start or unlock one (Secret Service / GNOME Keyring, KWallet, macOS Keychain, "
                "Windows Credential Locker), or choose a backend explicitly with PYTHON_KEYRING_BACKEND "
                f"or {keyring.core._config_path()} (for example keyrings.alt.file.EncryptedKeyring). "  # type: ignore[no-untyped-call]
                "Nothing was stored."
            )

    def set_secret(self, mailbox_id: str, kind: str, value: str) -> None:
        self.check_usable()
        try:
            self.backend.set_password(SERVICE, self._username(mailbox_id, kind), value)
        except keyring.errors.KeyringError as exc:
            raise KeyringUnavailable(f"the keyring refused to store the {kind} of {mailbox_id}: {exc}") from None

    def get_secret(self, mailbox_id: str, kind: str) -> str | None:
        try:
            return self.backend.get_password(SERVICE, self._username(mailbox_id, kind))
        except keyring.errors.KeyringError as exc:
            raise KeyringUnavailable(f"the keyring refused to give the {kind} of {mailbox_id}: {exc}") from None

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
