"""Config: "did you mean" for unknown keys, and FUTURNAL_<SECTION>_<KEY> environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from futurnal.config import ConfigError, ServiceSettings, environment_variable, load_settings


def test_an_unknown_key_in_the_file_suggests_the_nearest_known_one(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[sync]\nbatch_mesages = 5\n")
    with pytest.raises(ConfigError, match=r"did you mean 'sync.batch_messages'\?"):
        load_settings(path, environ={})


def test_an_unknown_key_with_nothing_close_lists_the_known_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[zzz]\nqqq = 5\n")
    with pytest.raises(ConfigError, match="known: .*sync.batch_messages"):
        load_settings(path, environ={})


def test_an_environment_variable_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[sync]\nbatch_messages = 10\nmax_concurrent = 3\n")
    settings = load_settings(path, environ={"FUTURNAL_SYNC_BATCH_MESSAGES": "50", "FUTURNAL_LOGGING_REDACT": "false",
                                            "FUTURNAL_NETWORK_READ_TIMEOUT_SECONDS": "2.5"})
    assert settings.batch.max_messages == 50
    assert settings.max_concurrent_syncs == 3
    assert settings.redact_logs is False
    assert settings.read_timeout_seconds == 2.5


def test_environment_overrides_apply_without_a_file(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "missing.toml", environ={"FUTURNAL_SUPERVISION_MAX_RESTARTS": "0"})
    assert settings.max_restarts == 0


def test_variables_outside_the_known_sections_are_not_settings(tmp_path: Path) -> None:
    environ = {"FUTURNAL_HOME": "/somewhere", "FUTURNAL_SOMETHING_ELSE": "x", "FUTURNAL_SECRETS_STORE": "file",
               "FUTURNAL_SECRETS_KEY_FILE": "/k", "FUTURNAL_FAULT_RETRY_SECONDS": "1", "FUTURNAL_TEST_CRASH_ON": "x"}
    assert load_settings(tmp_path / "missing.toml", environ=environ) == ServiceSettings()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("FUTURNAL_SYNC_BATCH_MESAGES", "5", "unknown setting; did you mean 'FUTURNAL_SYNC_BATCH_MESSAGES'?"),
        ("FUTURNAL_SYNC_BATCH_MESSAGES", "many", "must be a whole number, not 'many'"),
        ("FUTURNAL_SYNC_BATCH_MESSAGES", "0", "must be at least 1, not 0"),
        ("FUTURNAL_LOGGING_REDACT", "1", "must be true or false, not 1"),
        ("FUTURNAL_SYNK_BATCH_MESSAGES", "5", "unknown setting (no section 'synk'); "
                                              "did you mean 'FUTURNAL_SYNC_BATCH_MESSAGES'?"),
        ("FUTURNAL_ATTACHMENT_WORKERS", "2", "unknown setting (no section 'attachment'); "
                                             "did you mean 'FUTURNAL_ATTACHMENTS_WORKERS'?"),
    ],
)
def test_bad_environment_overrides_are_refused_naming_the_variable_once(tmp_path: Path, name: str, value: str,
                                                                        message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "missing.toml", environ={name: value})
    assert str(info.value) == f"environment variable {name}: {message}"


def test_an_unknown_variable_with_nothing_close_lists_its_sections_variables(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "missing.toml", environ={"FUTURNAL_NETWRK_SPEED": "5"})
    message = str(info.value)
    assert message.startswith("environment variable FUTURNAL_NETWRK_SPEED: unknown setting (no section 'netwrk') "
                              "(known: FUTURNAL_NETWORK_CONNECT_TIMEOUT_SECONDS, ")
    assert "FUTURNAL_SYNC_" not in message and "network.connect" not in message


def test_a_bad_value_in_the_file_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[sync]\nbatch_messages = \"many\"\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert str(info.value) == f"{path}: sync.batch_messages must be a whole number, not 'many'"


def test_the_variable_name_is_the_section_and_key_in_upper_case() -> None:
    assert environment_variable("sync.batch_messages") == "FUTURNAL_SYNC_BATCH_MESSAGES"


def test_run_reports_a_bad_config_file_before_starting_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from futurnal.cli.main import main

    path = tmp_path / "service.toml"
    path.write_text("[sync]\nbatch_mesages = 5\n")
    assert main(["--data-dir", str(tmp_path / "data"), "run", "--config", str(path)]) == 1
    assert "did you mean 'sync.batch_messages'?" in capsys.readouterr().err
    assert main(["--data-dir", str(tmp_path / "data"), "run", "--config", str(tmp_path / "nope.toml")]) == 1
    assert "no such config file" in capsys.readouterr().err
    path.write_text("[sync]\nbatch_messages = 5\n")
    monkeypatch.setenv("FUTURNAL_SYNC_MAX_CONCURENT", "3")
    assert main(["--data-dir", str(tmp_path / "data"), "run", "--config", str(path)]) == 1
    assert "did you mean 'FUTURNAL_SYNC_MAX_CONCURRENT'?" in capsys.readouterr().err


def test_the_shared_store_is_set_by_url_in_the_file_or_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[store]\nurl = "postgresql://futurnal@db.example/futurnal"\nlease_seconds = 15\n')
    settings = load_settings(path, environ={"FUTURNAL_STORE_MAX_MAILBOXES": "40"})
    assert (settings.store_url, settings.lease_seconds, settings.max_mailboxes) == (
        "postgresql://futurnal@db.example/futurnal", 15.0, 40)
    from_environment = load_settings(tmp_path / "missing.toml",
                                     environ={"FUTURNAL_STORE_URL": "postgresql://u@h:5433/db?sslmode=require"})
    assert from_environment.store_url == "postgresql://u@h:5433/db?sslmode=require"
    assert load_settings(tmp_path / "missing.toml", environ={}).store_url == ""


@pytest.mark.parametrize(("key", "value", "error"), [
    ("url", '"mysql://db/x"', "must be a postgresql:// URL"),
    ("url", "5", "must be a string"),
    ("lease_seconds", "2", "must be at least 3"),
])
def test_a_bad_store_setting_is_refused_naming_it(tmp_path: Path, key: str, value: str, error: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[store]\n{key} = {value}\n")
    with pytest.raises(ConfigError, match=f"{key} {error}"):
        load_settings(path, environ={})


def test_the_projects_other_variables_are_not_taken_for_a_misspelt_store_setting(tmp_path: Path) -> None:
    """``stage`` is as close to ``store`` as ``synk`` is to ``sync``; the benchmark's switch is no typo."""
    settings = load_settings(tmp_path / "missing.toml", environ={"FUTURNAL_STAGE_CPU": "1", "FUTURNAL_TEST_CRASH_ON": "x"})
    assert settings == ServiceSettings()
    with pytest.raises(ConfigError, match="did you mean 'FUTURNAL_STORE_URL'"):
        load_settings(tmp_path / "missing.toml", environ={"FUTURNAL_STOR_URL": "postgresql://h/db"})
