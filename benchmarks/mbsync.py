"""The reference tool: mbsync (isync) pulling the same folder into an empty Maildir.

mbsync is a mature C IMAP-to-Maildir syncer, so "as fast as mbsync" is a fair bar for an
initial sync. It runs with its defaults except what the setup needs: plain IMAP on loopback
(LOGIN, like every other row), pull only, state kept inside the Maildir. Its default
``FSync yes`` stays on: it fsyncs every message, as futurnal fsyncs every element.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .proc import ChildRun, run_measured

__all__ = ["Mbsync", "MbsyncRun", "ensure_mbsync"]

_CONFIG = """\
IMAPAccount bench
Host {host}
Port {port}
User {user}
Pass {password}
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account bench

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX

Channel bench
Far :remote:
Near :local:
Patterns INBOX
Create Near
Sync Pull
SyncState *
"""


def ensure_mbsync(log: Callable[[str], None]) -> tuple[str | None, str]:
    """Return (path to mbsync, "") or (None, why its rows are skipped).

    Installs Debian's ``isync`` when missing and we are root with apt-get; never otherwise.
    """
    found = shutil.which("mbsync")
    if found:
        return found, ""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None, "mbsync is not installed (run `apt-get install isync` as root); mbsync rows skipped"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log("installing isync (mbsync) with apt-get ...")
    for step in (["apt-get", "install", "-y", "-q", "isync"], ["apt-get", "update", "-q"],
                 ["apt-get", "install", "-y", "-q", "isync"]):
        try:
            done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            return None, f"`{' '.join(step)}` timed out; mbsync rows skipped"
        if step[1] == "install" and done.returncode == 0 and shutil.which("mbsync"):
            return shutil.which("mbsync"), ""
    return None, "could not install isync with apt-get; mbsync rows skipped"


def mbsync_version(binary: str) -> str:
    try:
        return subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "mbsync (version unknown)"


@dataclass(frozen=True)
class MbsyncRun:
    """One mbsync invocation and how many messages the Maildir holds afterwards."""

    child: ChildRun
    messages_in_maildir: int


class Mbsync:
    """One user's channel: a config file, a private HOME and a Maildir under ``workdir``."""

    def __init__(self, binary: str, workdir: Path, *, host: str, port: int, user: str, password: str) -> None:
        self.binary = binary
        self.workdir = workdir
        self.maildir = workdir / "Maildir"
        self.config = workdir / "mbsyncrc"
        (workdir / "home").mkdir(parents=True, exist_ok=True)
        self.maildir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(_CONFIG.format(host=host, port=port, user=user, password=password,
                                              maildir=self.maildir), encoding="utf-8")
        self.config.chmod(0o600)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir / "home")}

    def sync(self, timeout: float) -> MbsyncRun:
        """Run ``mbsync bench`` once; a non-zero exit is an error, never a measurement."""
        child = run_measured([self.binary, "-c", str(self.config), "bench"], env=self.env, timeout=timeout)
        child.check("mbsync")
        return MbsyncRun(child, self.count())

    def settle(self) -> None:
        """Wait until the Maildir's last change is in a past second.

        mbsync sleeps up to a second ("sleeping due to recent directory modification") when a
        Maildir directory changed within the current second, because mtimes have 1 s
        resolution. A no-change resync started right after the initial sync would time that
        sleep, not mbsync's work, so resyncs start only after this.
        """
        newest = max((p.stat().st_mtime for p in self.maildir.rglob("*") if p.is_dir()), default=0.0)
        delay = int(newest) + 1.05 - time.time()
        if delay > 0:
            time.sleep(delay)

    def count(self) -> int:
        inbox = self.maildir / "INBOX"
        return sum(sum(1 for _ in os.scandir(inbox / sub)) for sub in ("cur", "new") if (inbox / sub).is_dir())
