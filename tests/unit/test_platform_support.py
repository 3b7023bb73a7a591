"""Linux is the platform: elsewhere `run`, which serves the admin console, refuses to start with one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from futurnal.cli.main import main
from futurnal.process.platform_support import unsupported_platform


def test_linux_is_supported_and_any_other_platform_is_named_with_the_reason() -> None:
    assert unsupported_platform("linux") is None
    for platform in ("darwin", "win32", "freebsd14"):
        message = unsupported_platform(platform)
        assert message is not None and message.startswith(
            f"futurnal-actors runs on Linux (x86-64, arm64) only, not on {platform}: ")
        assert "SO_PEERCRED" in message and "README: Platforms" in message


def test_run_refuses_to_start_elsewhere_before_it_serves_a_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert main(["--data-dir", str(tmp_path), "run"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == ["futurnal-actors: error: futurnal-actors runs on Linux (x86-64, arm64) only, not on darwin: its "
                   "admin console admits only your own user by the socket's peer credentials (SO_PEERCRED), which "
                   "only Linux gives, and its parsers' memory caps need Linux too (README: Platforms)"]
    assert not (tmp_path / "console.sock").exists()
