"""``elements export``: the store as JSON Lines, for the next stage of a pipeline."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from futurnal.storage.element_store import ElementStore

from .context import CommandContext

__all__ = ["register"]


def register(subparsers: Any) -> None:
    elements = subparsers.add_parser("elements", help="read the element store")
    commands = elements.add_subparsers(dest="elements_command", metavar="COMMAND", required=True)
    export = commands.add_parser(
        "export", help="print stored elements as JSON Lines (one element per line) on stdout"
    )
    export.add_argument("--mailbox", metavar="MAILBOX", help="only this mailbox (id or e-mail address)")
    export.add_argument("--folder", metavar="F", help="only this folder")
    export.add_argument("--include-deleted", action="store_true", help="also print tombstones (deleted: true)")
    export.set_defaults(handler=_export)


def _export(args: argparse.Namespace, ctx: CommandContext) -> int:
    mailbox = ctx.mailbox(args.mailbox).id if args.mailbox else None
    out = sys.stdout
    for element in ElementStore(ctx.data_dir.elements_root).iter_elements(mailbox, args.folder):
        if element.get("deleted") and not args.include_deleted:
            continue
        out.write(json.dumps(element, ensure_ascii=False, sort_keys=True))
        out.write("\n")
    out.flush()
    return 0
