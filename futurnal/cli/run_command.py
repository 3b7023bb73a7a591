"""``run``: the long-running process."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from futurnal.config import ConfigError, ServiceSettings, load_settings
from futurnal.console.protocol import ProtocolError, console_socket_path
from futurnal.process.open_files import raise_open_file_limit
from futurnal.process.platform_support import unsupported_platform
from futurnal.storage.clock import utc_now
from futurnal.storage.consent import NoConsent
from futurnal.storage.stores import display_store, open_reader

from .console_render import render_reply
from .context import CommandContext
from .output import UserError, visible

if TYPE_CHECKING:
    from futurnal.system import ActorSystem

__all__ = ["register"]


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run",
        help="run the service: sync every registered mailbox on its schedule until stopped",
        description="Start the actor system for every registered mailbox and keep it running. "
        "SIGINT or SIGTERM stops it cleanly (exit 0); SIGHUP re-reads the mailbox registry and "
        "schedules (new mailboxes start, removed ones stop, the others keep running); if "
        "supervision gives up, it exits 1 so a service manager can restart it.",
    )
    run.add_argument("--config", type=Path, default=None, metavar="FILE",
                     help="settings file (TOML; default: <data dir>/config.toml); "
                     "FUTURNAL_<SECTION>_<KEY> environment variables override it")
    run.set_defaults(handler=_run)


def _settings(args: argparse.Namespace, ctx: CommandContext) -> ServiceSettings:
    if args.config is None:
        return ctx.settings()
    path = args.config.expanduser()
    if not path.is_file():
        raise UserError(f"{path}: no such config file")
    try:
        return load_settings(path)
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def _run(args: argparse.Namespace, ctx: CommandContext) -> int:
    if (unsupported := unsupported_platform()) is not None:  # its admin console could not tell its users apart
        raise UserError(unsupported)
    settings = _settings(args, ctx)  # checked first: a bad config is reported before anything starts
    ctx.credentials.prepare()  # and the secrets file's key (made on first use), not at each mailbox's start
    # Imported here: the actor system is most of the CLI's start-up, and most commands need none of it.
    from futurnal.console.commands import ConsoleCommands
    from futurnal.console.server import ConsoleServer
    from futurnal.system import ActorSystem, SystemNotRunning

    registry = ctx.registry()
    mailboxes = registry.all()
    registry.close()
    raise_open_file_limit()  # a connection or two per mailbox: hundreds of them pass 1,024 descriptors
    if not mailboxes:  # a service may start before its first mailbox: `imap add` then starts it at once
        print("no mailboxes registered yet; `futurnal-actors imap add ...` registers one with this process",
              flush=True)
    _warn_without_consent(ctx, [record.id for record in mailboxes])
    stop = threading.Event()
    reload = threading.Event()
    # The main thread sleeps in a read of this pipe; the handlers only set the flags above and the
    # main loop does the work. A signal can land on any of the process's threads, which leaves a
    # main thread blocked on a lock asleep; the interpreter writes every signal to the pipe
    # (set_wakeup_fd) from whichever thread got it, so the read returns and the handler runs.
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)

    def wake() -> None:
        try:
            os.write(wake_write, b"!")
        except OSError:
            pass  # the pipe is full: the main thread has wake-ups to read already

    def request_stop(signum: int, _frame: Any) -> None:
        logger.info("received {signal}; stopping", signal=signal.Signals(signum).name)
        stop.set()
        wake()

    def request_reload(_signum: int, _frame: Any) -> None:
        reload.set()
        wake()

    handlers: dict[signal.Signals, Any] = {signal.SIGINT: request_stop, signal.SIGTERM: request_stop}
    if hasattr(signal, "SIGHUP"):
        handlers[signal.SIGHUP] = request_reload
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    previous_wakeup_fd = signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)

    def restore_signals() -> None:
        signal.set_wakeup_fd(previous_wakeup_fd)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(wake_read)
        os.close(wake_write)

    system = ActorSystem(ctx.data_dir.root, settings=settings, credentials=ctx.credentials)
    try:
        system.start()
    except SystemNotRunning as exc:
        restore_signals()
        raise UserError(str(exc)) from None
    system.subscribe(_ReportPrinter())

    def shutdown() -> None:  # the console's `shutdown`: the same clean stop as SIGTERM
        logger.info("shutdown asked for on the admin console; stopping")
        stop.set()
        wake()

    try:
        console = ConsoleServer(console_socket_path(ctx.data_dir.root), ConsoleCommands(system, shutdown).run,
                                system.subscribe, lambda: open_reader(ctx.data_dir, url=settings.store_url)).start()
    except (ProtocolError, OSError) as exc:
        system.stop()
        restore_signals()
        raise UserError(f"cannot open the admin console: {exc}") from None
    running = (f"running with {len(mailboxes)} mailbox(es)" if not settings.store_url else
               f"running with its share of {len(mailboxes)} mailbox(es) in {display_store(settings.store_url)}, "
               "by lease")
    print(f"{running}; Ctrl+C or SIGTERM stops, SIGHUP reloads; admin console on {console.path}", flush=True)
    # The main thread sleeps until there is something to do: a signal's handler, the console's
    # shutdown, or this waiter when supervision gives up. Nothing wakes it on a timer.
    def wake_when_failed() -> None:
        system.failed.wait()
        wake()

    threading.Thread(target=wake_when_failed, name="futurnal-run-failed", daemon=True).start()
    try:
        while True:
            os.read(wake_read, 512)  # a signal's handler runs as this returns, before the checks
            if reload.is_set() and not stop.is_set():
                reload.clear()
                _reload(system, ctx)
            if stop.is_set() or system.failed.is_set():
                break
    finally:
        console.stop()
        system.stop()
        restore_signals()
    if system.failed.is_set():
        raise UserError(f"supervision gave up: {system.failure}")
    print("stopped", flush=True)
    return 0


def _reload(system: ActorSystem, ctx: CommandContext) -> None:
    """SIGHUP: re-read the registry and schedules; one line says what changed."""
    try:
        report = system.reload()
    except Exception as exc:  # a bad registry edit must not take the running service down
        logger.exception("reload failed")
        print(visible(f"reload failed: {exc}; still running as before"), flush=True)
        return
    _warn_without_consent(ctx, [*report.added, *report.restarted])
    print(render_reply("reload", asdict(report)), flush=True)


def _warn_without_consent(ctx: CommandContext, mailbox_ids: list[str]) -> None:
    consent = ctx.data_dir.consent()
    for mailbox_id in mailbox_ids:  # the fetcher checks again at every sync, so a later revocation counts too
        try:
            consent.require(mailbox_id)
        except NoConsent as exc:
            print(visible(f"not syncing {exc}"), flush=True)


class _ReportPrinter:
    """One line per sync that fetched something or failed; quiet syncs stay quiet.

    A failure that repeats (a full disk, retried every few minutes until someone frees space) is
    printed once, and once more when the mailbox gets through again; the log has each try.
    """

    def __init__(self) -> None:
        self._failing: dict[str, tuple[tuple[str, str], ...]] = {}  # mailbox -> the errors last printed

    def __call__(self, event: object) -> None:
        from futurnal.sync.sync_runs import MailboxSyncReport  # loaded by then: the system is running

        if not isinstance(event, MailboxSyncReport) or event.skipped is not None:
            return
        errors = tuple(event.errors)
        repeated = bool(errors) and self._failing.get(event.mailbox) == errors
        recovered = not errors and self._failing.pop(event.mailbox, None) is not None
        if errors:
            self._failing[event.mailbox] = errors
        if repeated and not event.fetched or not (errors or event.fetched or recovered):
            return
        folders = ", ".join(f"{r.folder} {r.fetched}" for r in event.results if r.fetched)
        line = f"{utc_now()} {event.mailbox}: {event.fetched} new" + (f" ({folders})" if folders else "")
        for folder, error in errors if not repeated else ():
            line += f"; {folder} failed: {error}"
        if recovered:
            line += "; syncing again"
        print(visible(line), flush=True)
