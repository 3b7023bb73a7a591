"""``top``: a live terminal view of the running process, refreshed from its console and events."""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import select
import sys
import termios
import threading
import time
import tty
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from futurnal.console import ConsoleClient, ConsoleError, ConsoleUnavailable, ProtocolError
from futurnal.storage.clock import parse_utc

from .console_render import render_event, summary_line
from .context import CommandContext
from .output import UserError, visible

__all__ = ["RateMeter", "register"]


def register(subparsers: Any) -> None:
    top = subparsers.add_parser(
        "top",
        help="live view of the running process: mailboxes, folders, rates, queues, actors, events",
        description="A live view of the `run` process of this data directory, fitted to the terminal: each "
        "mailbox's folders with their state, counts and freshness, messages per second while syncing, queue "
        "depths, the supervision tree with restart counts, and the latest events. q (or Ctrl+C) leaves.",
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
    recent: collections.deque[str] = collections.deque(maxlen=_EVENTS)
    console = Console()
    if args.once:
        console.print(_frame(client, rates, recent, width=console.width))
        return 0
    threading.Thread(target=_follow, args=(client, rates, recent), name="top-events", daemon=True).start()

    def frame() -> Group:
        return _frame(client, rates, recent, width=console.width, height=console.height)

    with contextlib.suppress(KeyboardInterrupt), _Keys() as keys, \
            Live(frame(), console=console, auto_refresh=False) as live:
        while "q" not in keys.wait(args.interval).lower():
            try:
                live.update(frame(), refresh=True)
            except (ConsoleUnavailable, ConnectionError):
                raise UserError("the process stopped") from None
            except ConsoleError as exc:  # busy or slow: keep the last frame, say why
                recent.append(f"(refresh failed: {exc.message})")
    return 0


class _Keys:
    """The keys typed while ``top`` runs, one at a time and not echoed (Ctrl+C still interrupts);
    without a terminal on stdin, none: it only waits."""

    def __init__(self) -> None:
        self._fd = sys.stdin.fileno() if sys.stdin is not None and sys.stdin.isatty() else None
        self._saved: list[Any] | None = None

    def __enter__(self) -> _Keys:
        if self._fd is not None:
            self._saved = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._fd is not None and self._saved is not None:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)

    def wait(self, seconds: float) -> str:
        """What was typed within ``seconds`` (returns at the first key), or ""."""
        if self._fd is None:
            time.sleep(seconds)
            return ""
        ready, _, _ = select.select([self._fd], [], [], seconds)
        return os.read(self._fd, 64).decode(errors="replace") if ready else ""


def _follow(client: ConsoleClient, rates: RateMeter, recent: collections.deque[str]) -> None:
    with contextlib.suppress(ConsoleUnavailable, ConsoleError, ConnectionError, OSError):
        for event in client.events():
            if event.get("event") == "sync-progress":
                rates.progress(event["mailbox"], event["folder"], event["done"], time.monotonic())
                continue
            if event.get("event") == "sync-started":
                rates.started(event["mailbox"])
            recent.append(render_event({**event, "time": _time_of_day(event.get("time"))}))


#: The latest events kept, and shown when there is room.
_EVENTS = 8
_HEADERS = ("mailbox", "state", "folder", "server", "stored", "freshness", "msg/s", "inbox")
_NUMBERS = ("server", "stored", "msg/s", "inbox")


