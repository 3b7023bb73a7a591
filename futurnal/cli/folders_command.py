"""``imap folders``: the server's folders, their special use and size, and which of them the mailbox syncs."""

from __future__ import annotations

import argparse
from typing import Any

from futurnal.imap.connector import MailboxConnector
from futurnal.imap.errors import ServerError
from futurnal.imap.session import ImapSession
from futurnal.logs.configure import redactor
from futurnal.storage.registry import MailboxRecord
from futurnal.sync.folder_plan import excluded_folders, missing_folders, nearest_folder, plan_folders
from futurnal.sync.folder_selection import FolderSpec

from .context import CommandContext
from .output import print_json, visible

__all__ = ["register", "survey"]


def register(commands: Any) -> None:
    """Add ``folders`` to the ``imap`` subcommands."""
    parser = commands.add_parser(
        "folders",
        help="the server's folders: special use, messages, and whether the mailbox syncs each",
        description="Log in to the mailbox's server on a short read-only connection of its own (whether or not "
        "`run` is going) and list its folders: their special-use attributes (RFC 6154), how many messages each "
        "holds (STATUS), and whether the mailbox's folder selection (--folders less --exclude) takes it. A name "
        "of the selection that the server lacks is named with the folder it most likely misspells.",
    )
    parser.add_argument("mailbox", metavar="MAILBOX", help="mailbox id or e-mail address")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(handler=_folders)


def survey(record: MailboxRecord, ctx: CommandContext) -> dict[str, Any]:
    """The server's folders as the mailbox's selection sees them, INBOX first, then by name: ``folders`` (``name``,
    ``delimiter``, ``flags``, ``special_use``, ``selectable``, ``messages``: None where the server
    refuses STATUS or the folder cannot be selected, ``synced``, ``excluded``: taken by ``--folders``
    and left out by ``--exclude``), and ``missing``: exact names of the selection the server lacks,
    each with ``did_you_mean``."""
    settings = ctx.settings()
    ctx.credentials.prepare()  # a missing or wrong key of the secrets file: its own error, before connecting
    connect = MailboxConnector(record, ctx.credentials, secret_registry=redactor,
                               connect_timeout=settings.connect_timeout_seconds,
                               read_timeout=settings.read_timeout_seconds)
    with connect() as session:
        listing = session.list_folders()
        counts = {folder.name: _message_count(session, folder.name) for folder in listing if folder.selectable}
        gmail = session.gmail
    spec = FolderSpec(record.folders, record.exclude)
    plan = plan_folders(spec, listing, (), gmail=gmail)
    excluded = excluded_folders(spec, listing, gmail=gmail)
    return {
        "mailbox": record.id,
        "server": f"{record.host}:{record.port}",
        "selection": spec.to_document(),
        "folders": [
            {"name": folder.name, "delimiter": folder.delimiter, "flags": sorted(folder.flags),
             "special_use": folder.special_use, "selectable": folder.selectable, "messages": counts.get(folder.name),
             "synced": folder.name in plan.folders, "excluded": folder.name in excluded}
            for folder in sorted(listing, key=lambda folder: (folder.name.upper() != "INBOX", folder.name.casefold()))
        ],
        "missing": [{"folder": name, "did_you_mean": nearest_folder(name, listing)} for name in plan.missing],
        "missing_text": missing_folders(plan.missing, listing) if plan.missing else None,
    }


def _message_count(session: ImapSession, folder: str) -> int | None:
    try:
        return session.message_count(folder)
    except ServerError:  # the server refuses STATUS on it: the listing goes on without its count
        return None


def _folders(args: argparse.Namespace, ctx: CommandContext) -> int:
    record = ctx.mailbox(args.mailbox)
    document = survey(record, ctx)
    if args.json:
        print_json(document)
        return 0
    from rich.console import Console  # here: only the human output needs it
    from rich.table import Table
    from rich.text import Text

    folders = document["folders"]
    selection = document["selection"]
    chosen = ",".join(selection["include"]) + (f" less {','.join(selection['exclude'])}" if selection["exclude"] else "")
    print(visible(f"{record.id} <{record.email}> at {document['server']}: {len(folders)} folder(s), "
                  f"{sum(f['synced'] for f in folders)} synced (--folders {chosen})"))
    table = Table()
    for header in ("FOLDER", "SPECIAL USE", "MESSAGES", "SYNCED"):
        table.add_column(header, justify="right" if header == "MESSAGES" else "left")
    for folder in folders:
        table.add_row(Text(visible(folder["name"])), Text(folder["special_use"] or ""),
                      Text("-" if folder["messages"] is None else str(folder["messages"])),
                      Text(_synced(folder)))
    Console(highlight=False).print(table)
    if document["missing_text"]:
        print(visible(document["missing_text"]))
    return 0


def _synced(folder: dict[str, Any]) -> str:
    if folder["synced"]:
        return "yes"
    if folder["excluded"]:
        return "no (excluded)"
    return "no" if folder["selectable"] else "no (cannot be selected)"
