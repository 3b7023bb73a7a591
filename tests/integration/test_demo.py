"""``bin/demo`` and ``demo``: Dovecot alone is set up for it, and its server can be kept and registered."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cli import COMMAND, Cli

ROOT = Path(__file__).resolve().parents[2]
TEST_ONLY = ("install-cyrus", "install-oauth-provider")


@pytest.fixture
def scratch() -> Iterator[Path]:
    """The demo's temporary directories: outside pytest's 0700 tree, which Dovecot's unprivileged
    processes could not traverse."""
    path = Path(tempfile.mkdtemp(prefix="futurnal-demo-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _require_dovecot() -> None:
    if not (shutil.which("dovecot") or os.access("/usr/sbin/dovecot", os.X_OK)):
        pytest.fail("Dovecot is not installed") if os.environ.get("CI") else pytest.skip("Dovecot is not installed")


def _checkout_with_recording_installers(home: Path) -> tuple[Path, dict[str, str]]:
    """A copy of bin/ whose test-server installers only record that they ran, with an npm on PATH (which
    the OAuth2 provider's installer needs); its .venv is the real one and its package metadata older
    than the venv, so nothing is reinstalled."""
    root, calls = home / "checkout", home / "calls"
    (root / "bin").mkdir(parents=True)
    calls.mkdir()
    for script in ("bootstrap", "demo", "test"):
        shutil.copy2(ROOT / "bin" / script, root / "bin" / script)
    fakes = home / "fakes"
    fakes.mkdir()
    for name, where in ((TEST_ONLY[0], root / "bin"), (TEST_ONLY[1], root / "bin"), ("npm", fakes)):
        (where / name).write_text(f"#!/bin/sh\ntouch {calls / name}\n")
        (where / name).chmod(0o755)
    (root / ".venv").symlink_to(ROOT / ".venv")
    for metadata in ("setup.cfg", "pyproject.toml"):
        (root / metadata).touch()
        os.utime(root / metadata, (0, 0))
    return root, {"PATH": f"{fakes}:{os.environ['PATH']}"}


def test_bin_demo_installs_no_server_only_the_tests_use(tmp_path: Path, scratch: Path) -> None:
    _require_dovecot()
    root, path = _checkout_with_recording_installers(tmp_path)
    cli = Cli(tmp_path)
    env = {**cli.env, **path, "TMPDIR": str(scratch)}
    done = subprocess.run([root / "bin" / "demo", "--messages", "3"], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "calls").iterdir()) == []
    last = done.stdout.splitlines()[-1]
    assert last == (f"  keep the demo server running and register it yourself: "
                    f"{shlex.quote(str(root / '.venv' / 'bin' / 'futurnal-actors'))} demo --keep-server --messages 3")
    # The same copy's bin/test does install them: the recording would have seen bin/demo do it.
    tested = subprocess.run([root / "bin" / "test", "--version"], capture_output=True, text=True, env=env,
                            stdin=subprocess.DEVNULL, timeout=120)
    assert tested.returncode == 0, tested.stderr
    assert sorted(p.name for p in (tmp_path / "calls").iterdir()) == sorted(TEST_ONLY)


def test_demo_keep_server_serves_until_stopped_and_the_commands_it_prints_register_it(
    tmp_path: Path, scratch: Path
) -> None:
    _require_dovecot()
    cli = Cli(tmp_path)
    env = {**cli.env, "TMPDIR": str(scratch)}
    demo = subprocess.Popen([COMMAND, "demo", "--messages", "3", "--keep-server"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert demo.stdout is not None
        lines = []
        for line in demo.stdout:
            lines.append(line.rstrip("\n"))
            if line.rstrip().endswith(" run"):
                break
        assert demo.poll() is None, demo.communicate()
        said = lines.index(next(line for line in lines if line.startswith("the demo server keeps running on 127.0.0.1")))
        port = int(lines[said].split("IMAPS port ")[1].split(",")[0])
        add, folders, sync, run = (line.strip() for line in lines[said + 1:])
        assert add.startswith("printf '%s\\n' demo-password | FUTURNAL_SECRETS_STORE=file ")
        assert f"--port {port} " in add and " imap add " in add and folders.endswith(" imap folders demo")

        # As a user would in another terminal: their own data directory, no keyring needed.
        mine = {k: v for k, v in env.items() if k != "PYTHON_KEYRING_BACKEND"}
        for command in (add, folders, sync):
            done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=mine, timeout=120)
            assert done.returncode == 0, (command, done.stderr)
        assert "INBOX" in done.stdout and "new message(s)" in done.stdout
        assert sync.endswith(" imap sync demo") and run.endswith(" run")

        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=60)
        assert demo.returncode == 0, err
        assert out.strip().endswith("stopping the demo server")
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