def _frame(client: Any, rates: RateMeter, recent: collections.deque[str], *, width: int = 80,
           height: int | None = None) -> Group:
    """One view of the process, ``width`` columns wide and, with ``height``, that many lines high at
    most: the latest events always show; folders that do not fit end in a line saying how many
    more there are, and the actor tree becomes a line counting the actors."""
    status = client.call("status")
    tree = client.call("actors")["tree"]
    rows = _folder_rows(status, rates, time.monotonic())
    queued = sum(status["queues"].values())
    heading = Text.assemble((f"futurnal-actors, pid {client.server_pid}", "bold"), f"  queued messages: {queued}")
    summary = Text(summary_line(status)) if status.get("summary") else None
    events = list(recent)[-_EVENTS:] or ["(no events yet)"]
    actors: Any = _actor_tree(tree)
    more = 0  # folders left out for want of room
    if height is not None:
        room = height - 1 - 1 - (_lines(summary, width) if summary else 0) - 1 - 1  # heading, header, "events:"
        events = events[-max(min(len(events), room // 3), 1):]
        room -= len(events)
        if len(rows) + _tree_lines(tree) > room:
            actors = _actor_line(tree)
            room -= 1
            if len(rows) > room:
                kept = max(room - 1, 0)
                rows, more = rows[:kept], len(rows) - kept
    parts: list[Any] = [heading]
    if summary is not None:
        parts.append(summary)
    parts.append(_folder_table(rows, width))
    if more:
        parts.append(Text(f"… {more} more folder(s)"))
    parts += [actors, Text("latest events:", style="bold")]
    parts += [Text(visible(line), no_wrap=True, overflow="ellipsis") for line in events]
    return Group(*parts)


def _folder_rows(status: dict[str, Any], rates: RateMeter, now: float) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for report in status["mailboxes"]:
        live = report.get("live", {})
        mailbox = report["mailbox"]["id"]
        state = "needs-reauth" if report.get("needs_reauth") else live.get("state", "?")
        if not report.get("needs_reauth") and (held := report.get("throttled")):
            state = f"throttled until {held['until']}"
        rate = f"{rates.rate(mailbox, now):.0f}"
        for index, folder in enumerate(report["folders"] or [{"folder": "-", "stored": 0}]):
            first = index == 0
            rows.append((mailbox if first else "", state if first else "", folder["folder"],
                         str(folder.get("messages", 0)), str(folder["stored"]),
                         _backfill_cell(folder["backfill"]) if folder.get("backfill") else folder.get("freshness", "-"),
                         rate if first else "", str(live.get("inbox", "")) if first else ""))
    return rows


def _backfill_cell(backfill: dict[str, Any]) -> str:
    """A backfill in a few characters: how far, and the time left (``d`` when it is days)."""
    text = f"backfill {100 * backfill['done'] // max(backfill['total'], 1)}%"
    if backfill.get("eta"):
        left = max((parse_utc(backfill["eta"]) - datetime.now(UTC)).total_seconds(), 0)
        text += (f" {left / 86_400:.1f}d" if left >= 86_400 else f" {left / 3600:.1f}h" if left >= 3600
                 else f" {left / 60:.0f}m")
    return text


def _folder_table(rows: list[tuple[str, ...]], width: int) -> Table:
    """The folders, a line each: the other columns whole, the mailbox and folder names given what
    they leave of ``width`` (cut with an ellipsis beyond)."""
    cells = [[visible(cell) for cell in row] for row in rows]
    widths = [max([len(header), *(len(row[index]) for row in cells)]) for index, header in enumerate(_HEADERS)]
    names = max(width - sum(widths) + widths[0] + widths[2] - 2 * (len(_HEADERS) - 1), 12)
    mailbox_width = min(widths[0], max(names // 2, names - widths[2]))
    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold", show_edge=False)
    for header in _HEADERS:
        limit = {"mailbox": mailbox_width, "folder": max(names - mailbox_width, 6)}.get(header)
        table.add_column(header, no_wrap=True, overflow="ellipsis", max_width=limit,
                         justify="right" if header in _NUMBERS else "left")
    for row in cells:
        table.add_row(*map(Text, row))
    return table


def _actor_tree(tree: list[dict[str, Any]]) -> Tree:
    actors = Tree("actors")
    for root in tree:
        _branch(actors, root)
    return actors


def _tree_lines(tree: list[dict[str, Any]]) -> int:
    """How many lines the actor tree takes: its title and an actor each."""
    return 1 + sum(_tree_lines(node["children"]) for node in tree)


def _actor_line(tree: list[dict[str, Any]]) -> Text:
    """The actor tree in one line, when it has no room: how many run, and those that do not, restart
    or have messages waiting."""
    nodes = list(_walk(tree))
    running = sum(1 for node in nodes if node["state"] == "running")
    notable = [f"{node['id']} {node['state']}" for node in nodes if node["state"] != "running"]
    notable += [f"{node['id']} {node['restarts']} restart(s)" for node in nodes if node["restarts"]]
    notable += [f"{node['id']} {node['inbox']} queued" for node in nodes if node["inbox"]]
    line = Text.assemble(("actors: ", "bold"), f"{running} of {len(nodes)} running",
                         *(("; " + visible(item)) for item in notable))
    line.no_wrap, line.overflow = True, "ellipsis"
    return line


def _walk(tree: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in tree:
        yield node
        yield from _walk(node["children"])


def _lines(text: Text, width: int) -> int:
    return len(text.wrap(Console(width=width), width))


def _time_of_day(stamp: str | None) -> str:
    """An event's time as ``HH:MM:SS`` (UTC, as stamped): its date is today's in a live view."""
    return stamp[11:19] if stamp and len(stamp) >= 19 else (stamp or "")


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
