from __future__ import annotations

from pathlib import Path

import pytest

from futurnal.config import ConfigError, ServiceSettings, load_settings


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert load_settings(tmp_path / "config.toml") == ServiceSettings()


def test_values_override_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[sync]\nbatch_messages = 50\nbatch_bytes = 4096\n[logging]\nredact = false\n")
    settings = load_settings(path)
    assert settings.batch.max_messages == 50
    assert settings.batch.max_bytes == 4096
    assert settings.redact_logs is False


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[sync]\nbatch_mesages = 5\n", "unknown setting 'sync.batch_mesages'"),
        ("[sync]\nbatch_messages = 0\n", "at least 1"),
        ("[sync]\nbatch_messages = 'many'\n", "whole number"),
        ("[logging]\nredact = 1\n", "true or false"),
        ("[sync\n", "cannot be read"),
    ],
)
def test_bad_config_names_the_file_and_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(path)
    assert str(path) in str(info.value)


def test_login_pacing_is_read_from_the_network_section_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[network]\nlogins_per_second_per_host = 2.5\nlogin_burst_per_host = 4\n")
    settings = load_settings(path, environ={})
    assert (settings.logins_per_second_per_host, settings.login_burst_per_host) == (2.5, 4)
    path.write_text("[network]\nlogins_per_second_per_host = 0\n")  # 0: no limit
    assert load_settings(path, environ={}).logins_per_second_per_host == 0
    for content, message in [("logins_per_second_per_host = -1", "at least 0"),
                             ("login_burst_per_host = 0", "at least 1"),
                             ("login_burst_per_host = 2.5", "whole number"),
                             ("logins_per_second = 5", "did you mean 'network.logins_per_second_per_host'")]:
        path.write_text(f"[network]\n{content}\n")
        with pytest.raises(ConfigError, match=message):
            load_settings(path, environ={})
