#!/usr/bin/env python3
"""Parse and attachment-extraction throughput, each beside its baseline from the same run.

Parsing: :func:`futurnal.parse.parser.parse_message` over the generated corpora (the demo mailbox
and the bad-input corpus) against the bare stdlib ``email.message_from_bytes`` of the same bytes.
Extraction: the out-of-process extractor (children forked by fork servers, each serving up to
``files_per_child`` files in turn, every file under its own limits) against
:func:`futurnal.attachments.extract.extract_text` called in process on the same files, so the
difference is the price of isolation. Figures are medians of ``--repeat`` rounds.

Run: ``.venv/bin/python benchmarks/parsing.py`` (``--help`` for options). Not part of the tests.
"""

from __future__ import annotations

import argparse
import email
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from futurnal.attachments.extract import extract_text  # noqa: E402
from futurnal.attachments.runner import OutOfProcessExtractor  # noqa: E402
from futurnal.attachments.settings import AttachmentSettings  # noqa: E402
from futurnal.demo.attachment_files import docx_bytes, pdf_bytes, xlsx_bytes  # noqa: E402
from futurnal.demo.bad_input import bad_input_corpus  # noqa: E402
from futurnal.demo.sample_mailbox import generate_mailbox  # noqa: E402
from futurnal.parse.parser import parse_message  # noqa: E402


def _median_seconds(work: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def parse_rows(repeat: int, messages: int) -> list[dict[str, Any]]:
    corpora = {
        f"demo mailbox ({messages} messages)": [m.raw for m in generate_mailbox(messages, seed=3)],
        "bad-input corpus": [m.raw for m in bad_input_corpus()],
    }
    rows = []
    for name, raws in corpora.items():
        size = sum(map(len, raws))
        for parser, parse in (("stdlib email.message_from_bytes", email.message_from_bytes),
                              ("futurnal parse_message", parse_message)):
            seconds = _median_seconds(lambda: [parse(raw) for raw in raws], repeat)
            rows.append({"corpus": name, "parser": parser, "messages": len(raws), "mb": size / 1e6,
                         "seconds": seconds, "messages_per_s": len(raws) / seconds, "mb_per_s": size / 1e6 / seconds})
    return rows


def _files() -> list[tuple[str, str, bytes]]:
    """(label, kind, bytes) of each file extracted."""
    text = ("A line of a plain text attachment, with some words in it.\n" * 200).encode()
    html = ("<html><body>" + "<p>Paragraph with <b>markup</b> &amp; entities.</p>" * 200 + "</body></html>").encode()
    pdf = pdf_bytes(*["\n".join(f"Line {n} of page {p} in a report" for n in range(40)) for p in range(5)])
    report = pdf_bytes(*["\n".join(f"Line {n} of page {p} in a longer report, Umsatz {n * p} EUR" for n in range(45))
                         for p in range(60)])
    docx = docx_bytes(*[f"Paragraph {n} of the minutes, with a few words." for n in range(300)])
    xlsx = xlsx_bytes(*[f"cell {n}" for n in range(1000)])
    return [("text", "text", text), ("html", "html", html), ("pdf", "pdf", pdf), ("pdf 60p", "pdf", report),
            ("docx", "docx", docx), ("xlsx", "xlsx", xlsx)]


def extraction_rows(repeat: int, count: int, workers: int) -> list[dict[str, Any]]:
    rows = []
    settings = AttachmentSettings(workers=workers)
    extractor = OutOfProcessExtractor(settings)
    with tempfile.TemporaryDirectory() as tmp:
        for label, kind, data in _files():
            path = Path(tmp) / f"file.{kind}"
            path.write_bytes(data)
            assert extractor.extract(path, kind).status == "ok"

            def in_process() -> None:
                for _ in range(count):
                    extract_text(data, kind)

            def out_of_process() -> None:
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    outcomes = list(pool.map(lambda _: extractor.extract(path, kind, group="bench"), range(count)))
                assert all(o.status == "ok" for o in outcomes)

            for how, work in (("in process (baseline)", in_process),
                              (f"children, {workers} worker(s)", out_of_process)):
                seconds = _median_seconds(work, repeat)
                rows.append({"kind": label, "how": how, "files": count, "kb": len(data) / 1e3, "seconds": seconds,
                             "files_per_s": count / seconds, "mb_per_s": count * len(data) / 1e6 / seconds})
    return rows


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--repeat", type=int, default=3, help="rounds per row; the median is shown (default 3)")
    options.add_argument("--messages", type=int, default=1000, help="demo mailbox size (default 1000)")
    options.add_argument("--files", type=int, default=20, help="files per extraction row (default 20)")
    options.add_argument("--workers", type=int, default=2, help="extraction workers (default 2, the config default)")
    options.add_argument("--json", action="store_true", help="figures as JSON on stdout")
    args = options.parse_args(argv)
    parsing = parse_rows(args.repeat, args.messages)
    extraction = extraction_rows(args.repeat, args.files, args.workers)
    if args.json:
        print(json.dumps({"parsing": parsing, "extraction": extraction}, indent=1))
        return 0
    print(f"{'corpus':34} {'parser':34} {'msgs':>6} {'MB':>7} {'msg/s':>9} {'MB/s':>7}")
    for row in parsing:
        print(f"{row['corpus']:34} {row['parser']:34} {row['messages']:6d} {row['mb']:7.2f} "
              f"{row['messages_per_s']:9.0f} {row['mb_per_s']:7.2f}")
    print()
    print(f"{'kind':7} {'how':34} {'files':>5} {'KB each':>8} {'files/s':>9} {'MB/s':>7}")
    for row in extraction:
        print(f"{row['kind']:7} {row['how']:34} {row['files']:5d} {row['kb']:8.1f} "
              f"{row['files_per_s']:9.1f} {row['mb_per_s']:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
