"""The credential store against real keyring backends, chosen through keyring's own configuration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from keyrings.alt.file import PlaintextKeyring

from futurnal.storage.credentials import CredentialStore
from futurnal.storage.data_dir import DataDir
from futurnal.storage.encrypted_file_keyring import EncryptedFileKeyring
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
    assert "PYTHON_KEYRING_BACKEND" in done.stdout and "FUTURNAL_SECRETS_STORE=file" in done.stdout
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


# -- which store a data directory uses --------------------------------------------------------------


def _for(data_dir: Path, **environ: str) -> CredentialStore:
    return CredentialStore(data_dir=DataDir(data_dir), environ=environ)


def test_the_encrypted_file_is_chosen_by_the_variable_then_by_the_data_directory_itself(tmp_path: Path) -> None:
    """Once the data directory has its secrets file, every command on it keeps to it, whatever its
    environment (an operator's `imap add` without the service's variables)."""
    assert not isinstance(_for(tmp_path / "d").backend, EncryptedFileKeyring)  # the OS keyring, by default
    store = _for(tmp_path / "d", FUTURNAL_SECRETS_STORE="file")
    assert isinstance(store.backend, EncryptedFileKeyring)
    store.check_usable()
    store.set_secret("alice", "password", "pw-alice")
    assert _for(tmp_path / "d").get_secret("alice", "password") == "pw-alice"
    assert _for(tmp_path / "d", FUTURNAL_SECRETS_STORE="file").delete_secrets("alice") == ["password"]


def test_a_variable_contradicting_the_data_directory_or_unknown_is_refused(tmp_path: Path) -> None:
    _for(tmp_path / "d", FUTURNAL_SECRETS_STORE="file").set_secret("alice", "password", "pw-alice")
    with pytest.raises(KeyringUnavailable, match="secrets.enc"):
        _ = _for(tmp_path / "d", FUTURNAL_SECRETS_STORE="keyring").backend
    with pytest.raises(KeyringUnavailable, match="keyring .* or file"):
        _ = _for(tmp_path / "e", FUTURNAL_SECRETS_STORE="encrypted").backend


def test_prepare_checks_the_file_store_and_leaves_the_os_keyring_alone(tmp_path: Path) -> None:
    store = _for(tmp_path / "d", FUTURNAL_SECRETS_STORE="file")
    store.prepare()
    assert (tmp_path / "d" / "secrets.enc").exists() and (tmp_path / "d" / "secrets.key").exists()
    (tmp_path / "d" / "secrets.key").unlink()
    with pytest.raises(KeyringUnavailable, match="no key"):
        _for(tmp_path / "d").prepare()
    CredentialStore(_file_backend(tmp_path / "k.cfg")).prepare()
    assert not (tmp_path / "k.cfg").exists()


def test_a_backend_that_prompts_with_stdin_closed_is_one_error_not_an_eoferror(tmp_path: Path) -> None:
    class Prompting(PlaintextKeyring):
        def get_password(self, service: str, username: str) -> str | None:
            raise EOFError

        def set_password(self, service: str, username: str, password: str) -> None:
            raise EOFError

    store = CredentialStore(Prompting())
    with pytest.raises(KeyringUnavailable, match="FUTURNAL_SECRETS_STORE=file"):
        store.get_secret("alice", "password")
    with pytest.raises(KeyringUnavailable, match="nobody to type it"):
        store.set_secret("alice", "password", "pw")
