"""``imap import FILE``: many mailboxes registered from a file, each one checked as ``imap add`` checks it.

Three passes, through the steps of :mod:`.add_mailbox`:

1. Every record is read: its fields made ``imap add``'s options and checked by the same
   :func:`~.add_mailbox.prepare`, its consent, its id and address against the file's other
   records and the registry, and its secret read from its file or command.
2. Each is checked against its server (:func:`~.add_mailbox.check`: the OAuth2 sign-in, the
   login, the folder selection), storing nothing.
3. Every secret is stored, then each mailbox registered through the admin interface
   (:func:`~.add_mailbox.register`: the running process's when ``run`` is up, which starts it at
   once and reads its secret: none is being written then).

Without ``--keep-going`` nothing is registered unless every record passed the first two: a
failure in the first pass still lets the other records be read, so one run reports all of the
file's mistakes, but no server is asked after a failure. Should registering fail (the keyring
refuses, another command took the address meanwhile), the mailboxes this run registered are
removed again, and the secrets it stored deleted. With ``--keep-going`` a failing record is
reported and every other one registered.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from futurnal.admin import Admin, AdminError
from futurnal.storage.registry import MailboxRegistry

from . import add_mailbox
from .add_mailbox import Checked, Registration
from .context import CommandContext
from .mailbox_file import FORMATS, Field, FileRecord, add_fields, file_format, in_file_terms, read_records, record_options
from .output import UserError, error_line, for_stderr, print_json, visible

__all__ = ["register"]

DEFAULT_COMMAND_TIMEOUT = 30.0

T = TypeVar("T")


def _stored_already() -> None:
    """The secret a mailbox is registered with: :meth:`_Import._register_all` stored it already."""


def register(commands: Any) -> None:
    """Add ``import`` to the ``imap`` subcommands."""
    parser = commands.add_parser(
        "import", help="register many mailboxes from a TOML or JSON Lines file, each checked like `imap add`",
        description="Register the mailboxes of FILE: TOML with one [[mailbox]] table each, or JSON Lines with "
        "one object a line, chosen by the extension (.toml; .jsonl or .json) or --format. A record's fields "
        "are the options of `imap add` without their dashes, '-' as '_' (email, host, port, username, "
        "security, cafile, folders, exclude, watch, id, interval, schedule, priority, consent, consent_scopes, "
        "granted_by, no_verify, auth, provider, client_id, auth_url, token_url, scope, auth_timeout). A secret "
        "is never in the file: password_file or client_secret_file name a file only you can read, "
        "password_command or client_secret_command a command (a list of words, no shell) that prints it. "
        "Every record is read and checked, logging in like `imap add`, before any is registered; a failure "
        "names its record and registers none unless --keep-going.",
    )
    parser.add_argument("file", metavar="FILE", help="the records (relative paths in it are taken from its directory)")
    parser.add_argument("--format", choices=FORMATS, help="toml or jsonl (default: from FILE's extension)")
    parser.add_argument("--consent", action="store_true",
                        help="record that the owner of every mailbox in FILE consents to its ingestion (else each "
                        "record needs consent = true)")
    parser.add_argument("--keep-going", action="store_true",
                        help="register the records that pass even when others fail (default: register none then)")
    parser.add_argument("--command-timeout", type=float, default=DEFAULT_COMMAND_TIMEOUT, metavar="SECONDS",
                        help=f"how long a secret's command may take (default: {DEFAULT_COMMAND_TIMEOUT:g})")
    parser.add_argument("--json", action="store_true", help="print one JSON object with every record's outcome")
    parser.set_defaults(handler=_import)


@dataclass(slots=True)
class _Entry:
    """One record and how far it got."""

    record: FileRecord
    registration: Registration | None = None
    secret: str | None = None
    checked: Checked | None = None
    status: str = "pending"  # then failed, checked, registered or not-registered
    stage: str | None = None  # where it failed: read, check or register
    error: str | None = None
    code: int = 0
    rolled_back: bool = False

    @property
    def label(self) -> str:
        return self.record.label()

    def document(self) -> dict[str, Any]:
        record = self.checked.record if self.checked else self.registration.record if self.registration else None
        doc: dict[str, Any] = {"record": self.record.number, "line": self.record.line,
                               "id": record.id if record else None,
                               "email": record.email if record else self.record.fields.get("email"),
                               "status": self.status}
        if self.status == "failed":
            doc.update(stage=self.stage, error=self.error, code=self.code)
        if self.status == "registered":
            doc["mailbox"] = record.to_document() if record else None
        if self.rolled_back:
            doc["rolled_back"] = True
        return doc


class _Screen:
    """Where the import shows itself: a line per record (stdout; failures on stderr), and a
    progress bar while both are a terminal. Silent with ``--json``, which prints one object."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._progress: Any = None

    @contextmanager
    def showing(self) -> Iterator[None]:
        if self.quiet or not (sys.stdout.isatty() and sys.stderr.isatty()):
            yield
            return
        from rich.console import Console  # a terminal only
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.fields[current]}", markup=False), console=Console(stderr=True),
                                  transient=True, redirect_stdout=False, redirect_stderr=False)
        with self._progress:
            self._task = self._progress.add_task("", total=None, current="")
            try:
                yield
            finally:
                self._progress = None

    def stage(self, description: str, total: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=description, total=total, completed=0, current="")

    def at(self, entry: _Entry, done: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=done, current=visible(entry.label))

    def say(self, line: str) -> None:
        self._print(visible(line), sys.stdout)

    def fail(self, entry: _Entry) -> None:
        self._print(error_line(f"{entry.label}: {entry.error}"), sys.stderr)

    def _print(self, line: str, stream: Any) -> None:
        if self.quiet:
            return
        if self._progress is not None:  # above the bar (both streams are this terminal)
            self._progress.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, file=stream)


