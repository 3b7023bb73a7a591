"""``elements``: read the element store: export, the change feed, its consumers, search, one
element, one conversation, and the database's own check."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from futurnal.storage.element_store import CursorExpired, ElementReader, SearchFilters
from futurnal.storage.errors import StorageError

from .context import CommandContext
from .output import UserError, one_line, print_json, print_table, visible

__all__ = ["register"]

EXIT_CURSOR_EXPIRED = 3
_PAGE = 1000  # changes read per query
_FOLLOW_WAKE = 60.0  # seconds a follower sleeps at most without a commit (the bell wakes it sooner)

SEARCH_SYNTAX = """\
query syntax:
  words             all of them, anywhere (same as word AND word); case and accents do not matter
  "a phrase"        these words next to each other, in this order
  prefix*           words starting with "prefix"
  a OR b, a NOT b   either; the first without the second; (parentheses) group
  subject:word      only in one field: subject, people (names and addresses), body, attachments
  addresses, file names and words with punctuation (alice@example.com, e-mail) are taken as phrases;
  Chinese, Japanese and Korean words are found inside text without spaces (東京).
matched words are shown in [brackets] in the snippet."""


def register(subparsers: Any) -> None:
    elements = subparsers.add_parser("elements", help="read the element store: export, changes, search")
    commands = elements.add_subparsers(dest="elements_command", metavar="COMMAND", required=True)

    export = commands.add_parser("export", help="print stored elements as JSON Lines (one element per line)")
    _mailbox_folder_options(export)
    export.add_argument("--include-deleted", action="store_true", help="also print tombstones (deleted: true)")
    export.set_defaults(handler=_export)

    changes = commands.add_parser(
        "changes", help="print the change feed as JSON Lines, from a cursor",
        description="Print changes to elements in order, one JSON object per line: seq, op (upsert, delete or "
        "purge), id, mailbox, and the element as it is now. The last seq printed is the cursor to resume from.",
        epilog="Exit status: 0, also when there is nothing new; 3 when the cursor is older than what a purge "
        "removed (start over from 'elements export'). Delivery with --consumer is at least once: a consumer "
        "that stops between printing and storing its cursor sees those changes again, so de-duplicate by seq.")
    changes.add_argument("--since", type=_non_negative, metavar="SEQ", help="only changes after this seq "
                         "(default: from the beginning)")
    changes.add_argument("--mailbox", metavar="MAILBOX", help="only this mailbox (id or e-mail address)")
    changes.add_argument("--limit", type=_positive, metavar="N", help="print at most N changes, then stop")
    changes.add_argument("--follow", "-f", action="store_true",
                         help="keep printing changes as they are committed, until Ctrl+C")
    changes.add_argument("--consumer", metavar="NAME", help="start from this consumer's stored cursor and store "
                         "the new one after each batch is written (see 'elements consumers')")
    changes.set_defaults(handler=_changes)

    consumers = commands.add_parser("consumers", help="list the change feed's named consumers and their lag")
    consumers.add_argument("--json", action="store_true", help="print JSON")
    consumers.add_argument("--remove", metavar="NAME", help="forget this consumer's cursor")
    consumers.set_defaults(handler=_consumers)

    search = commands.add_parser("search", help="full-text search, best matches first",
                                 epilog=SEARCH_SYNTAX, formatter_class=argparse.RawDescriptionHelpFormatter)
    search.add_argument("query", metavar="QUERY", help="what to look for (syntax below)")
    _mailbox_folder_options(search)
    search.add_argument("--from", dest="sender", metavar="ADDR", help="only from senders whose name or "
                        "address contains this")
    search.add_argument("--after", metavar="DATE", help="only mail dated on or after DATE (YYYY-MM-DD, UTC)")
    search.add_argument("--before", metavar="DATE", help="only mail dated before DATE (YYYY-MM-DD, UTC)")
    search.add_argument("--limit", type=_positive, default=20, metavar="N", help="at most N hits (default: 20)")
    search.add_argument("--json", action="store_true", help="print the hits as one JSON array, best first")
    search.set_defaults(handler=_search)

    show = commands.add_parser("show", help="print one element (JSON)")
    show.add_argument("id", metavar="ID", help="the element's id")
    show.set_defaults(handler=_show)

    thread = commands.add_parser("thread", help="print one conversation, oldest first")
    thread.add_argument("thread_id", metavar="THREAD_ID", help="an element's thread_id")
    thread.add_argument("--json", action="store_true", help="print its elements as one JSON array")
    thread.set_defaults(handler=_thread)

    check = commands.add_parser("check", help="check the database's integrity and its search index")
    check.add_argument("--json", action="store_true", help="print JSON")
    check.set_defaults(handler=_check)


def _mailbox_folder_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mailbox", metavar="MAILBOX", help="only this mailbox (id or e-mail address)")
    parser.add_argument("--folder", metavar="F", help="only this folder")


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _export(args: argparse.Namespace, ctx: CommandContext) -> int:
    mailbox = ctx.mailbox(args.mailbox).id if args.mailbox else None
    out = sys.stdout
    with ctx.element_reader() as reader:
        for document in reader.iter_documents(mailbox, args.folder, include_deleted=args.include_deleted):
            out.write(one_line(document))
            out.write("\n")
    out.flush()
    return 0


def _changes(args: argparse.Namespace, ctx: CommandContext) -> int:
    if args.consumer is not None and args.since is not None:
        raise UserError("use --since or --consumer, not both (a consumer reads from its own stored cursor)", code=2)
    mailbox = ctx.mailbox(args.mailbox).id if args.mailbox else None
    with ctx.element_reader() as reader:
        since = reader.consumer_cursor(args.consumer) if args.consumer else args.since
        try:
            _print_changes(reader, since, mailbox, args)
        except CursorExpired as exc:
            raise UserError(str(exc), code=EXIT_CURSOR_EXPIRED) from None
        except KeyboardInterrupt:
            pass  # Ctrl+C ends a follow; what was printed was flushed and its cursor stored
    return 0


def _print_changes(reader: ElementReader, since: int | None, mailbox: str | None,
                   args: argparse.Namespace) -> None:
    out, left = sys.stdout, args.limit
    page = _PAGE if left is None else min(left, _PAGE)
    for batch in reader.change_pages(since, mailbox=mailbox, page=page, follow=args.follow, wake=_FOLLOW_WAKE):
        batch = batch if left is None else batch[:left]
        if not batch:
            continue
        out.write("".join(change.json_line() + "\n" for change in batch))
        out.flush()  # written before the cursor moves: at least once, never lost
        if args.consumer:
            reader.save_consumer_cursor(args.consumer, batch[-1].seq)
        if left is not None:
            left -= len(batch)
            if left <= 0:
                return


def _consumers(args: argparse.Namespace, ctx: CommandContext) -> int:
    with ctx.element_reader() as reader:
        if args.remove is not None:
            if not reader.remove_consumer(args.remove):
                raise UserError(f"no consumer named {args.remove!r} (see 'elements consumers')")
            print(f"removed consumer {args.remove!r}")
            return 0
        consumers, last = reader.consumers(), reader.last_seq()
    if args.json:
        print_json({"last_seq": last, "consumers": [
            {"name": c.name, "cursor": c.cursor, "lag": c.lag, "updated_at": c.updated_at} for c in consumers]})
    elif not consumers:
        print(f"no consumers yet (the feed is at seq {last}); 'elements changes --consumer NAME' makes one")
    else:
        print_table([[c.name, str(c.cursor), str(c.lag), c.updated_at] for c in consumers],
                    ["CONSUMER", "CURSOR", "LAG", "UPDATED"])
    return 0


def _search(args: argparse.Namespace, ctx: CommandContext) -> int:
    filters = SearchFilters(mailbox=ctx.mailbox(args.mailbox).id if args.mailbox else None, folder=args.folder,
                            sender=args.sender, after=args.after, before=args.before)
    with ctx.element_reader() as reader:
        try:
            hits = reader.search(args.query, filters, limit=args.limit)
        except StorageError as exc:
            raise UserError(str(exc), code=2) from None
    if args.json:
        print_json([hit.as_dict() for hit in hits])
        return 0
    for hit in hits:
        print(visible(f"{(hit.date or '-')[:10]}  {hit.sender or '-'}  {hit.subject or '(no subject)'}"))
        print(f"    {visible(' '.join(hit.snippet.split()))}")  # body text: its line breaks as spaces
        print(visible(f"    id {hit.id}  ({hit.mailbox} / {hit.folder})"))
    if not hits:
        print("no matches", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace, ctx: CommandContext) -> int:
    with ctx.element_reader() as reader:
        element = reader.get(args.id)
    if element is None:
        raise UserError(f"no element with id {args.id!r} (ids come from 'elements search' or 'elements export')")
    print_json(element)
    return 0


def _thread(args: argparse.Namespace, ctx: CommandContext) -> int:
    with ctx.element_reader() as reader:
        elements = reader.thread(args.thread_id)
    if not elements:
        raise UserError(f"no conversation with thread id {args.thread_id!r}")
    if args.json:
        print_json(elements)
        return 0
    rows = [[(e.get("date") or e.get("internal_date") or "-")[:16].replace("T", " "),
             ", ".join(p.get("address") or p.get("name") or "" for p in e.get("from") or []) or "-",
             e.get("subject") or "(no subject)", e["id"]] for e in elements]
    print_table(rows, ["DATE", "FROM", "SUBJECT", "ID"])
    return 0


def _check(args: argparse.Namespace, ctx: CommandContext) -> int:
    with ctx.element_reader() as reader:
        problems = reader.integrity_problems()
        report = {"path": reader.location, "ok": not problems, "problems": problems,
                  "elements": reader.count(), "last_seq": reader.last_seq()}
    if args.json:
        print_json(report)
    elif problems:
        print(f"{report['path']}: {len(problems)} problem(s):")
        for problem in problems:
            print(f"  {visible(problem)}")
    else:
        print(f"{report['path']}: ok ({report['elements']} elements, change feed at seq {report['last_seq']})")
    return 0 if not problems else 1
