"""The encrypted secrets file: what it keeps, where its key comes from, and what it refuses."""

from __future__ import annotations

import builtins
import getpass
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from keyring.errors import PasswordDeleteError

from futurnal.storage.encrypted_file_keyring import (
    CREDENTIAL_NAME,
    KEY_FILE_VARIABLE,
    EncryptedFileKeyring,
    find_key,
)
from futurnal.storage.errors import CorruptStateFile, KeyringUnavailable


@pytest.fixture(autouse=True)
def _no_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing here may ever ask anyone for anything."""
    def refuse(*_args: object, **_kwargs: object) -> str:
        raise AssertionError("prompted")

    monkeypatch.setattr(builtins, "input", refuse)
    monkeypatch.setattr(getpass, "getpass", refuse)


def _store(data: Path, **environ: str) -> EncryptedFileKeyring:
    return EncryptedFileKeyring(data / "secrets.enc", find_key(data / "secrets.key", environ))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secrets_round_trip_in_one_private_file_that_shows_none_of_them(tmp_path: Path) -> None:
    store = _store(tmp_path / "data")
    store.set_password("futurnal-actors", "alice/password", "pw-alice-1")
    store.set_password("futurnal-actors", "bob/refresh-token", "tok-bob")
    store.set_password("futurnal-actors", "alice/password", "pw-alice-2")
    assert store.get_password("futurnal-actors", "alice/password") == "pw-alice-2"
    assert store.get_password("futurnal-actors", "bob/refresh-token") == "tok-bob"
    assert store.get_password("futurnal-actors", "carol/password") is None
    assert store.get_password("other", "alice/password") is None
    # Another instance (another process) reads the same.
    assert _store(tmp_path / "data").get_password("futurnal-actors", "bob/refresh-token") == "tok-bob"

    raw = (tmp_path / "data" / "secrets.enc").read_bytes()
    for clear in (b"pw-alice", b"tok-bob", b"alice", b"password"):
        assert clear not in raw
    assert _mode(tmp_path / "data" / "secrets.enc") == 0o600
    assert _mode(tmp_path / "data" / "secrets.key") == 0o600
    assert len((tmp_path / "data" / "secrets.key").read_bytes()) == 32

    store.delete_password("futurnal-actors", "alice/password")
    assert store.get_password("futurnal-actors", "alice/password") is None
    with pytest.raises(PasswordDeleteError):
        store.delete_password("futurnal-actors", "alice/password")


def test_reading_before_anything_was_stored_finds_nothing_and_creates_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path / "data")
    assert store.get_password("futurnal-actors", "alice/password") is None
    store.check()
    with pytest.raises(PasswordDeleteError):
        store.delete_password("futurnal-actors", "alice/password")
    assert not (tmp_path / "data" / "secrets.key").exists()
    assert not (tmp_path / "data" / "secrets.enc").exists()


def test_prepare_makes_the_key_and_an_empty_file_once(tmp_path: Path) -> None:
    store = _store(tmp_path / "data")
    store.prepare()
    key = (tmp_path / "data" / "secrets.key").read_bytes()
    store.prepare()
    assert (tmp_path / "data" / "secrets.key").read_bytes() == key
    assert store.get_password("futurnal-actors", "alice/password") is None
    assert _mode(tmp_path / "data" / "secrets.enc") == 0o600


def _written(tmp_path: Path) -> tuple[EncryptedFileKeyring, Path, bytes]:
    store = _store(tmp_path / "data")
    store.set_password("futurnal-actors", "alice/password", "pw-alice")
    path = tmp_path / "data" / "secrets.enc"
    return store, path, path.read_bytes()


def test_a_wrong_key_is_refused_naming_the_file_which_is_left_untouched(tmp_path: Path) -> None:
    _store_a, path, before = _written(tmp_path)
    other = tmp_path / "other.key"
    other.write_bytes(os.urandom(32))
    other.chmod(0o600)
    store = _store(tmp_path / "data", **{KEY_FILE_VARIABLE: str(other)})
    for attempt in (lambda: store.get_password("futurnal-actors", "alice/password"),
                    lambda: store.set_password("futurnal-actors", "bob/password", "pw-bob"),
                    lambda: store.delete_password("futurnal-actors", "alice/password"),
                    store.check, store.prepare):
        with pytest.raises(KeyringUnavailable, match="another key") as refused:
            attempt()
        assert str(path) in str(refused.value) and "\n" not in str(refused.value)
    assert path.read_bytes() == before


@pytest.mark.parametrize("damage", [
    lambda raw: raw[:-1] + bytes([raw[-1] ^ 1]),  # one bit of the ciphertext's tag
    lambda raw: raw[:40] + bytes([raw[40] ^ 1]) + raw[41:],  # one bit of the nonce
    lambda raw: raw[:-20],  # cut short
    lambda raw: b"{}",  # something else entirely
    lambda raw: b"",
])
def test_a_damaged_file_is_refused_naming_it_and_left_untouched(tmp_path: Path, damage: Callable[[bytes], bytes]) -> None:
    store, path, before = _written(tmp_path)
    damaged = damage(before)
    path.write_bytes(damaged)
    for attempt in (lambda: store.get_password("futurnal-actors", "alice/password"),
                    lambda: store.set_password("futurnal-actors", "bob/password", "pw-bob"),
                    store.check, store.prepare):
        with pytest.raises(CorruptStateFile, match="left untouched") as refused:
            attempt()
        assert str(path) in str(refused.value)
    assert path.read_bytes() == damaged


def test_a_missing_key_is_an_error_and_is_not_made_anew_while_the_file_exists(tmp_path: Path) -> None:
    store, path, before = _written(tmp_path)
    key = tmp_path / "data" / "secrets.key"
    key.unlink()
    for attempt in (lambda: store.get_password("futurnal-actors", "alice/password"),
                    lambda: store.set_password("futurnal-actors", "bob/password", "pw-bob"),
                    store.check, store.prepare):
        with pytest.raises(KeyringUnavailable, match="no key for the secrets file") as refused:
            attempt()
        assert str(key) in str(refused.value) and str(path) in str(refused.value)
    assert not key.exists()
    assert path.read_bytes() == before


def test_the_systemd_credential_is_preferred_to_a_key_file(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / CREDENTIAL_NAME).write_bytes(os.urandom(48))
    (credentials / CREDENTIAL_NAME).chmod(0o400)
    named = tmp_path / "named.key"
    environ = {"CREDENTIALS_DIRECTORY": str(credentials), KEY_FILE_VARIABLE: str(named)}
    assert find_key(tmp_path / "data" / "secrets.key", environ).path == credentials / CREDENTIAL_NAME

    store = _store(tmp_path / "data", **environ)
    store.set_password("futurnal-actors", "alice/password", "pw-alice")
    assert not named.exists() and not (tmp_path / "data" / "secrets.key").exists()
    # The file opens with that credential only.
    assert _store(tmp_path / "data", CREDENTIALS_DIRECTORY=str(credentials)).get_password(
        "futurnal-actors", "alice/password") == "pw-alice"
    with pytest.raises(KeyringUnavailable):
        _store(tmp_path / "data").get_password("futurnal-actors", "alice/password")


def test_without_the_credential_the_named_key_file_then_the_data_directory_s_are_used(tmp_path: Path) -> None:
    default = tmp_path / "data" / "secrets.key"
    elsewhere = {"CREDENTIALS_DIRECTORY": str(tmp_path / "empty")}  # a unit with other credentials only
    assert find_key(default, elsewhere).path == default
    assert find_key(default, {**elsewhere, KEY_FILE_VARIABLE: str(tmp_path / "k")}).path == tmp_path / "k"

    store = _store(tmp_path / "data", **{KEY_FILE_VARIABLE: str(tmp_path / "keys" / "secrets.key")})
    store.set_password("futurnal-actors", "alice/password", "pw-alice")
    assert _mode(tmp_path / "keys" / "secrets.key") == 0o600 and _mode(tmp_path / "keys") == 0o700
    assert not default.exists()


def test_a_key_every_user_can_read_or_a_short_one_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "data" / "secrets.key"
    key.parent.mkdir()
    key.write_bytes(os.urandom(32))
    key.chmod(0o644)
    with pytest.raises(KeyringUnavailable, match="every user"):
        _store(tmp_path / "data").set_password("futurnal-actors", "alice/password", "pw")
    key.chmod(0o600)
    key.write_bytes(b"short")
    with pytest.raises(KeyringUnavailable, match="at least 32"):
        _store(tmp_path / "data").set_password("futurnal-actors", "alice/password", "pw")
    assert not (tmp_path / "data" / "secrets.enc").exists()


def test_a_key_file_made_by_hand_serves_whatever_its_bytes(tmp_path: Path) -> None:
    """`openssl rand -base64 32 > key`: text, newline and all."""
    key = tmp_path / "secrets.key"
    key.write_text("c2VjcmV0LWtleS1tYWRlLWJ5LWhhbmQtZm9yLWEtdGVzdA==\n")
    key.chmod(0o640)
    store = _store(tmp_path / "data", **{KEY_FILE_VARIABLE: str(key)})
    store.set_password("futurnal-actors", "alice/password", "pw-alice")
    assert store.get_password("futurnal-actors", "alice/password") == "pw-alice"


def test_writers_at_once_lose_nothing(tmp_path: Path) -> None:
    def write(n: int) -> None:
        store = _store(tmp_path / "data")  # one instance each, as two processes would have
        for i in range(10):
            store.set_password("futurnal-actors", f"m{n}-{i}/password", f"pw-{n}-{i}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store = _store(tmp_path / "data")
    assert all(store.get_password("futurnal-actors", f"m{n}-{i}/password") == f"pw-{n}-{i}"
               for n in range(4) for i in range(10))


def test_keyring_s_own_detection_never_picks_it() -> None:
    assert not EncryptedFileKeyring.viable
