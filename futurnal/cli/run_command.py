"""``run``: the long-running process."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from loguru import logger

from futurnal.mail.folder_sync import utc_now
from futurnal.mail.sync_runs import MailboxSyncReport
from futurnal.storage.consent import ConsentRegistry, NoConsent
from futurnal.system import ActorSystem, SystemNotRunning

from .context import CommandContext
from .output import UserError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run",
        help="run the service: sync every registered mailbox on its schedule until stopped",
        description="Start the actor system for every registered mailbox and keep it running. "
        "SIGINT or SIGTERM stops it cleanly (exit 0); if supervision gives up, it exits 1 so a "
        "service manager can restart it.",
    )
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace, ctx: CommandContext) -> int:
    registry = ctx.registry()
    mailboxes = registry.all()
    registry.close()
    if not mailboxes:
        raise UserError("no mailboxes registered; add one with `futurnal-actors imap add` first")
    consent = ConsentRegistry(ctx.data_dir.consent_path)
    for record in mailboxes:  # the fetcher checks again at every sync, so a later revocation counts too
        try:
            consent.require(record.id)
        except NoConsent as exc:
            print(f"not syncing {exc}", flush=True)
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        logger.info("received {signal}; stopping", signal=signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    system = ActorSystem(ctx.data_dir.root, settings=ctx.settings(), credentials=ctx.credentials)
    try:
        system.start()
    except SystemNotRunning as exc:
        raise UserError(str(exc)) from None
    system.subscribe(_print_report)
    print(f"running with {len(mailboxes)} mailbox(es); Ctrl+C or SIGTERM stops", flush=True)
    try:
        while not stop.wait(0.5):
            if system.failed.is_set():
                break
    finally:
        system.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if system.failed.is_set():
        raise UserError(f"supervision gave up: {system.failure}")
    print("stopped", flush=True)
    return 0


def _print_report(event: object) -> None:
    """One line per sync that fetched something or failed; quiet syncs stay quiet."""
    if not isinstance(event, MailboxSyncReport) or (event.ok and not event.fetched):
        return
    folders = ", ".join(f"{r.folder} {r.fetched}" for r in event.results if r.fetched)
    line = f"{utc_now()} {event.mailbox}: {event.fetched} new" + (f" ({folders})" if folders else "")
    for folder, error in event.errors:
        line += f"; {folder} failed: {error}"
    print(line, flush=True)
