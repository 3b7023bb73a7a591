"""``demo``: the whole path on a throwaway local Dovecot with a generated sample mailbox."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from futurnal.storage.consent import SCOPES
from futurnal.storage.credentials import CredentialStore
from futurnal.storage.element_store import ElementReader
from futurnal.storage.registry import MailboxRecord

from .context import CommandContext
from .output import ProgressBar, UserError, visible

if TYPE_CHECKING:
    from futurnal.demo.dovecot import DovecotServer

__all__ = ["register"]

DEMO_USER, DEMO_PASSWORD = "demo", "demo-password"


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="try it: sync a generated mailbox from a throwaway local Dovecot",
        description="Start a private Dovecot on 127.0.0.1 with a generated sample mailbox (threads, "
        "attachments, non-ASCII headers, a few malformed messages), register it, sync it through the "
        "actor system, and show what was ingested. Needs Dovecot (apt-get install dovecot-imapd). "
        "Uses a fresh directory of its own unless --data-dir is given.",
    )
    demo.add_argument("--messages", type=int, default=300, help="how many sample messages (default: 300)")
    demo.add_argument("--keep-server", action="store_true",
                      help="keep the demo's Dovecot running after the demo, until Ctrl+C, and print the commands "
                      "that register it in a data directory of your own")
    demo.set_defaults(handler=_demo, makes_own_data_dir=True)  # unless --data-dir names one


def _demo_credentials(directory: Path) -> CredentialStore:
    """The demo's throwaway password goes to a file in the demo directory, never your keyring."""
    try:
        from keyrings.alt.file import PlaintextKeyring
    except ImportError:
        raise UserError("the demo needs keyrings.alt: pip install 'futurnal-actors[demo]'") from None
    backend = PlaintextKeyring()
    backend.file_path = str(directory / "demo-keyring.cfg")
    return CredentialStore(backend)


def _demo(args: argparse.Namespace, ctx: CommandContext) -> int:
    from futurnal.demo.dovecot import DovecotServer, DovecotUnavailable
    from futurnal.demo.sample_mailbox import generate_mailbox

    if not 1 <= args.messages <= 100_000:
        raise UserError("--messages must be between 1 and 100000", code=2)
    explicit_dir = args.data_dir is not None
    data_root = ctx.data_dir.root if explicit_dir else Path(tempfile.mkdtemp(prefix="futurnal-demo-"))
    work = Path(tempfile.mkdtemp(prefix="futurnal-demo-dovecot-"))
    demo_ctx = CommandContext.create(data_root, ctx.debug, _demo_credentials(data_root))

    messages = generate_mailbox(args.messages)
    folders = tuple(dict.fromkeys(["INBOX", *sorted({m.folder for m in messages} - {"INBOX"})]))
    print(f"1/4 starting a throwaway Dovecot on 127.0.0.1 with {len(messages)} sample messages "
          f"in {', '.join(folders)}")
    server = DovecotServer(work)
    try:
        server.add_user(DEMO_USER, DEMO_PASSWORD)
        for message in messages:
            server.deliver(DEMO_USER, message.raw, folder=message.folder, flags=message.flags)
        server.start()
    except DovecotUnavailable as exc:
        raise UserError(str(exc)) from None
    try:
        record = MailboxRecord(
            id="demo", email="demo@futurnal.example", host=server.host, port=server.imaps_port,
            username=DEMO_USER, security="tls", cafile=str(server.cert_path), folders=folders,
        )
        print(f"2/4 registering mailbox 'demo' (IMAPS on port {server.imaps_port}, certificate verified)")
        with demo_ctx.owned() as registry:
            if any(r.id == record.id for r in registry.all()):
                registry.remove(record.id)
            registry.add(record)
            demo_ctx.credentials.set_secret(record.id, "password", DEMO_PASSWORD)
            # Running the demo is the consent: the mailbox is generated sample mail.
            demo_ctx.data_dir.consent().grant(record.id, "demo", SCOPES)
        print("3/4 syncing through the actor system")
        report = demo_ctx.local_admin().sync_report(record, progress=ProgressBar(f"syncing {record.id}"))
        with demo_ctx.element_reader() as store:
            _summarise(report, store, record.id, data_root, explicit_dir)
        if args.keep_server:
            _keep_serving(server, record)
        else:
            again = [_program(), "demo", "--keep-server"] + (["--messages", str(args.messages)] if args.messages != 300 else [])
            print(f"  keep the demo server running and register it yourself: {shlex.join(again)}")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)  # its maildirs and private key are throwaway
    return 0 if report.ok else 1


def _keep_serving(server: DovecotServer, demo: MailboxRecord) -> None:
    """Print the commands that register the demo's server as a user registers theirs, in a data
    directory of their own whose secrets go to its encrypted file (no keyring needed), then serve
    until SIGINT or SIGTERM."""
    yours = tempfile.mkdtemp(prefix="futurnal-demo-yours-")
    program = [_program(), "--data-dir", yours]
    add = [*program, "imap", "add", "--email", demo.email, "--host", demo.host, "--port", str(demo.port),
           "--username", demo.username, "--cafile", str(demo.cafile), "--folders", ",".join(demo.folders),
           "--id", "demo", "--consent", "--password-stdin"]
    print(f"the demo server keeps running on {demo.host}, IMAPS port {demo.port}, until Ctrl+C. "
          "To register it yourself, in another terminal:")
    print(f"    printf '%s\\n' {shlex.quote(DEMO_PASSWORD)} | FUTURNAL_SECRETS_STORE=file {shlex.join(add)}")
    for command in (["imap", "folders", "demo"], ["imap", "sync", "demo"], ["run"]):
        print(f"    {shlex.join([*program, *command])}")
    sys.stdout.flush()
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda _signum, _frame: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(1.0):
            if not server.running:
                raise UserError("the demo's Dovecot stopped by itself")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("stopping the demo server")


def _program() -> str:
    """The command as it was started (bin/demo runs it from .venv, which is not on PATH)."""
    return sys.argv[0] if os.path.isabs(sys.argv[0]) else "futurnal-actors"


def _summarise(report: Any, store: ElementReader, mailbox: str, data_root: Path, explicit_dir: bool) -> None:
    elements = list(store.iter_elements(mailbox, include_deleted=False))
    per_folder = Counter(e["folder"] for e in elements)
    threads = Counter(e["thread_id"] for e in elements)
    attachments = sum(len(e["attachments"]) for e in elements)
    with_defects = sum(1 for e in elements if e["defects"])
    print("4/4 ingested:")
    for result in report.results:
        print(f"    {visible(result.folder)}: {result.fetched} fetched, {per_folder[result.folder]} stored")
    for folder, error in report.errors:
        print(f"    {visible(folder)}: FAILED: {visible(error)}")
    print(f"    {len(elements)} elements, {len(threads)} threads "
          f"({sum(1 for n in threads.values() if n > 1)} with replies), {attachments} attachments, "
          f"{with_defects} with parser defects recorded")
    print("  a few subjects:")
    for element in elements[:: max(len(elements) // 5, 1)][:5]:
        print(f"    - {visible(element['subject'])}")
    print(f"  store: {store.location}")
    program = shlex.quote(_program())
    where = "" if explicit_dir else f" --data-dir {shlex.quote(str(data_root))}"
    print(f"  look around: {program}{where} imap status demo")
    print(f"               {program}{where} elements export | head -n 1")
    print(f"               {program}{where} elements search 'planning OR 打ち合わせ'")
    print(f"               {program}{where} elements changes --limit 3")
