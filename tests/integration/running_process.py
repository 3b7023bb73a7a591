"""`futurnal-actors run` in the background, for tests that talk to it while it runs."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

from futurnal.console import ConsoleClient

from .cli import COMMAND, Cli

__all__ = ["RunningProcess", "collect_lines"]


def collect_lines(stream: IO[str], lines: list[str]) -> threading.Thread:
    """A started daemon thread appending each line of ``stream`` to ``lines`` until it ends, or
    until ``communicate()`` closes it (the rest is then not needed)."""

    def read() -> None:
        try:
            for line in iter(stream.readline, ""):
                lines.append(line)
        except ValueError:  # closed under it: I/O operation on closed file
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader


class RunningProcess:
    """`futurnal-actors run` in the background, its stdout collected line by line."""

    def __init__(self, cli: Cli, *, command: Sequence[str] | None = None, **env: str) -> None:
        """``command``: the whole command line (default: ``run`` with the CLI's global options);
        standard input is closed, as under a service manager."""
        self.cli = cli
        self.process = subprocess.Popen(command or [COMMAND, *cli.options, "run"], env={**cli.env, **env},
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        self.lines: list[str] = []
        assert self.process.stdout is not None
        stdout = self.process.stdout
        self._reader = collect_lines(stdout, self.lines)
        self.socket_path = cli.data_dir / "console.sock"
        self.wait_for(self.socket_path.exists, "the console socket did not appear")
        self.client = ConsoleClient(cli.data_dir)

    def wait_for(self, condition: Callable[[], Any], what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, self.process.communicate()
            assert time.monotonic() < deadline, what
            time.sleep(0.1)

    def stored(self) -> int:
        return sum(1 for e in self.cli("elements", "export").lines() if e["mailbox"] == "alice")

    def finish(self) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        _out, err = self.process.communicate(timeout=60)
        return self.process.returncode, err
