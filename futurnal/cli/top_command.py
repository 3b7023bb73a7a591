"""``top``: a live terminal view of the running process, refreshed from its console and events."""

from __future__ import annotations

import argparse
import collections
import contextlib
import threading
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from futurnal.console import ConsoleClient, ConsoleError, ConsoleUnavailable, ProtocolError

from .console_render import render_event, summary_line
from .context import CommandContext
from .output import UserError, visible

__all__ = ["RateMeter", "register"]


def register(subparsers: Any) -> None:
    top = subparsers.add_parser(
        "top",
        help="live view of the running process: mailboxes, folders, rates, queues, actors, events",
        description="A live view of the `run` process of this data directory: each mailbox's folders with "
        "their state, counts and last success, messages per second while syncing, queue depths, the "
        "supervision tree with restart counts, and the latest events. Ctrl+C leaves.",
    )
    top.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                     help="how often to refresh the figures (default 1)")
    top.add_argument("--once", action="store_true", help="print one frame and exit (for a log or a script)")
    top.set_defaults(handler=_top)


class RateMeter:
    """Messages per second per mailbox, over a sliding window of progress events.

    Fed by the event thread, read by the drawing one: every access holds the lock.
    """

    def __init__(self, window: float = 10.0) -> None:
        self._window = window
        self._lock = threading.Lock()
        self._samples: dict[str, collections.deque[tuple[float, int]]] = collections.defaultdict(collections.deque)
        self._last_done: dict[tuple[str, str], int] = {}

    def started(self, mailbox: str) -> None:
        """A new sync run: its folders count from zero again."""
        with self._lock:
            self._last_done = {key: done for key, done in self._last_done.items() if key[0] != mailbox}

    def progress(self, mailbox: str, folder: str, done: int, now: float) -> None:
        with self._lock:
            previous = self._last_done.get((mailbox, folder), 0)
            self._last_done[(mailbox, folder)] = done
            if done > previous:
                self._samples[mailbox].append((now, done - previous))

    def rate(self, mailbox: str, now: float) -> float:
        with self._lock:
            samples = self._samples[mailbox]
            while samples and samples[0][0] < now - self._window:
                samples.popleft()
            return sum(count for _, count in samples) / self._window


def _top(args: argparse.Namespace, ctx: CommandContext) -> int:
    if args.interval <= 0:
        raise UserError("--interval must be a positive number of seconds", code=2)
    try:
        client = ConsoleClient(ctx.data_dir.root)
    except (ConsoleUnavailable, ProtocolError) as exc:
        raise UserError(f"{exc}; start it with `futurnal-actors run`") from None
    rates = RateMeter()
    recent: collections.deque[str] = collections.deque(maxlen=8)
    if args.once:
        Console().print(_frame(client, rates, recent))
        return 0
    threading.Thread(target=_follow, args=(client, rates, recent), name="top-events", daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt), Live(_frame(client, rates, recent), auto_refresh=False) as live:
        while True:
            time.sleep(args.interval)
            try:
                live.update(_frame(client, rates, recent), refresh=True)
            except (ConsoleUnavailable, ConnectionError):
                raise UserError("the process stopped") from None
            except ConsoleError as exc:  # busy or slow: keep the last frame, say why
                recent.append(f"(refresh failed: {exc.message})")
    return 0


def _follow(client: ConsoleClient, rates: RateMeter, recent: collections.deque[str]) -> None:
    with contextlib.suppress(ConsoleUnavailable, ConsoleError, ConnectionError, OSError):
        for event in client.events():
            if event.get("event") == "sync-progress":
                rates.progress(event["mailbox"], event["folder"], event["done"], time.monotonic())
                continue
            if event.get("event") == "sync-started":
                rates.started(event["mailbox"])
            recent.append(render_event(event))


def _frame(client: ConsoleClient, rates: RateMeter, recent: collections.deque[str]) -> Group:
    status = client.call("status")
    tree = client.call("actors")["tree"]
    now = time.monotonic()
    folders = Table(title=f"futurnal-actors, pid {client.server_pid}", expand=True)
    for header in ("mailbox", "state", "folder", "on server", "stored", "last success", "freshness", "msg/s",
                   "inbox"):
        folders.add_column(header, justify="right" if header in ("on server", "stored", "msg/s", "inbox") else "left")
    for report in status["mailboxes"]:
        live = report.get("live", {})
        mailbox = report["mailbox"]["id"]
        rate = f"{rates.rate(mailbox, now):.0f}"
        for index, folder in enumerate(report["folders"] or [{"folder": "-", "stored": 0}]):
            first = index == 0
            cells = (mailbox if first else "", live.get("state", "?") if first else "", folder["folder"],
                     str(folder.get("messages", 0)), str(folder["stored"]), folder.get("last_success") or "never",
                     folder.get("freshness", "-"), rate if first else "", str(live.get("inbox", "")) if first else "")
            folders.add_row(*map(_shown, cells))
    actors = Tree("actors")
    for root in tree:
        _branch(actors, root)
    events = Table.grid()
    for line in list(recent) or ["(no events yet)"]:
        events.add_row(_shown(line))
    queued = sum(status["queues"].values())
    return Group(folders, Text(summary_line(status)), f"queued messages: {queued}", actors, "latest events:", events)


def _shown(text: str) -> Text:
    """A string from the process (folder names, errors) as rich shows it: :func:`~.output.visible`,
    and as a ``Text`` rather than markup, so a folder named ``[bold red]x`` is shown as such."""
    return Text(visible(text))


def _branch(parent: Tree, node: dict[str, Any]) -> None:
    label = Text.assemble(_shown(node["id"]), " ", (visible(node["state"]),
                                                     "green" if node["state"] == "running" else "red"))
    if node["restarts"]:
        label.append(f" {node['restarts']} restart(s)", style="yellow")
    if node["inbox"]:
        label.append(f" {node['inbox']} queued")
    branch = parent.add(label)
    for child in node["children"]:
        _branch(branch, child)