class _Import:
    def __init__(self, args: argparse.Namespace, ctx: CommandContext, entries: list[_Entry], base: Path) -> None:
        self.args, self.ctx, self.entries, self.base = args, ctx, entries, base
        self.parser = argparse.ArgumentParser(add_help=False)
        add_mailbox.add_arguments(self.parser)
        self.fields: dict[str, Field] = add_fields(self.parser)
        self.screen = _Screen(quiet=args.json)
        self.first_code = 0

    def run(self) -> None:
        with self.screen.showing():
            self.screen.stage("reading", len(self.entries))
            self._read_all()
            ready = self._pending()
            if ready and (self.args.keep_going or not self.first_code):
                self.screen.stage("checking", len(ready))
                for done, entry in enumerate(ready, 1):
                    self.screen.at(entry, done)
                    self._step(entry, "check", self._check)
                    if self.first_code and not self.args.keep_going:
                        break
            ready = [entry for entry in self.entries if entry.status == "checked"]
            if ready and (self.args.keep_going or not self.first_code):
                self.screen.stage("storing secrets", len(ready))
                self._register_all(ready)
        for entry in self.entries:
            if entry.status not in ("failed", "registered"):
                entry.status = "not-registered"

    # -- the three passes ------------------------------------------------------------------------

    def _read_all(self) -> None:
        with self.ctx.registry() as registry:
            seen: dict[str, _Entry] = {}
            for done, entry in enumerate(self.entries, 1):
                self.screen.at(entry, done)
                self._step(entry, "read", lambda e: self._read(e, registry, seen))

    def _read(self, entry: _Entry, registry: MailboxRegistry, seen: dict[str, _Entry]) -> None:
        options = record_options(entry.record, self.fields, self.parser, self.base)
        entry.registration = registration = self._in_file_terms(add_mailbox.prepare, options.args, self.ctx)
        record, oauth = registration.record, registration.oauth_client is not None
        if oauth and options.password is not None:
            raise UserError(f"{options.password.field}: an OAuth2 mailbox signs in in the browser; it has no password",
                            code=2)
        if not oauth and options.password is None:
            raise UserError("no password given: name where it is kept with password_file = PATH or "
                            "password_command = [COMMAND, ARG...]", code=2)
        if not (options.args.consent or self.args.consent):
            raise UserError("consent is required: set consent = true in the record, or pass --consent to "
                            "`imap import` for every record, to record that the mailbox's owner agrees to "
                            f"ingesting its {', '.join(registration.scopes)}", code=2)
        for key, what in ((f"id:{record.id}", f"id {record.id!r}"), (f"email:{record.email.casefold()}", record.email)):
            if (other := seen.setdefault(key, entry)) is not entry:
                raise UserError(f"{what} is also {other.label}'s: a mailbox is registered once (give one of them "
                                "another id, or leave one out)", code=2)
        self._in_file_terms(registry.refuse_taken, record)
        source = options.password or options.client_secret
        entry.secret = None if source is None else source.read(self.args.command_timeout)

    def _check(self, entry: _Entry) -> None:
        assert entry.registration is not None
        entry.checked = self._in_file_terms(add_mailbox.check, entry.registration, self.ctx, entry.secret)
        entry.status = "checked"
        record = entry.checked.record
        how = "checked" if entry.registration.verify else "not checked (no_verify)"
        self.screen.say(f"{how} {record.id} ({record.email}): {', '.join(record.folders)}")

    def _register_all(self, ready: list[_Entry]) -> None:
        """Every secret first, then the mailboxes one by one: a running process starts each mailbox
        as it is registered and reads its secret at once, and a keyring kept in a file (keyrings.alt)
        is rewritten in place, so no secret is written while a mailbox of this run may be read."""
        admin = self.ctx.admin()  # chosen once: the running process's, or this command's own
        stored: list[_Entry] = []
        registered: list[_Entry] = []
        undo = not self.args.keep_going
        try:
            for done, entry in enumerate(ready, 1):
                self.screen.at(entry, done)
                if self._step(entry, "register", self._store_secret):
                    stored.append(entry)
                elif not self.args.keep_going:
                    return
            self.screen.stage("registering", len(stored))
            for done, entry in enumerate(stored, 1):
                self.screen.at(entry, done)
                if self._step(entry, "register", lambda e: self._register(e, admin)):
                    registered.append(entry)
                elif not self.args.keep_going:
                    return
            undo = False
        finally:  # a failure (or Ctrl+C) without --keep-going: this run registers nothing
            if undo:
                self._roll_back(admin, registered)
            self._forget([entry for entry in stored if entry.status != "registered"])

    def _store_secret(self, entry: _Entry) -> None:
        """Keep the record's secret, under an id nobody registered meanwhile (it would be theirs)."""
        assert entry.checked is not None
        with self.ctx.registry() as registry:
            self._in_file_terms(registry.refuse_taken, entry.checked.record)
        entry.checked.store_secret(self.ctx.credentials)

    def _register(self, entry: _Entry, admin: Admin) -> None:
        assert entry.checked is not None
        self._in_file_terms(add_mailbox.register, admin, entry.checked, _stored_already)
        entry.status = "registered"
        self.screen.say(f"registered {entry.checked.record.id}")

    def _roll_back(self, admin: Admin, registered: list[_Entry]) -> None:
        """Registering failed half-way: the mailboxes this run registered go again, with their secrets."""
        for entry in registered:
            assert entry.checked is not None
            mailbox_id = entry.checked.record.id
            try:
                admin.remove_mailbox(mailbox_id, purge=False)
            except Exception as exc:  # it stays registered, and says so
                self.screen.say(f"could not remove {mailbox_id} again: {_message(exc)[0]}; "
                                f"`futurnal-actors imap remove {mailbox_id}` removes it")
                continue
            entry.status, entry.rolled_back = "not-registered", True
            self.screen.say(f"removed {mailbox_id} again")

    def _forget(self, entries: list[_Entry]) -> None:
        """Delete the secrets stored for mailboxes that were not registered: never a secret without its mailbox."""
        for entry in entries:
            assert entry.checked is not None
            try:
                self.ctx.credentials.delete_secrets(entry.checked.record.id)
            except Exception as exc:
                self.screen.say(f"could not delete the stored secret of {entry.checked.record.id}: {_message(exc)[0]}")

    # -- helpers ---------------------------------------------------------------------------------

    def _step(self, entry: _Entry, stage: str, step: Callable[[_Entry], None]) -> bool:
        """Run one pass's ``step`` on ``entry``; a failure is the record's, reported, never raised."""
        try:
            step(entry)
            return True
        except Exception as exc:
            entry.error, entry.code = _message(exc)
            entry.status, entry.stage = "failed", stage
            self.first_code = self.first_code or entry.code
            self.screen.fail(entry)
            return False

    def _in_file_terms(self, step: Callable[..., T], *args: Any) -> T:
        """``imap add``'s step, its errors naming the record's fields rather than its options."""
        try:
            return step(*args)
        except (UserError, ValueError) as exc:
            raise UserError(in_file_terms(str(exc), self.fields.values()), getattr(exc, "code", 1)) from None

    def _pending(self) -> list[_Entry]:
        return [entry for entry in self.entries if entry.status == "pending"]

    # -- the outcome -----------------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        counts = {status: sum(1 for e in self.entries if e.status == status)
                  for status in ("registered", "failed", "not-registered")}
        return {"file": str(self.args.file), "ok": self.first_code == 0, "registered": counts["registered"],
                "failed": counts["failed"], "not_registered": counts["not-registered"],
                "records": [entry.document() for entry in self.entries]}

    def summary(self) -> None:
        total, file = len(self.entries), self.args.file
        registered = sum(1 for e in self.entries if e.status == "registered")
        failed = sum(1 for e in self.entries if e.status == "failed")
        rolled_back = sum(1 for e in self.entries if e.rolled_back)
        if not failed:
            self.screen.say(f"registered {registered} mailbox(es) from {file}; `imap list` shows them, and `run` "
                            "syncs them (or `imap sync ID`)")
        elif registered:
            self.screen.say(f"registered {registered} of {total} mailbox(es) from {file}; {failed} failed (above)")
        else:
            undone = f" ({rolled_back} registered by this run were removed again)" if rolled_back else ""
            others = "" if self.args.keep_going else "; fix what is named above, or pass --keep-going to register the rest"
            print(error_line(f"nothing was registered from {file}{undone}: {failed} of {total} record(s) "
                             f"failed{others}"), file=sys.stderr)


def _message(exc: Exception) -> tuple[str, int]:
    """What a failed step says, and the exit status ``imap add`` gives for it: the project's own
    errors (the keyring's, the server's, the running process's) say what went wrong in a line."""
    code = exc.code if isinstance(exc, UserError | AdminError) else 1
    if type(exc).__module__.startswith("futurnal."):
        return for_stderr(str(exc)), code
    return for_stderr(f"unexpected error: {exc.__class__.__name__}: {exc}"), code


def _import(args: argparse.Namespace, ctx: CommandContext) -> int:
    path = Path(args.file).expanduser()
    records = read_records(path, file_format(path, args.format))
    if args.command_timeout <= 0:
        raise UserError("--command-timeout must be positive", code=2)
    ctx.settings()  # a broken configuration is one error, not one a record
    ctx.credentials.check_usable()  # before reading secrets that could not be kept
    run = _Import(args, ctx, [_Entry(record) for record in records], path.resolve().parent)
    run.run()
    if args.json:
        print_json(run.document())
    else:
        run.summary()
    return run.first_code
