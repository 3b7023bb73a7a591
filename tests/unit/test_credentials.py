"""The credential store against real keyring backends, chosen through keyring's own configuration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from keyrings.alt.file import PlaintextKeyring

from futurnal.storage.credentials import CredentialStore
from futurnal.storage.errors import KeyringUnavailable


def _file_backend(path: Path) -> PlaintextKeyring:
    backend = PlaintextKeyring()
    backend.file_path = str(path)  # type: ignore[misc]
    return backend


def test_secrets_round_trip_and_are_deleted(tmp_path: Path) -> None:
    store = CredentialStore(_file_backend(tmp_path / "k.cfg"))
    store.set_secret("alice", "password", "s3cret-pw")
    assert store.get_secret("alice", "password") == "s3cret-pw"
    assert store.get_secret("bob", "password") is None
    assert store.delete_secrets("alice") == ["password"]
    assert store.get_secret("alice", "password") is None


def test_unknown_secret_kinds_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        CredentialStore(_file_backend(tmp_path / "k.cfg")).set_secret("alice", "pin", "1")


def _run_isolated(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """keyring picks its backend once per process, so each configuration gets its own."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)


CHECK = (
    "from futurnal.storage.credentials import CredentialStore\n"
    "from futurnal.storage.errors import KeyringUnavailable\n"
    "try:\n    CredentialStore().set_secret('alice', 'password', 'pw-123')\n"
    "except KeyringUnavailable as e:\n    print('REFUSED', e)\nelse:\n    print('STORED')\n"
)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHON_KEYRING_BACKEND"}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"))
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    env.update(extra)
    return env


def test_no_silent_fallback_to_a_plaintext_file(tmp_path: Path) -> None:
    """keyrings.alt is installed here, and keyring would pick its plaintext file on its own."""
    done = _run_isolated(CHECK, _env(tmp_path))
    assert done.stdout.startswith("REFUSED"), done.stdout + done.stderr
    assert "PYTHON_KEYRING_BACKEND" in done.stdout
    assert not list((tmp_path / "data").rglob("*.cfg"))


def test_a_backend_chosen_with_python_keyring_backend_is_used(tmp_path: Path) -> None:
    done = _run_isolated(CHECK, _env(tmp_path, PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring"))
    assert done.stdout.strip() == "STORED", done.stderr
    assert "alice_2fpassword" in "".join(p.read_text() for p in (tmp_path / "data").rglob("*.cfg"))


def test_a_backend_chosen_in_keyringrc_is_used(tmp_path: Path) -> None:
    rc = tmp_path / "config" / "python_keyring" / "keyringrc.cfg"
    rc.parent.mkdir(parents=True)
    rc.write_text("[backend]\ndefault-keyring=keyrings.alt.file.PlaintextKeyring\n")
    done = _run_isolated(CHECK, _env(tmp_path))
    assert done.stdout.strip() == "STORED", done.stdout + done.stderr


def test_the_fail_backend_is_refused_even_when_configured(tmp_path: Path) -> None:
    done = _run_isolated(CHECK, _env(tmp_path, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring"))
    assert done.stdout.startswith("REFUSED"), done.stdout + done.stderr


def test_refusal_message_is_actionable() -> None:
    from keyring.backends.fail import Keyring as FailKeyring

    with pytest.raises(KeyringUnavailable, match="Nothing was stored"):
        CredentialStore(FailKeyring()).check_usable()
